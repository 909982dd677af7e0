package idptest_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

var allAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func TestTokenVerifiesAgainstJWKS(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := idptest.NewServer(t, idptest.Config{
		Algorithms: allAlgs,
		Audience:   []string{"https://mcp.example/"},
		TokenTTL:   10 * time.Minute,
		Now:        clk.Now,
	})
	set := keySet(t, s)
	if set.Len() != len(allAlgs) {
		t.Fatalf("JWKS has %d keys, want %d", set.Len(), len(allAlgs))
	}
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			kid := s.KeyID(alg)
			k, ok := set.LookupKeyID(kid)
			if !ok {
				t.Fatalf("kid %q of %s not in JWKS", kid, alg)
			}
			if a, _ := k.Algorithm(); a.String() != alg {
				t.Errorf("JWK alg = %v, want %s", a, alg)
			}
			if use, _ := k.KeyUsage(); use != "sig" {
				t.Errorf("JWK use = %q, want sig", use)
			}
			tok := s.TokenWith(idptest.TokenOptions{Alg: alg})
			if _, err := verify(tok, set); err != nil {
				t.Fatalf("jwx rejects the %s token: %v", alg, err)
			}
			h, c := parts(t, tok)
			if h["alg"] != alg || h["kid"] != kid || h["typ"] != "at+jwt" {
				t.Errorf("header = %v", h)
			}
			if c["iss"] != s.Issuer() || c["sub"] != "user" || c["aud"] != "https://mcp.example/" {
				t.Errorf("claims = %v", c)
			}
			now := clk.Now().Unix()
			if c["iat"] != float64(now) || c["exp"] != float64(now+600) {
				t.Errorf("iat/exp = %v/%v, want %d/%d", c["iat"], c["exp"], now, now+600)
			}
			if jti, _ := c["jti"].(string); len(jti) < 16 {
				t.Errorf("jti = %q", jti)
			}
			if _, ok := c["nbf"]; ok {
				t.Error("nbf set by default")
			}
		})
	}
}

func TestDefaultAlgorithms(t *testing.T) {
	t.Parallel()
	s := idptest.NewServer(t, idptest.Config{})
	set := keySet(t, s)
	var got []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		a, _ := k.Algorithm()
		got = append(got, a.String())
	}
	if !slices.Equal(got, []string{"RS256", "ES256", "EdDSA"}) {
		t.Errorf("algorithms = %v", got)
	}
	h, c := parts(t, s.Token(nil))
	if h["alg"] != "RS256" {
		t.Errorf("default signer alg = %v, want RS256", h["alg"])
	}
	if _, ok := c["aud"]; ok {
		t.Error("aud present without Config.Audience")
	}
}

