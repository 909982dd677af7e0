package authn

import (
	"context"
	"errors"
	"testing"

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
