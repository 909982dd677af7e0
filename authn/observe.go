package authn

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/mcpauth-go/mcpauth/observe"
)

// This file reports verifications, JWKS fetches and introspection calls to
// Config.Observer, and classifies verification errors into observe.Cause
// labels. Without an Observer each hook is one nil check.

// Verify verifies token and returns the identity it carries.
//
// A compact JWS is verified locally: size cap, header (alg allow-list, typ,
// no crit), key chosen by kid from the issuer's JWKS or Config.KeySet (the
// key decides the verification algorithm family, never the header alone),
// signature, then iss (exact), aud (RFC 8707), sub, nbf, iat and exp with
// leeway. A token verified before (the very same bytes) is answered from
// the cache while its exp, TokenCacheMaxTTL and its key allow; the
// TokenInfo is then the one returned before, shared and read-only. A token
// that is not a JWS is introspected (RFC 7662) when Config.Introspection is
// set, and is otherwise invalid; a JWS is never introspected, nor is a
// truncated one (a JOSE header without the other two segments).
//
// Errors match ErrInvalidToken (and ErrExpired for an expired token),
// ErrNoToken for an empty token, or ErrUnavailable when the keys or the
// introspection endpoint cannot be reached and nothing cached can decide.
// Error messages name the cause and never contain the token.
//
// With Config.Observer set, each call is reported to its Verification
// function (see [observe.Verification]).
func (v *Verifier) Verify(ctx context.Context, token string) (*TokenInfo, error) {
	if o := v.cfg.Observer; o != nil && o.Verification != nil {
		return v.verifyObserved(ctx, token, o.Verification)
	}
	return v.verify(ctx, token)
}

func (v *Verifier) verifyObserved(ctx context.Context, token string, report func(context.Context, observe.Verification)) (*TokenInfo, error) {
	cache := observe.CacheNotUsed
	if v.cache != nil && token != "" && len(token) <= v.maxTokenSize {
		if info := v.cached(token); info != nil {
			report(ctx, observe.Verification{Issuer: v.cfg.Issuer, Cache: observe.CacheHit})
			return info, nil
		}
		cache = observe.CacheMiss
	}
	start := time.Now()
	info, err := v.verify(ctx, token)
	report(ctx, observe.Verification{Issuer: v.cfg.Issuer, Cause: causeOf(err), Cache: cache, Start: start, Duration: time.Since(start)})
	return info, err
}

// cachedObserved is cached, reporting a hit to the Observer (a miss is
// reported by the Verify that follows it). MultiVerifier asks its
// Verifiers' caches through it.
func (v *Verifier) cachedObserved(ctx context.Context, token string) *TokenInfo {
	info := v.cached(token)
	if info != nil {
		if o := v.cfg.Observer; o != nil && o.Verification != nil {
			o.Verification(ctx, observe.Verification{Issuer: v.cfg.Issuer, Cache: observe.CacheHit})
		}
	}
	return info
}

// hooks is what the key source and the introspector need to report: the
// Observer (nil for none) and the issuer its events name.
type hooks struct {
	o      *observe.Observer
	issuer string
}

// fetchObserved is jwksSource.fetch, reported to Observer.KeyFetch.
func (s *jwksSource) fetchObserved(ctx context.Context) (*keySet, error) {
	o := s.cfg.obs.o
	if o == nil || o.KeyFetch == nil {
		return s.fetch(ctx)
	}
	start := time.Now()
	set, err := s.fetch(ctx)
	e := observe.KeyFetch{Issuer: s.cfg.obs.issuer, Outcome: observe.OK, Start: start, Duration: time.Since(start)}
	if err == nil {
		e.Keys = len(set.all)
	} else {
		e.Outcome = observe.Unavailable
	}
	o.KeyFetch(ctx, e)
	return set, err
}

// introspectObserved is introspector.introspect, reported to
// Observer.Introspection.
func (in *introspector) introspectObserved(ctx context.Context, token string) introResult {
	o := in.obs
	if o == nil || o.Introspection == nil {
		return in.introspect(ctx, token)
	}
	start := time.Now()
	res := in.introspect(ctx, token)
	c := causeOf(res.err)
	o.Introspection(ctx, observe.Introspection{Issuer: in.issuer, Outcome: c.Outcome(), Cause: c, Start: start, Duration: time.Since(start)})
	return res
}

// causeOf classifies a verification error. Sentinels decide where they
// can (ErrNoToken, ErrUnavailable, ErrExpired); other token faults are told
// apart by the fixed beginning of their cause (attacker-controlled values
// only ever follow it), and one not recognised here is CauseMalformed.
func causeOf(err error) observe.Cause {
	// Most refusals are a bare invalid(…) error: classified by its cause
	// without the errors.Is walk, whose Unwrap allocates.
	te, bare := err.(*tokenError)
	if !bare || te.kind != ErrInvalidToken || te.err != nil {
		switch {
		case err == nil:
			return observe.CauseNone
		case errors.Is(err, ErrNoToken):
			return observe.CauseNoToken
		case errors.Is(err, ErrUnavailable):
			return observe.CauseUnavailable
		case errors.Is(err, ErrExpired):
			return observe.CauseExpired
		}
		var wrapped *tokenError // apart from te, which would escape with it
		if !errors.As(err, &wrapped) || !errors.Is(err, ErrInvalidToken) {
			return observe.CauseOther
		}
		te = wrapped
	}
	c := strings.TrimPrefix(te.cause, "introspection: ")
	switch {
	case c == causeNoKey:
		return observe.CauseUnknownKey
	case c == "signature verification failed":
		return observe.CauseBadSignature
	case strings.HasPrefix(c, "iss "), strings.HasPrefix(c, "JWS payload has no iss"), strings.HasPrefix(c, "JWS payload iss "):
		return observe.CauseWrongIssuer
	case strings.HasPrefix(c, "aud "), strings.HasPrefix(c, "response has no usable aud"):
		return observe.CauseWrongAudience
	case c == "token is not active":
		return observe.CauseInactive
	case strings.HasPrefix(c, "token is not valid yet"), strings.HasPrefix(c, "token not yet valid"),
		strings.HasPrefix(c, "iat is in the future"):
		return observe.CauseNotYetValid
	case strings.HasPrefix(c, "alg "), strings.HasPrefix(c, "typ "), strings.HasPrefix(c, "header has crit"),
		strings.HasPrefix(c, "kid "):
		return observe.CauseBadHeader
	case strings.HasPrefix(c, "sub "), strings.HasPrefix(c, "exp "), strings.HasPrefix(c, "nbf "),
		strings.HasPrefix(c, "iat "), strings.HasPrefix(c, "malformed "), strings.HasPrefix(c, "token_type "),
		strings.HasPrefix(c, "token_use "):
		return observe.CauseBadClaims
	}
	return observe.CauseMalformed
}