func TestTokenClaims(t *testing.T) {
	t.Parallel()
	s := idptest.NewServer(t, idptest.Config{Algorithms: []string{"ES256"}, Audience: []string{"a", "b"}})
	exp := time.Unix(1_900_000_000, 0)
	tests := []struct {
		name   string
		claims map[string]any
		check  func(t *testing.T, c map[string]any)
	}{
		{"default aud array", nil, func(t *testing.T, c map[string]any) {
			if fmt.Sprint(c["aud"]) != "[a b]" {
				t.Errorf("aud = %v", c["aud"])
			}
		}},
		{"override", map[string]any{"sub": "alice", "aud": "x", "scope": "read write"}, func(t *testing.T, c map[string]any) {
			if c["sub"] != "alice" || c["aud"] != "x" || c["scope"] != "read write" {
				t.Errorf("claims = %v", c)
			}
		}},
		{"nil removes", map[string]any{"exp": nil, "sub": nil, "iss": nil}, func(t *testing.T, c map[string]any) {
			for _, k := range []string{"exp", "sub", "iss"} {
				if _, ok := c[k]; ok {
					t.Errorf("%s still present", k)
				}
			}
			if _, ok := c["iat"]; !ok {
				t.Error("iat removed too")
			}
		}},
		{"time.Time is NumericDate", map[string]any{"exp": exp, "nbf": exp}, func(t *testing.T, c map[string]any) {
			if c["exp"] != float64(exp.Unix()) || c["nbf"] != float64(exp.Unix()) {
				t.Errorf("exp/nbf = %v/%v", c["exp"], c["nbf"])
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, c := parts(t, s.Token(tt.claims))
			tt.check(t, c)
		})
	}
	// Two tokens never share a jti.
	_, c1 := parts(t, s.Token(nil))
	_, c2 := parts(t, s.Token(nil))
	if c1["jti"] == c2["jti"] {
		t.Error("jti repeated")
	}
}

func TestTokenWith(t *testing.T) {
	t.Parallel()
	s := idptest.NewServer(t, idptest.Config{Algorithms: []string{"RS256", "ES256"}})
	set := keySet(t, s)
	foreignRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	foreignEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, foreignEd, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	empty, other := "", "some-other-kid"
	hmacSecret := []byte("public key bytes as an HMAC secret")

	tests := []struct {
		name       string
		opts       idptest.TokenOptions
		verifies   bool
		wantHeader map[string]any // nil value: must be absent
	}{
		{"alg picks key", idptest.TokenOptions{Alg: "ES256"}, true,
			map[string]any{"alg": "ES256", "kid": s.KeyID("ES256")}},
		{"kid omitted", idptest.TokenOptions{Kid: &empty}, false, map[string]any{"kid": nil, "alg": "RS256"}},
		{"kid overridden", idptest.TokenOptions{Kid: &other}, false, map[string]any{"kid": other}},
		{"extra header", idptest.TokenOptions{Header: map[string]any{"crit": []string{"x-unknown"}, "x-unknown": 1, "jku": "https://evil.example/jwks"}}, true,
			map[string]any{"jku": "https://evil.example/jwks"}},
		{"typ removed", idptest.TokenOptions{Header: map[string]any{"typ": nil}}, true, map[string]any{"typ": nil}},
		{"typ JWT", idptest.TokenOptions{Header: map[string]any{"typ": "JWT"}}, true, map[string]any{"typ": "JWT"}},
		{"foreign RSA key keeps real kid", idptest.TokenOptions{Key: foreignRSA}, false,
			map[string]any{"alg": "RS256", "kid": s.KeyID("RS256")}},
		{"foreign EC key", idptest.TokenOptions{Key: foreignEC}, false,
			map[string]any{"alg": "ES256", "kid": s.KeyID("ES256")}},
		{"foreign Ed25519 key", idptest.TokenOptions{Key: foreignEd}, false,
			map[string]any{"alg": "EdDSA", "kid": s.KeyID("")}},
		{"hmac", idptest.TokenOptions{HMACKey: hmacSecret}, false, map[string]any{"alg": "HS256", "kid": s.KeyID("")}},
		{"unsigned", idptest.TokenOptions{Unsigned: true}, false, map[string]any{"alg": "none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok := s.TokenWith(tt.opts)
			h, _ := parts(t, tok)
			for k, want := range tt.wantHeader {
				got, ok := h[k]
				if want == nil {
					if ok {
						t.Errorf("header %s = %v, want absent", k, got)
					}
				} else if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("header %s = %v, want %v", k, got, want)
				}
			}
			_, err := verify(tok, set)
			if tt.verifies && err != nil {
				t.Errorf("jwx rejects it: %v", err)
			}
			if !tt.verifies && err == nil {
				t.Error("jwx accepts it against the server's JWKS")
			}
		})
	}

	t.Run("header alg override keeps the key's signature", func(t *testing.T) {
		t.Parallel()
		tok := s.TokenWith(idptest.TokenOptions{Header: map[string]any{"alg": "RS512"}})
		if h, _ := parts(t, tok); h["alg"] != "RS512" {
			t.Errorf("alg = %v", h["alg"])
		}
		k, _ := set.LookupKeyID(s.KeyID("RS256"))
		var pub rsa.PublicKey
		if err := jwk.Export(k, &pub); err != nil {
			t.Fatal(err)
		}
		i := strings.LastIndex(tok, ".")
		sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
		sum := sha256.Sum256([]byte(tok[:i]))
		if err := rsa.VerifyPKCS1v15(&pub, crypto.SHA256, sum[:], sig); err != nil {
			t.Errorf("not an RS256 signature by the current key: %v", err)
		}
	})
	t.Run("hmac signature is real", func(t *testing.T) {
		t.Parallel()
		tok := s.TokenWith(idptest.TokenOptions{HMACKey: hmacSecret})
		i := strings.LastIndex(tok, ".")
		m := hmac.New(sha256.New, hmacSecret)
		m.Write([]byte(tok[:i]))
		if base64.RawURLEncoding.EncodeToString(m.Sum(nil)) != tok[i+1:] {
			t.Error("HS256 signature does not match")
		}
	})
	t.Run("unsigned has empty signature", func(t *testing.T) {
		t.Parallel()
		if tok := s.TokenWith(idptest.TokenOptions{Unsigned: true}); !strings.HasSuffix(tok, ".") {
			t.Error("unsigned token has a signature")
		}
	})
	t.Run("unknown alg panics", func(t *testing.T) {
		t.Parallel()
		defer func() {
			if recover() == nil {
				t.Error("no panic for an algorithm the server has no key for")
			}
		}()
		s.TokenWith(idptest.TokenOptions{Alg: "EdDSA"})
	})
}

