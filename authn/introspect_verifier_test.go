package authn

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

func TestVerifierRoutesOpaqueTokensToIntrospection(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, func(c *Config) { c.Introspection = &IntrospectionConfig{} })
	ctx := context.Background()
	opaque := f.idp.OpaqueToken(map[string]any{"sub": "bob", "scope": "tools:read"})
	info, err := f.v.Verify(ctx, opaque)
	if err != nil {
		t.Fatalf("opaque token via discovered introspection endpoint: %v", err)
	}
	if info.Subject != "bob" || !info.HasScope("tools:read") || info.Token() != opaque {
		t.Fatalf("introspected identity = %v", info)
	}
	// A JWS that fails verification is never introspected.
	before := f.idp.Requests(idptest.EndpointIntrospection)
	bad := f.idp.Token(map[string]any{"aud": "https://elsewhere"})
	if _, err := f.v.Verify(ctx, bad); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("bad JWS: %v", err)
	}
	if _, err := f.v.Verify(ctx, tamper(f.idp.Token(map[string]any{"sub": "alice"}))); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("tampered JWS: %v", err)
	}
	if f.idp.Requests(idptest.EndpointIntrospection) != before {
		t.Fatal("a failed JWS was sent to introspection")
	}
	// Inactive → invalid; endpoint down → unavailable.
	f.idp.Revoke(opaque)
	other := f.idp.OpaqueToken(nil)
	f.idp.Revoke(other)
	if _, err := f.v.Verify(ctx, other); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("revoked opaque token: %v", err)
	}
	f.idp.SetFault(idptest.EndpointIntrospection, idptest.Fault{Status: 500})
	if _, err := f.v.Verify(ctx, f.idp.OpaqueToken(nil)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("introspection down: %v", err)
	}
}

// While issuer discovery fails, every opaque token used to start a new
// discovery round (two or three GETs each): random tokens became IdP
// traffic. A failure is now remembered for the retry backoff, as for JWKS.
func TestDiscoveryFailureIsNotRetriedPerOpaqueToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, func(c *Config) { c.Introspection = &IntrospectionConfig{} })
	f.idp.SetFault(idptest.EndpointDiscovery, idptest.Fault{Status: 500})
	ctx := context.Background()
	for range 20 {
		if _, err := f.v.Verify(ctx, f.idp.OpaqueToken(nil)); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidToken) {
			t.Fatalf("discovery down: %v, want ErrUnavailable only", err)
		}
	}
	// One discovery round: the RFC 8414 and OpenID Connect locations.
	if n := f.idp.Requests(idptest.EndpointDiscovery); n > 2 {
		t.Fatalf("20 opaque tokens during a discovery outage made %d discovery requests, want at most 2", n)
	}
	f.idp.SetFault(idptest.EndpointDiscovery, idptest.Fault{})
	f.clock.Advance(retryBackoff)
	if _, err := f.v.Verify(ctx, f.idp.OpaqueToken(nil)); err != nil {
		t.Fatalf("after discovery came back: %v", err)
	}
}

// A JWS missing its signature segment ("header.payload", the shape of an
// unsecured JWT) or a lone JOSE header is a malformed JWS, not an opaque
// token: it must not be sent to introspection, which would be a second
// verification path for a token that failed (or never had) a signature.
func TestTruncatedJWSIsNotIntrospected(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, func(c *Config) { c.Introspection = &IntrospectionConfig{} })
	tok := f.idp.Token(nil)
	d := strings.LastIndexByte(tok, '.')
	for _, bad := range []string{tok[:d], tok[:strings.IndexByte(tok, '.')]} {
		if _, err := f.v.Verify(context.Background(), bad); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("truncated JWS: %v, want ErrInvalidToken", err)
		}
	}
	if n := f.idp.Requests(idptest.EndpointIntrospection); n != 0 {
		t.Fatalf("a truncated JWS was introspected (%d requests)", n)
	}
}

// An opaque token that merely has two dots and starts with "eJ" (zlib data
// in base64, say) is not a JWS: it goes to introspection, not to rejection.
func TestDottedOpaqueTokenIsIntrospected(t *testing.T) {
	t.Parallel()
	for _, seg := range []string{`{"a":1}`, "{ \"a\":1}", "{\n\"a\":1}", "{\t\"a\":1}", "{\r\n\"a\":1}"} {
		if enc := base64.RawURLEncoding.EncodeToString([]byte(seg)); !looksLikeJOSE(enc) {
			t.Errorf("%q encodes as %q, not recognised as a JOSE header", seg, enc)
		}
	}
	const opaque = "eJzLSM3JyVcozy/KSVEEAB0JBF4.c2Vjb25k.eA"
	var seen atomic.Value
	intro := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		seen.Store(r.PostForm.Get("token"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"active":true,"sub":"carol","aud":%q,"exp":%d}`, testResource, time.Now().Add(time.Hour).Unix())
	}))
	defer intro.Close()
	f := newFixture(t, idptest.Config{}, func(c *Config) {
		c.Introspection = &IntrospectionConfig{URL: intro.URL}
		c.Now = nil
	})
	info, err := f.v.Verify(context.Background(), opaque)
	if err != nil {
		t.Fatalf("dotted opaque token: %v", err)
	}
	if info.Subject != "carol" || seen.Load() != opaque {
		t.Fatalf("subject = %q, introspected %v", info.Subject, seen.Load() != nil)
	}
}
