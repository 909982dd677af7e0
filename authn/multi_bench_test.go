package authn

import (
	"context"
	"testing"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/observe"
)

// BenchmarkMultiVerifierWarm is a token verified before, through a
// MultiVerifier (answered from its Verifier's cache), and a token it
// refuses before routing (an untrusted issuer), each without and with an
// Observer whose function does nothing.
func BenchmarkMultiVerifierWarm(b *testing.B) {
	for _, tc := range []struct {
		name string
		obs  *observe.Observer
	}{
		{"observer=nil", nil},
		{"observer=noop", &observe.Observer{Verification: func(context.Context, observe.Verification) {}}},
	} {
		idp := idptest.NewServer(b, idptest.Config{Audience: []string{testResource}})
		v, err := NewVerifier(Config{Issuer: idp.Issuer(), Audience: []string{testResource}, HTTPClient: idp.Client(), Observer: tc.obs})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { v.Close() })
		m, err := NewMultiVerifier(map[string]TokenVerifier{idp.Issuer(): v}, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		good, untrusted := idp.Token(nil), idp.Token(map[string]any{"iss": "https://evil.example"})
		if _, err := m.Verify(ctx, good); err != nil {
			b.Fatal(err)
		}
		b.Run("cached/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Verify(ctx, good); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("untrusted-issuer/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Verify(ctx, untrusted); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}