func TestRotateAndRetireKeys(t *testing.T) {
	t.Parallel()
	s := idptest.NewServer(t, idptest.Config{Algorithms: []string{"ES256", "EdDSA"}})
	oldKid := s.KeyID("ES256")
	oldTok := s.Token(nil)

	s.RotateKeys()
	newKid := s.KeyID("ES256")
	if newKid == oldKid {
		t.Fatal("RotateKeys kept the kid")
	}
	newTok := s.Token(nil)
	if h, _ := parts(t, newTok); h["kid"] != newKid {
		t.Errorf("new token kid = %v, want %v", h["kid"], newKid)
	}
	set := keySet(t, s)
	if got := kids(t, set); len(got) != 4 || got[0] != newKid || !slices.Contains(got, oldKid) {
		t.Errorf("JWKS kids after rotation = %v (want new first, old kept)", got)
	}
	for _, tok := range []string{oldTok, newTok} {
		if _, err := verify(tok, set); err != nil {
			t.Errorf("token rejected during grace period: %v", err)
		}
	}

	s.RetireOldKeys()
	set = keySet(t, s)
	if got := kids(t, set); len(got) != 2 || slices.Contains(got, oldKid) {
		t.Errorf("JWKS kids after retirement = %v", got)
	}
	if _, err := verify(oldTok, set); err == nil {
		t.Error("token of a retired key still verifies against the JWKS")
	}
	if _, err := verify(newTok, set); err != nil {
		t.Errorf("current token rejected: %v", err)
	}
	// Introspection still knows the retired key's token.
	if _, m := postForm(t, s, s.IntrospectionURL(), map[string][]string{"token": {oldTok}}, "", ""); m["active"] != true {
		t.Errorf("introspection of a retired key's token = %v", m)
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", "/tenant1"} {
		t.Run("path="+path, func(t *testing.T) {
			t.Parallel()
			s := idptest.NewServer(t, idptest.Config{IssuerPath: path})
			if s.Issuer() != s.URL()+path {
				t.Fatalf("Issuer() = %q", s.Issuer())
			}
			urls := []string{
				s.URL() + "/.well-known/oauth-authorization-server" + path,
				s.URL() + path + "/.well-known/openid-configuration",
				s.URL() + "/.well-known/openid-configuration" + path,
				s.MetadataURL(),
				s.OpenIDConfigurationURL(),
			}
			for _, u := range urls {
				status, body, _ := get(t, s, u)
				if status != http.StatusOK {
					t.Fatalf("GET %s: %d", u, status)
				}
				var md map[string]any
				if err := json.Unmarshal(body, &md); err != nil {
					t.Fatal(err)
				}
				want := map[string]any{
					"issuer":                 s.Issuer(),
					"jwks_uri":               s.JWKSURL(),
					"token_endpoint":         s.TokenURL(),
					"authorization_endpoint": s.AuthorizeURL(),
					"introspection_endpoint": s.IntrospectionURL(),
					"authorization_response_iss_parameter_supported": true,
					"code_challenge_methods_supported":               []any{"S256"},
				}
				for k, v := range want {
					if fmt.Sprint(md[k]) != fmt.Sprint(v) {
						t.Errorf("%s: %s = %v, want %v", u, k, md[k], v)
					}
				}
				for _, g := range []string{"authorization_code", "client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"} {
					if !strings.Contains(fmt.Sprint(md["grant_types_supported"]), g) {
						t.Errorf("grant_types_supported lacks %s", g)
					}
				}
				if !strings.Contains(fmt.Sprint(md["token_endpoint_auth_methods_supported"]), "client_secret_basic") {
					t.Error("token_endpoint_auth_methods_supported lacks client_secret_basic")
				}
			}
			if path != "" {
				// The bare well-known locations belong to another issuer.
				if status, _, _ := get(t, s, s.URL()+"/.well-known/oauth-authorization-server"); status != http.StatusNotFound {
					t.Errorf("root metadata status = %d, want 404", status)
				}
			}
			// The advertised endpoints are served.
			if status, _, _ := get(t, s, s.JWKSURL()); status != http.StatusOK {
				t.Errorf("JWKS status %d", status)
			}
			if s.Requests(idptest.EndpointDiscovery) != int64(len(urls)) {
				t.Errorf("discovery requests = %d, want %d", s.Requests(idptest.EndpointDiscovery), len(urls))
			}
		})
	}
}

