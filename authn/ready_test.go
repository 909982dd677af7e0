package authn

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

// TestReady: Ready fetches discovery and keys at once, so a mistyped issuer
// fails at start with a message naming it (issue 7 item 10), and a correct
// one needs no fetch on the first Verify.
func TestReady(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("ok", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, idptest.Config{}, nil)
		if err := f.v.Ready(ctx); err != nil {
			t.Fatalf("Ready: %v", err)
		}
		if d, j := f.idp.Requests(idptest.EndpointDiscovery), f.idp.Requests(idptest.EndpointJWKS); d < 1 || j != 1 {
			t.Fatalf("Ready made %d discovery and %d JWKS requests", d, j)
		}
		if err := f.v.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.v.Verify(ctx, f.idp.Token(nil)); err != nil {
			t.Fatal(err)
		}
		if j := f.idp.Requests(idptest.EndpointJWKS); j != 1 {
			t.Fatalf("%d JWKS requests after Ready and Verify, want 1", j)
		}
	})
	t.Run("mistyped issuer", func(t *testing.T) {
		t.Parallel()
		var typo string
		f := newFixture(t, idptest.Config{}, func(c *Config) { c.Issuer += "/tenant-typo"; typo = c.Issuer })
		err := f.v.Ready(ctx)
		if err == nil || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Ready = %v, want an ErrUnavailable error", err)
		}
		if !strings.Contains(err.Error(), `issuer "`+typo+`" is not ready`) || !strings.Contains(err.Error(), "/.well-known/") {
			t.Errorf("error %q does not name the issuer and the URLs tried", err)
		}
		if strings.Count(err.Error(), "authn: ") != 1 {
			t.Errorf("error %q repeats the package prefix", err)
		}
	})
	t.Run("JWKS down", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, idptest.Config{}, nil)
		f.idp.SetFault(idptest.EndpointJWKS, idptest.Fault{Status: 500})
		if err := f.v.Ready(ctx); err == nil || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Ready = %v", err)
		}
	})
	t.Run("introspection endpoint not discoverable", func(t *testing.T) {
		t.Parallel()
		// A static key set: only the introspection endpoint is discovered.
		f := newFixture(t, idptest.Config{}, nil)
		ks, err := ParseJWKS(f.idp.JWKS())
		if err != nil {
			t.Fatal(err)
		}
		v, err := NewVerifier(Config{Issuer: f.idp.Issuer() + "/nothing-here", Audience: []string{testResource}, KeySet: ks,
			Introspection: &IntrospectionConfig{}, HTTPClient: f.idp.Client(), Logger: f.v.log})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		if err := v.Ready(ctx); err == nil || !strings.Contains(err.Error(), "is not ready") {
			t.Fatalf("Ready = %v", err)
		}
	})
	t.Run("multi", func(t *testing.T) {
		t.Parallel()
		good := newFixture(t, idptest.Config{}, nil)
		bad := newFixture(t, idptest.Config{}, func(c *Config) { c.Issuer += "/typo" })
		m, err := NewMultiVerifier(map[string]TokenVerifier{good.v.Issuer(): good.v, bad.v.Issuer(): bad.v}, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = m.Ready(ctx)
		if err == nil || !strings.Contains(err.Error(), bad.v.Issuer()) || strings.Contains(err.Error(), `"`+good.v.Issuer()+`" is not ready`) {
			t.Fatalf("MultiVerifier.Ready = %v, want the failing issuer only", err)
		}
		m2, _ := NewMultiVerifier(map[string]TokenVerifier{good.v.Issuer(): good.v}, nil)
		if err := m2.Ready(ctx); err != nil {
			t.Fatalf("MultiVerifier.Ready = %v", err)
		}
	})
}
