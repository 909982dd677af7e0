package benchcmp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

// audience is the canonical resource URI (RFC 8707) of the MCP server the
// tokens are minted for.
const audience = "https://mcp.example.com/mcp"

// algs are the algorithms compared; each is a sub-benchmark of its own.
var algs = []string{"RS256", "ES256"}

// poolSize is the number of distinct tokens per algorithm: large enough
// that no library can answer a repeated token from a cache of its own.
const poolSize = 256

// fixture holds one algorithm's tokens and the inputs every verifier is
// configured from.
type fixture struct {
	alg    string
	srv    *idptest.Server
	issuer string
	key    crypto.PublicKey // the alg's public key, parsed once from srv.JWKS()
	tokens []string         // poolSize valid tokens, all with the same claim shape
}

// mcpClaims is the payload of a realistic MCP access token; idptest adds
// iss, aud, iat, exp and a random jti.
func mcpClaims(i int) map[string]any {
	return map[string]any{
		"sub":       fmt.Sprintf("user-%08d", i),
		"client_id": "https://client.example.com/oauth/metadata.json",
		"scope":     "openid profile tools:read tools:write resources:read",
		"groups":    []string{"engineering", "mcp-users"},
		"email":     "user@example.com",
		"name":      "Example User",
	}
}

// newIdP starts a fake IdP with an RS256 and an ES256 key.
func newIdP(tb testing.TB) *idptest.Server {
	tb.Helper()
	return idptest.NewServer(tb, idptest.Config{
		Algorithms: algs,
		Audience:   []string{audience},
		TokenTTL:   6 * time.Hour, // outlives any benchmark run
	})
}

// newFixture mints n tokens for alg and extracts the alg's public key from
// the published JWKS with jwx (jwk.Parse + jwk.Export).
func newFixture(tb testing.TB, srv *idptest.Server, alg string, n int) *fixture {
	tb.Helper()
	set, err := jwk.Parse(srv.JWKS())
	if err != nil {
		tb.Fatalf("parsing the JWKS: %v", err)
	}
	k, ok := set.LookupKeyID(srv.KeyID(alg))
	if !ok {
		tb.Fatalf("no %s key in the JWKS", alg)
	}
	var pub any
	if err := jwk.Export(k, &pub); err != nil {
		tb.Fatalf("exporting the %s key: %v", alg, err)
	}
	f := &fixture{alg: alg, srv: srv, issuer: srv.Issuer(), key: pub}
	for i := range n {
		f.tokens = append(f.tokens, srv.TokenWith(idptest.TokenOptions{Alg: alg, Claims: mcpClaims(i)}))
	}
	return f
}

// forgeryKey returns a fresh key of alg's type that the IdP does not publish.
func forgeryKey(tb testing.TB, alg string) crypto.Signer {
	tb.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case "RS256":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		tb.Fatalf("no forgery key for %s", alg)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