func TestJWKSCacheControl(t *testing.T) {
	t.Parallel()
	s := idptest.NewServer(t, idptest.Config{Algorithms: []string{"ES256"}})
	if _, _, h := get(t, s, s.JWKSURL()); h.Get("Cache-Control") != "max-age=300" {
		t.Errorf("default Cache-Control = %q", h.Get("Cache-Control"))
	}
	s.SetJWKSCacheControl("max-age=5, must-revalidate")
	if _, _, h := get(t, s, s.JWKSURL()); h.Get("Cache-Control") != "max-age=5, must-revalidate" {
		t.Errorf("Cache-Control = %q", h.Get("Cache-Control"))
	}
	s.SetJWKSCacheControl("")
	if _, _, h := get(t, s, s.JWKSURL()); h.Get("Cache-Control") != "" {
		t.Errorf("Cache-Control = %q, want none", h.Get("Cache-Control"))
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	s := idptest.NewServer(t, idptest.Config{Algorithms: []string{"ES256"}})
	endpoints := []struct {
		e      idptest.Endpoint
		method string
		url    string
	}{
		{idptest.EndpointDiscovery, http.MethodGet, s.MetadataURL()},
		{idptest.EndpointJWKS, http.MethodGet, s.JWKSURL()},
		{idptest.EndpointToken, http.MethodPost, s.TokenURL()},
		{idptest.EndpointIntrospection, http.MethodPost, s.IntrospectionURL()},
		{idptest.EndpointAuthorize, http.MethodGet, s.AuthorizeURL()},
	}
	faults := []struct {
		name  string
		f     idptest.Fault
		check func(t *testing.T, resp *http.Response, body string, err error)
	}{
		{"down", idptest.Fault{Down: true}, func(t *testing.T, resp *http.Response, body string, err error) {
			if err == nil {
				t.Errorf("got status %d, want a connection error", resp.StatusCode)
			}
		}},
		{"status", idptest.Fault{Status: http.StatusServiceUnavailable}, func(t *testing.T, resp *http.Response, body string, err error) {
			if err != nil || resp.StatusCode != 503 || !strings.Contains(body, `"temporarily_unavailable"`) {
				t.Errorf("got %v %v %q", resp, err, body)
			}
		}},
		{"garbage", idptest.Fault{Garbage: true}, func(t *testing.T, resp *http.Response, body string, err error) {
			if err != nil || resp.StatusCode != 200 || json.Valid([]byte(body)) {
				t.Errorf("got %v %v %q", resp, err, body)
			}
		}},
		{"body", idptest.Fault{Body: `{"keys":"nope"}`}, func(t *testing.T, resp *http.Response, body string, err error) {
			if err != nil || resp.StatusCode != 200 || body != `{"keys":"nope"}` {
				t.Errorf("got %v %v %q", resp, err, body)
			}
		}},
		{"status and body", idptest.Fault{Status: 400, Body: `{"error":"invalid_grant"}`}, func(t *testing.T, resp *http.Response, body string, err error) {
			if err != nil || resp.StatusCode != 400 || body != `{"error":"invalid_grant"}` {
				t.Errorf("got %v %v %q", resp, err, body)
			}
		}},
		{"delay past client deadline", idptest.Fault{Delay: 10 * time.Second}, func(t *testing.T, resp *http.Response, body string, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got %v, want deadline exceeded", err)
			}
		}},
	}
	// Endpoints share s, so faults run one endpoint at a time.
	for _, ep := range endpoints {
		t.Run(ep.e.String(), func(t *testing.T) {
			for _, ft := range faults {
				t.Run(ft.name, func(t *testing.T) {
					before := s.Requests(ep.e)
					s.SetFault(ep.e, ft.f)
					// A generous deadline: CI runs this under -race on a busy
					// 2-core machine. Only the delay fault needs a short one.
					timeout := 5 * time.Second
					if ft.f.Delay > 0 {
						timeout = 300 * time.Millisecond
					}
					resp, body, err := do(s, ep.method, ep.url, timeout)
					s.SetFault(ep.e, idptest.Fault{})
					ft.check(t, resp, body, err)
					if s.Requests(ep.e) <= before {
						t.Error("request not counted")
					}
				})
			}
			// The zero Fault restores the endpoint.
			resp, body, err := do(s, ep.method, ep.url, 5*time.Second)
			if err != nil || resp.StatusCode >= 500 {
				t.Fatalf("after clearing the fault: %v %v", resp, err)
			}
			if ep.e == idptest.EndpointJWKS && !strings.Contains(body, `"keys"`) {
				t.Errorf("JWKS body = %q", body)
			}
		})
	}

	t.Run("delay then answer", func(t *testing.T) {
		s.SetFault(idptest.EndpointJWKS, idptest.Fault{Delay: 100 * time.Millisecond})
		defer s.SetFault(idptest.EndpointJWKS, idptest.Fault{})
		start := time.Now()
		resp, body, err := do(s, http.MethodGet, s.JWKSURL(), 5*time.Second)
		if err != nil || resp.StatusCode != 200 || !strings.Contains(body, `"keys"`) {
			t.Fatalf("got %v %v", resp, err)
		}
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Errorf("answered after %v, want ≥ 100ms", d)
		}
	})
	t.Run("faults are per endpoint", func(t *testing.T) {
		s.SetFault(idptest.EndpointJWKS, idptest.Fault{Status: 500})
		defer s.SetFault(idptest.EndpointJWKS, idptest.Fault{})
		if resp, _, err := do(s, http.MethodGet, s.MetadataURL(), 5*time.Second); err != nil || resp.StatusCode != 200 {
			t.Errorf("discovery affected by a JWKS fault: %v %v", resp, err)
		}
	})
}

