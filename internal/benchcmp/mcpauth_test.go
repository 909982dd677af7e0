package benchcmp

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

// newMcpauth builds an authn.Verifier with the JWKS served by the fake IdP
// and fetches the keys once, so the timed loop never does I/O.
func newMcpauth(tb testing.TB, f *fixture, cacheSize int) verifyFunc {
	tb.Helper()
	v, err := authn.NewVerifier(authn.Config{
		Issuer:         f.issuer,
		Audience:       []string{audience},
		JWKSURL:        f.srv.JWKSURL(),
		HTTPClient:     f.srv.Client(),
		TokenCacheSize: cacheSize,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	ctx := context.Background()
	// A token outside the pool fetches the key set without caching any
	// pool token.
	if _, err := v.Verify(ctx, f.srv.TokenWith(idptest.TokenOptions{Alg: f.alg})); err != nil {
		tb.Fatalf("warming the key set: %v", err)
	}
	return func(tok string) error {
		_, err := v.Verify(ctx, tok)
		return err
	}
}

// setupMcpauthCold disables the verified-token cache (TokenCacheSize -1): every
// call parses, checks the signature and decodes the claims.
func setupMcpauthCold(tb testing.TB, f *fixture) verifyFunc { return newMcpauth(tb, f, -1) }

// setupMcpauthWarm keeps the default cache; the benchmark repeats one token,
// so every timed call after the first is a cache hit.
func setupMcpauthWarm(tb testing.TB, f *fixture) verifyFunc { return newMcpauth(tb, f, 0) }
