// Package lru is the bounded, expiring cache behind introspection results
// (authn) and exchanged tokens (tokenexchange): a map from a SHA-256 key to
// a value with a deadline, least recently used entries evicted past the
// bound, expired entries dropped when met. Keys are hashes, so a cache
// never holds the token it remembers a result for.
package lru

import (
	"container/list"
	"sync"
	"time"
)

// Cache is safe for concurrent use.
type Cache[V any] struct {
	mu    sync.Mutex
	max   int
	items map[[32]byte]*list.Element
	order list.List // of *item[V], most recently used first
}

type item[V any] struct {
	key   [32]byte
	val   V
	until time.Time
}

// New returns a cache of at most max entries (max ≥ 1).
func New[V any](max int) *Cache[V] {
	return &Cache[V]{max: max, items: make(map[[32]byte]*list.Element)}
}

// Get returns the value stored under key if it is still live at now.
func (c *Cache[V]) Get(key [32]byte, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	it := el.Value.(*item[V])
	if !now.Before(it.until) {
		c.order.Remove(el)
		delete(c.items, key)
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return it.val, true
}

// Put stores val under key until the given time, evicting the least
// recently used entries past the bound.
func (c *Cache[V]) Put(key [32]byte, val V, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.order.Remove(el)
	}
	c.items[key] = c.order.PushFront(&item[V]{key: key, val: val, until: until})
	for len(c.items) > c.max {
		el := c.order.Back()
		c.order.Remove(el)
		delete(c.items, el.Value.(*item[V]).key)
	}
}

// Len returns the number of entries, live or not yet swept.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// Range calls f for every entry, most recently used first, with the cache
// locked (f must not call the cache). It is for audits and tests.
func (c *Cache[V]) Range(f func(key [32]byte, val V)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.order.Front(); el != nil; el = el.Next() {
		it := el.Value.(*item[V])
		f(it.key, it.val)
	}
}