func TestCloseCutsDelay(t *testing.T) {
	t.Parallel()
	s := idptest.NewServer(nil, idptest.Config{Algorithms: []string{"ES256"}})
	s.SetFault(idptest.EndpointJWKS, idptest.Fault{Delay: time.Hour})
	errc := make(chan error, 1)
	go func() {
		resp, err := s.Client().Get(s.JWKSURL())
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	for s.Requests(idptest.EndpointJWKS) == 0 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a delayed request")
	}
	select {
	case <-errc:
	case <-time.After(5 * time.Second):
		t.Fatal("delayed request still pending after Close")
	}
}

func TestRequestsCounts(t *testing.T) {
	t.Parallel()
	s := idptest.NewServer(t, idptest.Config{Algorithms: []string{"ES256"}})
	for range 3 {
		get(t, s, s.JWKSURL())
	}
	if n := s.Requests(idptest.EndpointJWKS); n != 3 {
		t.Errorf("JWKS requests = %d, want 3", n)
	}
	if n := s.Requests(idptest.EndpointDiscovery); n != 0 {
		t.Errorf("discovery requests = %d, want 0", n)
	}
}

func do(s *idptest.Server, method, u string, timeout time.Duration) (*http.Response, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, "", err
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		return resp, "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, err = ioCopy(&b, resp)
	return resp, b.String(), err
}

