package benchcmp

import (
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// setupJWX uses jwx v3 jwt.Parse with the pre-parsed key for the alg,
// issuer, audience and validation on; exp is made required as in the other
// verifiers (jwx checks it only when present).
func setupJWX(tb testing.TB, f *fixture) verifyFunc {
	tb.Helper()
	alg, ok := jwa.LookupSignatureAlgorithm(f.alg)
	if !ok {
		tb.Fatalf("jwx has no %s", f.alg)
	}
	opts := []jwt.ParseOption{
		jwt.WithKey(alg, f.key),
		jwt.WithIssuer(f.issuer),
		jwt.WithAudience(audience),
		jwt.WithRequiredClaim("exp"),
		jwt.WithValidate(true),
	}
	return func(tok string) error {
		_, err := jwt.Parse([]byte(tok), opts...)
		return err
	}
}
