package benchcmp

import (
	"context"
	"errors"
	"testing"

	"github.com/auth0/go-jwt-middleware/v2/validator"
)

// auth0Claims is the custom claims hook of auth0's validator, used to
// require exp: the validator checks exp only when present, so without it a
// token that never expires would pass and the comparison would not be one of
// equal work.
type auth0Claims struct {
	Exp *int64 `json:"exp"`
}

// Validate rejects a token without exp.
func (c *auth0Claims) Validate(context.Context) error {
	if c.Exp == nil {
		return errors.New("exp is required")
	}
	return nil
}

// setupAuth0 uses auth0 go-jwt-middleware v2's validator (the part its
// middleware calls per request) as its README shows: validator.New with a
// key func returning the pre-parsed key, the alg, issuer and audience, plus
// the custom claims above so exp is required.
func setupAuth0(tb testing.TB, f *fixture) verifyFunc {
	tb.Helper()
	keyFunc := func(context.Context) (any, error) { return f.key, nil }
	v, err := validator.New(keyFunc, validator.SignatureAlgorithm(f.alg), f.issuer, []string{audience},
		validator.WithCustomClaims(func() validator.CustomClaims { return &auth0Claims{} }))
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	return func(tok string) error {
		_, err := v.ValidateToken(ctx, tok)
		return err
	}
}
