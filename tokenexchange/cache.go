package tokenexchange

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"
	"time"
)

// The cache of exchanged tokens: an LRU keyed by a hash of everything the
// STS answer depends on (never the raw token), entries kept until the issued
// token's expiry minus the skew and never past the subject token's expiry,
// one STS call shared by concurrent misses.

// entry is a cached exchanged token.
type entry struct {
	tok     *Token
	value   string    // header value: "Bearer <token>" or the bare token
	expires time.Time // zero: not cacheable
}

// writeField appends a length-prefixed field so distinct field lists never
// hash alike.
func writeField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// staticKey hashes the part of the cache key fixed by the configuration.
func staticKey(audience string, scopes, resources []string, requested string) [32]byte {
	var b []byte
	b = writeField(b, "tokenexchange/v1")
	b = writeField(b, audience)
	b = binary.BigEndian.AppendUint32(b, uint32(len(scopes)))
	for _, s := range scopes {
		b = writeField(b, s)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(resources)))
	for _, r := range resources {
		b = writeField(b, r)
	}
	b = writeField(b, requested)
	return sha256.Sum256(b)
}

// keyHasher holds the buffers for one cache key computation, so a lookup
// allocates nothing in the steady state.
type keyHasher struct {
	h   hash.Hash
	tok []byte // copy of the subject or actor token, reused
	buf []byte
	sum []byte
}

var keyHashers = sync.Pool{New: func() any {
	return &keyHasher{h: sha256.New(), buf: make([]byte, 0, 256), sum: make([]byte, 0, sha256.Size)}
}}

// sumString returns SHA-256(s) in kh.sum's storage.
func (kh *keyHasher) sumString(s string) []byte {
	kh.tok = append(kh.tok[:0], s...)
	kh.h.Reset()
	kh.h.Write(kh.tok)
	clear(kh.tok) // do not leave a copy of the token in the pool
	return kh.h.Sum(kh.sum[:0])
}

// cacheKey is SHA-256(static || SHA-256(subject token) || subject type ||
// SHA-256(actor token) || actor type), where static hashes the audience,
// sorted scopes, sorted resources and requested token type. The raw token is
// never stored.
func (t *Transport) cacheKey(r *request) [32]byte {
	kh := keyHashers.Get().(*keyHasher)
	b := append(kh.buf[:0], t.static[:]...)
	b = append(b, kh.sumString(r.subjectToken)...)
	b = writeField(b, r.subjectTokenType)
	if r.actorToken != "" {
		b = append(b, 1)
		b = append(b, kh.sumString(r.actorToken)...)
		b = writeField(b, r.actorTokenType)
	} else {
		b = append(b, 0)
	}
	kh.h.Reset()
	kh.h.Write(b)
	var key [32]byte
	copy(key[:], kh.h.Sum(kh.sum[:0]))
	kh.buf = b
	keyHashers.Put(kh)
	return key
}

// lookup returns the cache entry for r, exchanging on a miss.
func (t *Transport) lookup(ctx context.Context, r request, sexp time.Time) (*entry, error) {
	if t.cache == nil {
		ctx, cancel := context.WithTimeout(ctx, t.timeout)
		defer cancel()
		return t.fetchObserved(ctx, r, sexp)
	}
	key := t.cacheKey(&r)
	if e, ok := t.cache.Get(key, t.now()); ok {
		t.observeHit(ctx)
		return e, nil
	}
	return t.miss(ctx, key, r, sexp)
}

// miss makes (or joins) the one STS call for key, shared by every waiter.
// The call runs on a context detached from any one waiter (bounded by
// Timeout); each waiter gives up on its own context. It is a separate
// function so that the closure's captures do not make the hit path allocate.
func (t *Transport) miss(ctx context.Context, key [32]byte, r request, sexp time.Time) (*entry, error) {
	ch := t.flight.DoChan(string(key[:]), func() (any, error) {
		if e, ok := t.cache.Get(key, t.now()); ok {
			return e, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.timeout)
		defer cancel()
		e, err := t.fetchObserved(fctx, r, sexp)
		if err != nil {
			return nil, err
		}
		if !e.expires.IsZero() {
			t.cache.Put(key, e, e.expires)
		}
		return e, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*entry), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("tokenexchange: waiting for token exchange: %w", ctx.Err())
	}
}

// fetch exchanges r and computes how long the result may be cached: until
// the issued expiry minus skew, never past the subject's expiry. A zero
// expires means "do not cache".
func (t *Transport) fetch(ctx context.Context, r request, subjectExpiry time.Time) (*entry, error) {
	start := t.now()
	tok, err := t.exchange(ctx, r)
	if err != nil {
		t.logger.WarnContext(ctx, "tokenexchange: exchange failed", "error", err, "retryable", errors.Is(err, ErrRetryable))
		return nil, err
	}
	e := &entry{tok: tok}
	if t.bearer {
		e.value = "Bearer " + tok.AccessToken
	} else {
		e.value = tok.AccessToken
	}
	if !tok.Expiry.IsZero() {
		exp := tok.Expiry.Add(-t.skew)
		if !subjectExpiry.IsZero() && subjectExpiry.Before(exp) {
			exp = subjectExpiry
		}
		if exp.After(t.now()) {
			e.expires = exp
		}
	}
	t.logger.DebugContext(ctx, "tokenexchange: token exchanged",
		"audience", t.cfg.Audience, "issued_token_type", tok.IssuedTokenType,
		"expires", tok.Expiry, "cached_until", e.expires, "duration", t.now().Sub(start))
	return e, nil
}
