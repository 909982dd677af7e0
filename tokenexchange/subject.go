package tokenexchange

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/internal/outbound"
)

// SubjectTokenSource supplies the token to exchange for a request. The
// default, [FromAuthn], takes the verified inbound token from the request
// context; implement it (or use [SubjectTokenFunc]) to exchange another
// token held for the user, such as one issued by an upstream identity
// provider.
//
// SubjectToken returns the token, its RFC 8693 type (empty means
// Config.SubjectTokenType) and its expiry (zero if unknown); an entry made
// from it is never cached past that expiry. It returns an error matching
// [ErrNoIdentity] when ctx has no identity.
type SubjectTokenSource interface {
	SubjectToken(ctx context.Context) (token, tokenType string, expiry time.Time, err error)
}

// SubjectTokenFunc adapts a function to [SubjectTokenSource].
type SubjectTokenFunc func(ctx context.Context) (token, tokenType string, expiry time.Time, err error)

// SubjectToken calls f.
func (f SubjectTokenFunc) SubjectToken(ctx context.Context) (string, string, time.Time, error) {
	return f(ctx)
}

// FromAuthn is the default [SubjectTokenSource]: the raw bearer token of the
// identity stored in the context by authn's middleware ([authn.FromContext]),
// with its expiry. TokenType is the type reported; empty means
// Config.SubjectTokenType.
type FromAuthn struct {
	TokenType string
}

// SubjectToken returns the inbound token of the verified identity in ctx, or
// an error matching [ErrNoIdentity].
func (s FromAuthn) SubjectToken(ctx context.Context) (string, string, time.Time, error) {
	info, ok := authn.FromContext(ctx)
	if !ok || info.Token() == "" {
		return "", "", time.Time{}, ErrNoIdentity
	}
	return info.Token(), s.TokenType, info.Expiry, nil
}

// subject builds the exchange request for ctx's identity: subject token,
// its type and expiry, and the actor token if configured.
func (t *Transport) subject(ctx context.Context) (request, time.Time, error) {
	subject, stype, sexp, err := t.source.SubjectToken(ctx)
	if err != nil {
		if errors.Is(err, ErrNoIdentity) {
			return request{}, time.Time{}, ErrNoIdentity
		}
		return request{}, time.Time{}, outbound.Wrap("tokenexchange", "subject token", err)
	}
	if subject == "" {
		return request{}, time.Time{}, ErrNoIdentity
	}
	if !sexp.IsZero() && !t.now().Before(sexp) {
		return request{}, time.Time{}, ErrSubjectExpired
	}
	r := request{subjectToken: subject, subjectTokenType: cmp.Or(stype, t.subjectTokenType)}
	if t.cfg.ActorToken != nil {
		at, att, err := t.cfg.ActorToken(ctx)
		if err != nil {
			return request{}, time.Time{}, outbound.Wrap("tokenexchange", "actor token", err)
		}
		if at != "" {
			r.actorToken, r.actorTokenType = at, cmp.Or(att, TokenTypeAccessToken)
		}
	}
	return r, sexp, nil
}
