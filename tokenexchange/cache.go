package tokenexchange

import (
	"sync"
	"time"
)

// entry is a cached exchanged token.
type entry struct {
	tok     *Token
	value   string    // header value: "Bearer <token>" or the bare token
	expires time.Time // zero: not cacheable

	key        [32]byte
	prev, next *entry // LRU list; guarded by cache.mu
}

// cache is a bounded LRU map from cache key to entry. Expired entries are
// dropped when met. It is safe for concurrent use.
type cache struct {
	mu   sync.Mutex
	max  int
	m    map[[32]byte]*entry
	head entry // sentinel: head.next is the most recently used
}

func newCache(max int) *cache {
	c := &cache{max: max, m: make(map[[32]byte]*entry)}
	c.head.next, c.head.prev = &c.head, &c.head
	return c
}

func (c *cache) unlink(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *cache) pushFront(e *entry) {
	e.prev, e.next = &c.head, c.head.next
	c.head.next.prev = e
	c.head.next = e
}

// get returns the live entry for key, or nil.
func (c *cache) get(key [32]byte, now time.Time) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[key]
	if e == nil {
		return nil
	}
	if !now.Before(e.expires) {
		c.unlink(e)
		delete(c.m, key)
		return nil
	}
	if c.head.next != e {
		c.unlink(e)
		c.pushFront(e)
	}
	return e
}

// put stores e under key, evicting the least recently used entries past max.
func (c *cache) put(key [32]byte, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[key]; old != nil {
		c.unlink(old)
	}
	e.key = key
	c.m[key] = e
	c.pushFront(e)
	for len(c.m) > c.max {
		last := c.head.prev
		c.unlink(last)
		delete(c.m, last.key)
	}
}

// len returns the number of entries, live or not yet swept.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
