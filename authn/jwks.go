package authn

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpauth-go/mcpauth/internal/discovery"
)

// jwksSettings is what the issuer's JWKS key source needs, resolved from
// Config by NewVerifier (defaults applied).
type jwksSettings struct {
	url             func(ctx context.Context) (string, error) // configured or discovered JWKS URL
	client          *http.Client
	fetchTimeout    time.Duration
	refreshInterval time.Duration // Config.RefreshInterval
	maxStale        time.Duration // Config.MaxStaleness
	minTTL, maxTTL  time.Duration // Config.KeyCacheMinTTL, KeyCacheMaxTTL
	log             *slog.Logger
	now             func() time.Time
	life            context.Context // the Verifier's lifetime; fetches run on it
	obs             hooks           // Config.Observer (observe.go)
}

// jwksSource serves the issuer's keys: lock-free reads of the current
// snapshot, lazy first fetch, background refresh by Cache-Control, rate
// limited refetch on unknown kid, and last-good keys during an outage.
type jwksSource struct {
	cfg jwksSettings
	cur atomic.Pointer[keySet]

	mu       sync.Mutex
	call     *fetchCall
	lastMiss time.Time // start of the last kid-miss refetch
	lastFail time.Time // end of the last failed fetch
	fetches  atomic.Int64
}

// fetchCall is one JWKS fetch shared by every waiter.
type fetchCall struct {
	done chan struct{}
	set  *keySet
	err  error
}

// retryBackoff is the pause after a failed fetch before a request may
// trigger another one, so an outage does not become a fetch per request.
const retryBackoff = 2 * time.Second

// stillValid reports whether k is in a snapshot young enough to use, and
// starts a background refresh when that snapshot is due for one.
func (s *jwksSource) stillValid(k *pubKey, now time.Time) bool {
	set := s.cur.Load()
	if set == nil || now.Sub(set.fetched) > s.cfg.maxStale || !set.has(k) {
		return false
	}
	if now.After(set.expires) {
		s.background(now)
	}
	return true
}

// ready fetches the keys unless a usable snapshot is at hand, and waits
// for the result.
func (s *jwksSource) ready(ctx context.Context) error {
	now := s.cfg.now()
	if set := s.cur.Load(); set != nil && now.Sub(set.fetched) <= s.cfg.maxStale {
		return nil
	}
	s.mu.Lock()
	c := s.call
	if c == nil {
		c = s.start()
	}
	s.mu.Unlock()
	_, err := s.wait(ctx, c)
	return err
}

// lookup returns the candidate keys for (kid, alg), at now.
func (s *jwksSource) lookup(ctx context.Context, kid, alg string, now time.Time) ([]*pubKey, error) {
	set := s.cur.Load()
	if set != nil && now.Sub(set.fetched) <= s.cfg.maxStale {
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
			if !s.lastMiss.IsZero() && now.Sub(s.lastMiss) < s.cfg.refreshInterval {
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
func (s *jwksSource) background(now time.Time) {
	s.mu.Lock()
	if s.call == nil && (s.lastFail.IsZero() || now.Sub(s.lastFail) >= retryBackoff) {
		s.start()
	}
	s.mu.Unlock()
}

// start begins a fetch; s.mu must be held. The fetch runs on the Verifier's
// lifetime context, not a request's, so a waiter that gives up does not
// cancel it for the others.
func (s *jwksSource) start() *fetchCall {
	c := &fetchCall{done: make(chan struct{})}
	s.call = c
	s.fetches.Add(1)
	go func() {
		set, err := s.fetchObserved(s.cfg.life)
		s.mu.Lock()
		if err == nil {
			s.cur.Store(set)
			s.lastFail = time.Time{}
		} else {
			s.lastFail = s.cfg.now()
		}
		s.call = nil
		s.mu.Unlock()
		c.set, c.err = set, err
		close(c.done)
	}()
	return c
}

func (s *jwksSource) wait(ctx context.Context, c *fetchCall) (*keySet, error) {
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
func (s *jwksSource) fetch(ctx context.Context) (*keySet, error) {
	log := s.cfg.log
	u, err := s.cfg.url(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("authn: JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.cfg.client.Do(req)
	if err != nil {
		log.Warn("authn: JWKS fetch failed", "url", u, "error", err)
		return nil, fmt.Errorf("authn: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		log.Warn("authn: JWKS fetch failed", "url", u, "status", resp.StatusCode)
		return nil, fmt.Errorf("authn: GET %s: status %d", u, resp.StatusCode)
	}
	body, err := discovery.ReadLimited(resp.Body, maxJWKSSize)
	if err != nil {
		log.Warn("authn: JWKS fetch failed", "url", u, "error", err)
		return nil, fmt.Errorf("authn: GET %s: %w", u, err)
	}
	now := s.cfg.now()
	set, err := parseJWKS(body, s.cur.Load(), log)
	if err != nil {
		log.Warn("authn: JWKS rejected", "url", u, "error", err)
		return nil, err
	}
	set.fetched = now
	set.expires = now.Add(s.cacheTTL(resp.Header))
	log.Debug("authn: JWKS fetched", "url", u, "keys", len(set.all), "refresh_in", set.expires.Sub(now))
	return set, nil
}

// cacheTTL derives the background refresh period from Cache-Control
// max-age, clamped to [KeyCacheMinTTL, KeyCacheMaxTTL].
func (s *jwksSource) cacheTTL(h http.Header) time.Duration {
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
	return min(max(ttl, s.cfg.minTTL), s.cfg.maxTTL)
}
