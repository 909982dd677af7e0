package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/mcpauth-go/mcpauth/internal/discovery"
)

// maxJWKSSize caps a JWKS response body.
const maxJWKSSize = 1 << 20

// minRSABits is the smallest RSA modulus accepted in a JWKS (RFC 7518 §3.3).
const minRSABits = 2048

// pubKey is one verification key from the issuer's JWKS, already converted
// to a crypto/* public key so the hot path does no JWK work.
type pubKey struct {
	kid   string
	alg   string // JWK "alg"; "" when the JWK does not name one
	key   crypto.PublicKey
	thumb string // RFC 7638 thumbprint, to keep identity across fetches
}

// compatible reports whether k may verify a token signed with alg: the JWK's
// own alg, when present, must equal it, and the key type must suit it.
func (k *pubKey) compatible(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch key := k.key.(type) {
	case *rsa.PublicKey:
		return alg[0] == 'R' || alg[0] == 'P'
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return key.Curve == elliptic.P256()
		case "ES384":
			return key.Curve == elliptic.P384()
		case "ES512":
			return key.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// keySet is an immutable snapshot of the issuer's keys. Readers load it
// through an atomic pointer and never lock.
type keySet struct {
	byKid   map[string][]*pubKey
	all     []*pubKey
	fetched time.Time // when it was fetched successfully
	expires time.Time // when a background refresh is due
}

// maxKidlessCandidates bounds the keys tried for a token without kid.
const maxKidlessCandidates = 8

// find returns the keys that may verify a token with the given kid and alg.
func (s *keySet) find(kid, alg string) []*pubKey {
	var out []*pubKey
	if kid != "" {
		keys := s.byKid[kid]
		if len(keys) == 1 && keys[0].compatible(alg) {
			return keys // the usual case, without a copy
		}
		for _, k := range keys {
			if k.compatible(alg) {
				out = append(out, k)
			}
		}
		return out
	}
	for _, k := range s.all {
		if k.compatible(alg) {
			out = append(out, k)
			if len(out) == maxKidlessCandidates {
				break
			}
		}
	}
	return out
}

// has reports whether k is still published in s.
func (s *keySet) has(k *pubKey) bool {
	if k.kid != "" {
		for _, c := range s.byKid[k.kid] {
			if c == k {
				return true
			}
		}
		return false
	}
	for _, c := range s.all {
		if c == k {
			return true
		}
	}
	return false
}

// fetchCall is one JWKS fetch shared by every waiter.
type fetchCall struct {
	done chan struct{}
	set  *keySet
	err  error
}

// keySource serves the issuer's keys: lock-free reads of the current
// snapshot, lazy first fetch, background refresh by Cache-Control, rate
// limited refetch on unknown kid, and last-good keys during an outage.
type keySource struct {
	v   *Verifier
	cur atomic.Pointer[keySet]

	mu       sync.Mutex
	call     *fetchCall
	lastMiss time.Time // start of the last kid-miss refetch
	lastFail time.Time // end of the last failed fetch
	fetches  atomic.Int64
}

// retryBackoff is the pause after a failed fetch before a request may
// trigger another one, so an outage does not become a fetch per request.
const retryBackoff = 2 * time.Second

// causeNoKey is the cause of rejecting a token whose kid and alg match no
// published key.
const causeNoKey = "no key in the issuer's JWKS matches the token's kid and alg"

// lookup returns the candidate keys for (kid, alg), at now.
func (s *keySource) lookup(ctx context.Context, kid, alg string, now time.Time) ([]*pubKey, error) {
	set := s.cur.Load()
	if set != nil && now.Sub(set.fetched) <= s.v.maxStale {
		if now.After(set.expires) {
			s.background(now)
		}
		if keys := set.find(kid, alg); len(keys) > 0 {
			return keys, nil
		}
		// Unknown kid: refetch at most once per RefreshInterval.
		s.mu.Lock()
		c := s.call
		if c == nil {
			if !s.lastMiss.IsZero() && now.Sub(s.lastMiss) < s.v.refreshInterval {
				s.mu.Unlock()
				return nil, invalid(causeNoKey)
			}
			s.lastMiss = now
			c = s.start()
		}
		s.mu.Unlock()
		newSet, err := s.wait(ctx, c)
		if err != nil {
			return nil, err
		}
		if keys := newSet.find(kid, alg); len(keys) > 0 {
			return keys, nil
		}
		return nil, invalid(causeNoKey)
	}

	// No usable snapshot: never fetched yet, or older than MaxStaleness.
	s.mu.Lock()
	c := s.call
	if c == nil {
		if !s.lastFail.IsZero() && now.Sub(s.lastFail) < retryBackoff {
			s.mu.Unlock()
			return nil, unavailable("issuer keys unavailable; retrying shortly", nil)
		}
		c = s.start()
	}
	s.mu.Unlock()
	newSet, err := s.wait(ctx, c)
	if err != nil {
		return nil, err
	}
	if keys := newSet.find(kid, alg); len(keys) > 0 {
		return keys, nil
	}
	return nil, invalid(causeNoKey)
}

// background starts a refresh without waiting for it, unless one is running
// or a fetch failed moments ago.
func (s *keySource) background(now time.Time) {
	s.mu.Lock()
	if s.call == nil && (s.lastFail.IsZero() || now.Sub(s.lastFail) >= retryBackoff) {
		s.start()
	}
	s.mu.Unlock()
}

// start begins a fetch; s.mu must be held. The fetch runs on the Verifier's
// lifetime context, not a request's, so a waiter that gives up does not
// cancel it for the others.
func (s *keySource) start() *fetchCall {
	c := &fetchCall{done: make(chan struct{})}
	s.call = c
	s.fetches.Add(1)
	go func() {
		set, err := s.fetch(s.v.life)
		s.mu.Lock()
		if err == nil {
			s.cur.Store(set)
			s.lastFail = time.Time{}
		} else {
			s.lastFail = s.v.now()
		}
		s.call = nil
		s.mu.Unlock()
		c.set, c.err = set, err
		close(c.done)
	}()
	return c
}

func (s *keySource) wait(ctx context.Context, c *fetchCall) (*keySet, error) {
	select {
	case <-c.done:
		if c.err != nil {
			return nil, unavailable("fetching the issuer's JWKS failed", c.err)
		}
		return c.set, nil
	case <-ctx.Done():
		return nil, unavailable("gave up waiting for the issuer's JWKS", ctx.Err())
	}
}

// fetch downloads and parses the JWKS.
func (s *keySource) fetch(ctx context.Context) (*keySet, error) {
	v := s.v
	u, err := v.jwksURL(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, v.fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("authn: JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		v.log.Warn("authn: JWKS fetch failed", "url", u, "error", err)
		return nil, fmt.Errorf("authn: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		v.log.Warn("authn: JWKS fetch failed", "url", u, "status", resp.StatusCode)
		return nil, fmt.Errorf("authn: GET %s: status %d", u, resp.StatusCode)
	}
	body, err := discovery.ReadLimited(resp.Body, maxJWKSSize)
	if err != nil {
		v.log.Warn("authn: JWKS fetch failed", "url", u, "error", err)
		return nil, fmt.Errorf("authn: GET %s: %w", u, err)
	}
	now := v.now()
	set, err := s.parse(body)
	if err != nil {
		v.log.Warn("authn: JWKS rejected", "url", u, "error", err)
		return nil, err
	}
	set.fetched = now
	set.expires = now.Add(v.cacheTTL(resp.Header))
	v.log.Debug("authn: JWKS fetched", "url", u, "keys", len(set.all), "refresh_in", set.expires.Sub(now))
	return set, nil
}

// parse converts a JWKS document into a snapshot, skipping keys that cannot
// verify signatures (private-only, symmetric, weak, unknown types), and
// reusing unchanged keys of the previous snapshot so cached tokens keep
// their key identity.
func (s *keySource) parse(body []byte) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("authn: JWKS is not valid JSON: %w", err)
	}
	prev := s.cur.Load()
	set := &keySet{byKid: make(map[string][]*pubKey, len(doc.Keys))}
	for i, raw := range doc.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			s.v.log.Warn("authn: skipping JWKS key", "index", i, "reason", err.Error())
			continue
		}
		if prev != nil {
			for _, old := range prev.byKid[k.kid] {
				if old.thumb == k.thumb && old.alg == k.alg {
					k = old
					break
				}
			}
		}
		set.all = append(set.all, k)
		if k.kid != "" {
			set.byKid[k.kid] = append(set.byKid[k.kid], k)
		}
	}
	if len(set.all) == 0 {
		return nil, errors.New("authn: JWKS has no usable signature verification keys")
	}
	return set, nil
}