func ioCopy(b *strings.Builder, resp *http.Response) (int64, error) {
	buf := make([]byte, 4096)
	var n int64
	for {
		m, err := resp.Body.Read(buf)
		b.Write(buf[:m])
		n += int64(m)
		if err != nil {
			if err.Error() == "EOF" {
				return n, nil
			}
			return n, err
		}
	}
}

func TestNewServerMisuse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  idptest.Config
	}{
		{"unknown alg", idptest.Config{Algorithms: []string{"HS256"}}},
		{"none alg", idptest.Config{Algorithms: []string{"none"}}},
		{"duplicate alg", idptest.Config{Algorithms: []string{"ES256", "ES256"}}},
		{"empty algs", idptest.Config{Algorithms: []string{}}},
		{"relative issuer path", idptest.Config{IssuerPath: "tenant"}},
		{"trailing slash", idptest.Config{IssuerPath: "/tenant/"}},
		{"wildcard in issuer path", idptest.Config{IssuerPath: "/{tenant}"}},
		{"query in issuer path", idptest.Config{IssuerPath: "/t?x=1"}},
		{"duplicate client", idptest.Config{Clients: []idptest.Client{{ID: "a"}, {ID: "a"}}}},
		{"empty client id", idptest.Config{Clients: []idptest.Client{{Secret: "x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Error("NewServer did not panic")
				}
			}()
			idptest.NewServer(t, tt.cfg)
		})
	}
}

func TestNilTB(t *testing.T) {
	t.Parallel()
	s := idptest.NewServer(nil, idptest.Config{Algorithms: []string{"EdDSA"}})
	if status, _, _ := get(t, s, s.JWKSURL()); status != 200 {
		t.Fatalf("status %d", status)
	}
	s.Close()
	if _, err := s.Client().Get(s.JWKSURL()); err == nil {
		t.Error("server still answers after Close")
	}
	s.Close() // idempotent
}

func TestClientRedactsSecret(t *testing.T) {
	t.Parallel()
	const canary = "canary-secret-4d1f"
	c := idptest.Client{ID: "app", Secret: canary, RedirectURIs: []string{"http://127.0.0.1/cb"}}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		out := fmt.Sprintf(format, c)
		if strings.Contains(out, canary) {
			t.Errorf("%s prints the secret: %s", format, out)
		}
		if !strings.Contains(out, "app") {
			t.Errorf("%s lost the ID: %s", format, out)
		}
	}
	if out := fmt.Sprintf("%v", []idptest.Client{c}); strings.Contains(out, canary) {
		t.Errorf("slice prints the secret: %s", out)
	}
	if out := fmt.Sprintf("%v", &c); strings.Contains(out, canary) {
		t.Errorf("pointer prints the secret: %s", out)
	}
	cfg := idptest.Config{Clients: []idptest.Client{c}}
	for _, format := range []string{"%v", "%+v", "%#v"} {
		if out := fmt.Sprintf(format, cfg); strings.Contains(out, canary) {
			t.Errorf("Config with %s prints the secret: %s", format, out)
		}
	}
}

// TestConcurrentUse mints, introspects, rotates and fetches keys from many
// goroutines at once; run with -race.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	s := idptest.NewServer(t, idptest.Config{Algorithms: []string{"ES256", "EdDSA"}})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Go(func() {
			for j := range 10 {
				switch (i + j) % 4 {
				case 0:
					if i == 0 {
						s.RotateKeys()
					} else {
						s.SetFault(idptest.EndpointAuthorize, idptest.Fault{Status: 500})
					}
				case 1:
					resp, err := s.Client().Get(s.JWKSURL())
					if err != nil {
						errs <- err
						continue
					}
					resp.Body.Close()
				case 2:
					tok := s.OpaqueToken(nil)
					s.Revoke(tok)
				case 3:
					tok := s.Token(nil)
					resp, err := s.Client().PostForm(s.IntrospectionURL(), map[string][]string{"token": {tok}})
					if err != nil {
						errs <- err
						continue
					}
					var m map[string]any
					err = json.NewDecoder(resp.Body).Decode(&m)
					resp.Body.Close()
					if err != nil || m["active"] != true {
						errs <- fmt.Errorf("fresh token not active during concurrent use (%v)", err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.Requests(idptest.EndpointJWKS); n == 0 {
		t.Error("no JWKS requests counted")
	}
}
