package authn

import (
	"sync"
	"time"
)

// tokenCache remembers verified tokens by the SHA-256 of the token, never
// the token itself, so a repeated token costs a hash and a map lookup. It is
// bounded: when full, an arbitrary entry is evicted (Go's map iteration
// order), after first sweeping expired ones among a bounded sample, so a put
// costs the same however large the cache.
type tokenCache struct {
	mu   sync.RWMutex
	m    map[[32]byte]*cacheEntry
	size int
}

type cacheEntry struct {
	info  *TokenInfo // without the raw token
	key   *pubKey    // the key that verified it; the entry dies with the key
	until time.Time  // min(exp, verified + CacheMaxTTL)
}

func newTokenCache(size int) *tokenCache {
	return &tokenCache{m: make(map[[32]byte]*cacheEntry, min(size, 1024)), size: size}
}

func (c *tokenCache) get(h *[32]byte) *cacheEntry {
	c.mu.RLock()
	e := c.m[*h]
	c.mu.RUnlock()
	return e
}

// sweepSample bounds the entries a put into a full cache examines for
// expired ones: the write lock is held meanwhile, blocking every reader.
const sweepSample = 64

func (c *tokenCache) put(h *[32]byte, e *cacheEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.size {
		swept, seen := 0, 0
		for k, old := range c.m {
			if !now.Before(old.until) {
				delete(c.m, k)
				swept++
			}
			if seen++; swept >= 16 || seen >= sweepSample {
				break
			}
		}
		for k := range c.m {
			if len(c.m) < c.size {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[*h] = e
}

func (c *tokenCache) remove(h *[32]byte) {
	c.mu.Lock()
	delete(c.m, *h)
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