func parseJWK(raw []byte) (*pubKey, error) {
	var meta struct {
		Kid    string   `json:"kid"`
		Alg    string   `json:"alg"`
		Use    string   `json:"use"`
		KeyOps []string `json:"key_ops"`
		Kty    string   `json:"kty"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if meta.Use != "" && meta.Use != "sig" {
		return nil, fmt.Errorf("use %q is not sig", meta.Use)
	}
	if meta.KeyOps != nil && !contains(meta.KeyOps, "verify") {
		return nil, errors.New("key_ops does not include verify")
	}
	if meta.Alg != "" && !asymmetricAlgs[meta.Alg] {
		return nil, fmt.Errorf("alg %q is not an accepted asymmetric signature algorithm", meta.Alg)
	}
	key, err := jwk.ParseKey(raw)
	if err != nil {
		return nil, fmt.Errorf("kty %q: %w", meta.Kty, err)
	}
	var exported any
	if err := jwk.Export(key, &exported); err != nil {
		return nil, fmt.Errorf("kty %q: %w", meta.Kty, err)
	}
	var pub crypto.PublicKey
	switch k := exported.(type) {
	case *rsa.PublicKey:
		pub = k
	case *rsa.PrivateKey:
		pub = &k.PublicKey
	case *ecdsa.PublicKey:
		pub = k
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	case ed25519.PublicKey:
		pub = k
	case ed25519.PrivateKey:
		pub = k.Public()
	default:
		return nil, fmt.Errorf("kty %q is not a supported signature key type", meta.Kty)
	}
	if rk, ok := pub.(*rsa.PublicKey); ok && rk.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("RSA key of %d bits is below %d", rk.N.BitLen(), minRSABits)
	}
	if ek, ok := pub.(*ecdsa.PublicKey); ok {
		switch ek.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return nil, errors.New("unsupported EC curve")
		}
	}
	thumb, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("thumbprint: %w", err)
	}
	return &pubKey{kid: meta.Kid, alg: meta.Alg, key: pub, thumb: string(thumb)}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// cacheTTL derives the background refresh period from Cache-Control
// max-age, clamped to [MinCacheTTL, MaxCacheTTL].
func (v *Verifier) cacheTTL(h http.Header) time.Duration {
	ttl := 5 * time.Minute
	for _, part := range strings.Split(h.Get("Cache-Control"), ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch strings.ToLower(name) {
		case "max-age":
			if n, err := strconv.Atoi(strings.Trim(val, `"`)); err == nil && n >= 0 {
				ttl = time.Duration(n) * time.Second
			}
		case "no-cache", "no-store":
			ttl = 0
		}
	}
	return min(max(ttl, v.minCacheTTL), v.maxCacheTTL)
}

