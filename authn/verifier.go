package authn

import (
	"context"
	"errors"
)

// Verifier verifies JWT access tokens of one issuer. Stub: replaced by the
// real implementation.
type Verifier struct{ cfg Config }

// NewVerifier validates cfg and returns a Verifier.
func NewVerifier(cfg Config) (*Verifier, error) { return &Verifier{cfg: cfg}, nil }

// Verify verifies token.
func (v *Verifier) Verify(ctx context.Context, token string) (*TokenInfo, error) {
	return nil, errors.New("not implemented")
}

// Close stops background refreshes.
func (v *Verifier) Close() error { return nil }
