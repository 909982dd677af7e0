package authn

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"time"
	"unsafe"
)

// tokenCache remembers verified tokens so a repeated token costs a hash,
// a map lookup and a comparison instead of a signature check.
//
// The map is keyed by a 64-bit keyed hash of the token's tail (tailHash:
// hash/maphash with a seed drawn per cache, so nobody outside the process
// can aim at a slot). A hash only picks the candidate: an entry answers a lookup only
// when its token equals the presented one in full, compared in constant
// time (sameToken), so two tokens are never confused. Two tokens with the
// same hash just share one slot, the later one replacing the earlier.
//
// The token is kept inside the cached TokenInfo (its raw field), which
// never prints, logs or marshals it; nothing else in an entry holds it.
//
// The cache is bounded: when full, an arbitrary entry is evicted (Go's map
// iteration order), after first sweeping expired ones among a bounded
// sample, so a put costs the same however large the cache.
type tokenCache struct {
	seed maphash.Seed
	hash func(seed maphash.Seed, token string) uint64 // tailHash; replaced by tests to force collisions
	mu   sync.RWMutex
	m    map[uint64]*cacheEntry
	size int

	examined int // entries a put into a full cache looked at, in all (tests bound it)
}

type cacheEntry struct {
	info  *TokenInfo // carries the token (info.Token()); shared, read-only
	key   *pubKey    // the key that verified it; the entry dies with the key
	until time.Time  // min(exp, verified + TokenCacheMaxTTL)
}

func newTokenCache(size int) *tokenCache {
	return &tokenCache{
		seed: maphash.MakeSeed(),
		hash: tailHash,
		m:    make(map[uint64]*cacheEntry, min(size, 1024)),
		size: size,
	}
}

// get returns the entry for token, or nil.
func (c *tokenCache) get(token string) *cacheEntry {
	h := c.hash(c.seed, token)
	c.mu.RLock()
	e := c.m[h]
	c.mu.RUnlock()
	if e == nil || !sameToken(*e.info.raw, token) {
		return nil
	}
	return e
}

// sweepSample bounds the entries a put into a full cache examines for
// expired ones: the write lock is held meanwhile, blocking every reader.
const sweepSample = 64

// put remembers e, whose info must carry its token.
func (c *tokenCache) put(e *cacheEntry, now time.Time) {
	h := c.hash(c.seed, *e.info.raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.size {
		swept, seen := 0, 0
		for k, old := range c.m {
			c.examined++
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
			c.examined++
			delete(c.m, k)
		}
	}
	c.m[h] = e
}

// remove forgets token.
func (c *tokenCache) remove(token string) {
	h := c.hash(c.seed, token)
	c.mu.Lock()
	if e := c.m[h]; e != nil && sameToken(*e.info.raw, token) {
		delete(c.m, h)
	}
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// sameToken reports whether a == b, in time that depends only on their
// lengths (like crypto/subtle.ConstantTimeCompare, but 32 bytes per step:
// a token is about a kilobyte and this runs on every cache hit).
func sameToken(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	n := len(a)
	pa := unsafe.Slice(unsafe.StringData(a), n)
	pb := unsafe.Slice(unsafe.StringData(b), n)
	le := binary.LittleEndian
	var diff uint64
	i := 0
	for ; i+32 <= n; i += 32 {
		x, y := pa[i:i+32], pb[i:i+32]
		diff |= (le.Uint64(x) ^ le.Uint64(y)) | (le.Uint64(x[8:]) ^ le.Uint64(y[8:])) |
			(le.Uint64(x[16:]) ^ le.Uint64(y[16:])) | (le.Uint64(x[24:]) ^ le.Uint64(y[24:]))
	}
	for ; i < n; i++ {
		diff |= uint64(pa[i] ^ pb[i])
	}
	return diff == 0
}

// tailHash is the cache's lookup hash: a keyed hash (hash/maphash) of the
// token's length and last 32 bytes, which lie in the signature. A hash
// only picks a slot; sameToken decides, so tokens sharing a tail merely
// share a slot. Hashing the whole token would add nothing but time.
func tailHash(seed maphash.Seed, token string) uint64 {
	tail := token
	if len(tail) > 32 {
		tail = tail[len(tail)-32:]
	}
	var buf [40]byte
	binary.LittleEndian.PutUint64(buf[:], uint64(len(token)))
	n := 8 + copy(buf[8:], tail)
	return maphash.Bytes(seed, buf[:n])
}
