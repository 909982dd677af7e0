package benchcmp

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// setupGolangJWT uses golang-jwt v5 as its documentation recommends: a
// Parser built once with the alg allow-list, audience, issuer and exp
// required, a keyfunc returning the pre-parsed key, claims into MapClaims.
func setupGolangJWT(tb testing.TB, f *fixture) verifyFunc {
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{f.alg}),
		jwt.WithAudience(audience),
		jwt.WithIssuer(f.issuer),
		jwt.WithExpirationRequired(),
	)
	keyfunc := func(*jwt.Token) (any, error) { return f.key, nil }
	return func(tok string) error {
		_, err := p.ParseWithClaims(tok, jwt.MapClaims{}, keyfunc)
		return err
	}
}
