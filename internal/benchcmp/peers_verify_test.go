package benchcmp

import (
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

// TestPeersVerifyFully checks that every verifier in the comparison does
// the full job, so the benchmark compares equal work: each accepts the
// valid pool tokens and rejects a token whose audience, issuer, expiry or
// signature is wrong.
func TestPeersVerifyFully(t *testing.T) {
	t.Parallel()
	srv := newIdP(t)
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, srv, alg, 4)
			mint := func(claims map[string]any) string {
				c := mcpClaims(0)
				for k, v := range claims {
					c[k] = v
				}
				return srv.TokenWith(idptest.TokenOptions{Alg: alg, Claims: c})
			}
			now := time.Now()
			bad := []struct {
				name  string
				token string
			}{
				{"wrong audience", mint(map[string]any{"aud": "https://other.example.com/mcp"})},
				{"wrong issuer", mint(map[string]any{"iss": f.issuer + "/other"})},
				{"expired", mint(map[string]any{"iat": now.Add(-2 * time.Hour), "exp": now.Add(-time.Hour)})},
				{"no exp", mint(map[string]any{"exp": nil})},
				{"forged signature", srv.TokenWith(idptest.TokenOptions{
					Alg: alg, Key: forgeryKey(t, alg), Claims: mcpClaims(0),
				})},
			}
			for _, p := range peers {
				t.Run(p.name, func(t *testing.T) {
					verify := p.setup(t, f)
					for _, tok := range f.tokens {
						if err := verify(tok); err != nil {
							t.Fatalf("rejected a valid token: %v", err)
						}
					}
					for _, c := range bad {
						if err := verify(c.token); err == nil {
							t.Errorf("accepted a token with %s", c.name)
						}
					}
				})
			}
		})
	}
}

// TestRawVerifier checks that the baseline really checks the signature.
func TestRawVerifier(t *testing.T) {
	t.Parallel()
	srv := newIdP(t)
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, srv, alg, 2)
			if !rawVerifier(t, f)(0) {
				t.Fatal("raw rejected a valid signature")
			}
			forged := *f
			forged.tokens = []string{srv.TokenWith(idptest.TokenOptions{Alg: alg, Key: forgeryKey(t, alg)})}
			if rawVerifier(t, &forged)(0) {
				t.Fatal("raw accepted a forged signature")
			}
		})
	}
}
