package benchcmp

import (
	"errors"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// joseClaims is what an MCP server needs from the token, decoded in one
// pass: the registered claims go-jose validates plus client_id and scope.
type joseClaims struct {
	jwt.Claims
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope"`
	Groups   []string `json:"groups"`
	Email    string   `json:"email"`
	Name     string   `json:"name"`
}

var errNoExp = errors.New("benchcmp: token has no exp")

// setupGoJose uses go-jose v4: jwt.ParseSigned with the alg allow-list,
// Claims with the pre-parsed key, then Validate against the expected
// issuer and audience (which checks exp when present; its presence is
// checked here, as the other verifiers require it).
func setupGoJose(tb testing.TB, f *fixture) verifyFunc {
	algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(f.alg)}
	want := jwt.Expected{Issuer: f.issuer, AnyAudience: jwt.Audience{audience}}
	return func(tok string) error {
		t, err := jwt.ParseSigned(tok, algs)
		if err != nil {
			return err
		}
		var c joseClaims
		if err := t.Claims(f.key, &c); err != nil {
			return err
		}
		if c.Expiry == nil {
			return errNoExp
		}
		return c.Validate(want)
	}
}
