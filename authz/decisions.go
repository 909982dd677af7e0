package authz

import (
	"strings"
	"sync"
)

// This file is the decision cache of list filtering: a tools/list (or
// prompts/list, resources/list) response asks one decision per item, and
// the same caller lists the same items again on every connect and every
// list_changed notification.

// maxCachedDecisions bounds one policy set's decision cache; when full it
// is emptied and starts again.
const maxCachedDecisions = 1 << 16

// decisionKey names one cached decision: the operation on one named item
// (without arguments) for one subject, under the tool annotations of one
// version. The *subject key keeps that subject alive while the entry
// lives, so its address names it alone: a subject rebuilt for the same
// token, or another caller's, never finds this entry.
type decisionKey struct {
	sub  *subject
	kind methodKind
	name string
	ann  uint64 // toolAnnotations.version when decided
}

// decisionCache holds decisions made under one policy set. It lives in the
// policySet, so Reload starts an empty one. Safe for concurrent use.
type decisionCache struct {
	mu sync.RWMutex
	m  map[decisionKey]bool
}

// get returns the cached decision for k.
func (c *decisionCache) get(k decisionKey) (allowed, ok bool) {
	c.mu.RLock()
	allowed, ok = c.m[k]
	c.mu.RUnlock()
	return allowed, ok
}

// put stores a decision, copying the name (it points into a response).
func (c *decisionCache) put(k decisionKey, allowed bool) {
	k.name = strings.Clone(k.name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedDecisions {
		c.m = make(map[decisionKey]bool, 64)
	}
	c.m[k] = allowed
}

// len returns the number of cached decisions.
func (c *decisionCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
