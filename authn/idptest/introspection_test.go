package idptest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

func introspect(t *testing.T, s *idptest.Server, tok string) map[string]any {
	t.Helper()
	status, m := postForm(t, s, s.IntrospectionURL(), url.Values{"token": {tok}}, "", "")
	if status != http.StatusOK {
		t.Fatalf("introspection status %d: %v", status, m)
	}
	return m
}

func assertInactive(t *testing.T, m map[string]any) {
	t.Helper()
	if len(m) != 1 || m["active"] != false {
		t.Errorf("introspection = %v, want exactly {\"active\":false}", m)
	}
}

func TestIntrospection(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := idptest.NewServer(t, idptest.Config{
		Algorithms: []string{"ES256", "EdDSA"},
		Audience:   []string{"https://mcp.example/"},
		TokenTTL:   time.Hour,
		Now:        clk.Now,
	})
	foreign, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	empty := ""
	jwt := s.Token(map[string]any{"sub": "alice", "scope": "read"})

	active := []struct {
		name  string
		tok   string
		check map[string]any
	}{
		{"jwt", jwt, map[string]any{"sub": "alice", "scope": "read", "iss": s.Issuer(), "aud": "https://mcp.example/"}},
		{"jwt other alg", s.TokenWith(idptest.TokenOptions{Alg: "EdDSA"}), map[string]any{"sub": "user"}},
		{"jwt without kid", s.TokenWith(idptest.TokenOptions{Kid: &empty}), map[string]any{"sub": "user"}},
		{"opaque", s.OpaqueToken(map[string]any{"client_id": "app", "scope": "a b"}),
			map[string]any{"client_id": "app", "scope": "a b", "sub": "user", "iss": s.Issuer(), "aud": "https://mcp.example/"}},
		{"opaque without exp", s.OpaqueToken(map[string]any{"exp": nil}), map[string]any{"sub": "user"}},
	}
	for _, tt := range active {
		t.Run("active/"+tt.name, func(t *testing.T) {
			t.Parallel()
			m := introspect(t, s, tt.tok)
			if m["active"] != true {
				t.Fatalf("introspection = %v, want active", m)
			}
			for k, v := range tt.check {
				if m[k] != v {
					t.Errorf("%s = %v, want %v", k, m[k], v)
				}
			}
			if _, ok := tt.check["exp"]; !ok && tt.name != "opaque without exp" {
				if _, ok := m["exp"]; !ok {
					t.Error("exp missing")
				}
			}
		})
	}

	tampered := func() string {
		p := strings.Split(s.Token(nil), ".")
		other := strings.Split(s.Token(map[string]any{"sub": "admin"}), ".")
		return p[0] + "." + other[1] + "." + p[2]
	}()
	inactive := []struct{ name, tok string }{
		{"unknown opaque", "not-a-token-we-issued"},
		{"foreign key with real kid", s.TokenWith(idptest.TokenOptions{Key: foreign})},
		{"hmac", s.TokenWith(idptest.TokenOptions{HMACKey: []byte("secret")})},
		{"unsigned", s.TokenWith(idptest.TokenOptions{Unsigned: true})},
		{"tampered payload", tampered},
		{"not yet valid", s.Token(map[string]any{"nbf": clk.Now().Add(time.Minute)})},
		{"expired at issue", s.Token(map[string]any{"exp": clk.Now()})},
		{"opaque expired", s.OpaqueToken(map[string]any{"exp": clk.Now().Add(-time.Second)})},
	}
	for _, tt := range inactive {
		t.Run("inactive/"+tt.name, func(t *testing.T) {
			t.Parallel()
			assertInactive(t, introspect(t, s, tt.tok))
		})
	}
}

func TestIntrospectionRevokeAndExpiry(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := idptest.NewServer(t, idptest.Config{Algorithms: []string{"ES256"}, TokenTTL: time.Minute, Now: clk.Now})
	jwt, opaque := s.Token(nil), s.OpaqueToken(nil)
	keep := s.Token(nil)
	for _, tok := range []string{jwt, opaque, keep} {
		if m := introspect(t, s, tok); m["active"] != true {
			t.Fatalf("fresh token inactive: %v", m)
		}
	}
	s.Revoke(jwt)
	s.Revoke(opaque)
	assertInactive(t, introspect(t, s, jwt))
	assertInactive(t, introspect(t, s, opaque))
	if m := introspect(t, s, keep); m["active"] != true {
		t.Errorf("Revoke affected another token: %v", m)
	}

	clk.Advance(time.Minute)
	assertInactive(t, introspect(t, s, keep))
}

func TestIntrospectionRequests(t *testing.T) {
	t.Parallel()
	s := idptest.NewServer(t, idptest.Config{
		Algorithms: []string{"ES256"},
		Clients:    []idptest.Client{{ID: "rs", Secret: "rs-secret"}, {ID: "pub"}},
	})
	tok := s.Token(nil)
	tests := []struct {
		name       string
		form       url.Values
		id, secret string
		status     int
	}{
		{"no client auth", url.Values{"token": {tok}}, "", "", 200},
		{"basic", url.Values{"token": {tok}}, "rs", "rs-secret", 200},
		{"post", url.Values{"token": {tok}, "client_id": {"rs"}, "client_secret": {"rs-secret"}}, "", "", 200},
		{"public client id", url.Values{"token": {tok}, "client_id": {"pub"}}, "", "", 200},
		{"wrong secret", url.Values{"token": {tok}}, "rs", "nope", 401},
		{"missing secret", url.Values{"token": {tok}, "client_id": {"rs"}}, "", "", 401},
		{"unknown client", url.Values{"token": {tok}}, "who", "x", 401},
		{"missing token", url.Values{}, "rs", "rs-secret", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, m := postForm(t, s, s.IntrospectionURL(), tt.form, tt.id, tt.secret)
			if status != tt.status {
				t.Fatalf("status %d, want %d (%v)", status, tt.status, m)
			}
			if status == 200 && m["active"] != true {
				t.Errorf("introspection = %v", m)
			}
			if status == 401 && m["error"] != "invalid_client" {
				t.Errorf("error = %v", m["error"])
			}
		})
	}

	form, hdr := s.LastRequest(idptest.EndpointIntrospection)
	if form == nil || hdr.Get("Authorization") == "" {
		t.Errorf("LastRequest did not record the form and headers")
	}

	if resp, _, err := do(s, http.MethodGet, s.IntrospectionURL()+"?token=x", 5*time.Second); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET introspection: %v %v", resp, err)
	}
}