// jwksURL returns the configured or discovered JWKS URL.
func (v *Verifier) jwksURL(ctx context.Context) (string, error) {
	if v.cfg.JWKSURL != "" {
		return v.cfg.JWKSURL, nil
	}
	md, err := v.metadata(ctx)
	if err != nil {
		return "", err
	}
	if md.JWKSURI == "" {
		return "", fmt.Errorf("authn: issuer metadata of %q has no jwks_uri", v.cfg.Issuer)
	}
	if err := checkFetchURL(md.JWKSURI); err != nil {
		return "", fmt.Errorf("authn: discovered jwks_uri: %w", err)
	}
	return md.JWKSURI, nil
}

// metadata discovers the issuer's metadata once (RFC 8414, then OIDC) and
// remembers it after the first success. A failure is remembered for
// retryBackoff, so that during an outage requests (one introspection per
// opaque token) do not each start a discovery round.
func (v *Verifier) metadata(ctx context.Context) (*discovery.Metadata, error) {
	v.mdMu.Lock()
	defer v.mdMu.Unlock()
	if v.md != nil {
		return v.md, nil
	}
	if v.mdErr != nil && v.now().Sub(v.mdFail) < retryBackoff {
		return nil, v.mdErr
	}
	fctx, cancel := context.WithTimeout(ctx, v.fetchTimeout)
	defer cancel()
	md, err := discovery.Fetch(fctx, v.client, v.cfg.Issuer)
	if err != nil {
		v.log.Warn("authn: issuer discovery failed", "issuer", v.cfg.Issuer, "error", err)
		if ctx.Err() == nil { // not the caller's own cancellation
			v.mdErr, v.mdFail = err, v.now()
		}
		return nil, err
	}
	v.md, v.mdErr = md, nil
	return md, nil
}
