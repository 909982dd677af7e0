package authz

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	cedar "github.com/cedar-policy/cedar-go"
)

// This file is the decision cache. A tools/list (or prompts/list,
// resources/list) response asks one decision per item, and the same caller
// lists the same items again on every connect and every list_changed
// notification, then calls some of them, often with the same arguments: a
// decision is made once per caller, action, item, policy set, tool
// annotations version and source text of the arguments its policies can
// read (none when they read none; see Authorizer.decideOp).

// maxCachedDecisions bounds one policy set's decision cache; when full it
// is emptied and starts again. An entry keeps its subject alive (a few KB
// at most), so the bound is also one on the subjects held beyond the
// subject cache.
const maxCachedDecisions = 1 << 14

// decisionKey names one cached decision: the action on one named item
// (tool, prompt or resource) for one subject, under the tool annotations
// of one version. The *subject key keeps that subject alive while the
// entry lives, so its address names it alone: a subject rebuilt for the
// same token, or another caller's, never finds this entry.
type decisionKey struct {
	sub    *subject
	action cedar.EntityUID
	name   string // the resource id (action and type fix the entity type)
	ann    uint64 // toolAnnotations.version when decided
	// args is the source text of the arguments the policies can read
	// (see operation.argKey); empty when they read none.
	args string
}

// decisionCache holds decisions made under one policy set. It lives in the
// policySet, so Reload starts an empty one. Safe for concurrent use.
type decisionCache struct {
	mu sync.RWMutex
	m  map[decisionKey]Decision
	// seen admits a decision keyed on arguments only the second time its
	// key is asked (see admit): calls whose arguments never repeat (a new
	// path, query or id each time) would otherwise each pay for an entry
	// no one reads, and keep the cache full of them.
	seen [admitSlots]atomic.Uint64
	seed maphash.Seed
}

// admitSlots is the number of key hashes decisionCache.seen remembers.
const admitSlots = 1 << 12

// admit reports whether a decision under k should be stored: always when
// it is not keyed on arguments, else when k's hash was seen since it was
// last overwritten in seen by another key's.
func (c *decisionCache) admit(k *decisionKey) bool {
	if k.args == "" {
		return true
	}
	var mh maphash.Hash
	mh.SetSeed(c.seed)
	mh.WriteString(k.name)
	mh.WriteString(k.args)
	h := mh.Sum64()
	// The rest of the key, mixed in without hashing its strings again:
	// the subject's address, the action (by its id: its type is fixed)
	// and the annotations version.
	h ^= uint64(uintptr(unsafe.Pointer(k.sub)))*0x9e3779b97f4a7c15 ^ k.ann*0xbf58476d1ce4e5b9 ^ uint64(len(k.action.ID))<<56 ^ uint64(len(k.name))<<48
	h |= 1 // never 0, the empty slot
	slot := &c.seen[h%admitSlots]
	if slot.Load() == h {
		return true
	}
	slot.Store(h)
	return false
}

// getInto sets *d to the cached decision for *k, if there is one.
func (c *decisionCache) getInto(k *decisionKey, d *Decision) bool {
	c.mu.RLock()
	v, ok := c.m[*k]
	c.mu.RUnlock()
	if ok {
		*d = v
	}
	return ok
}

// put stores d under k. It copies the name and the arguments of k, which
// point into a request, a response or a scratch, into one new string; d
// must own its slices (see policySet.ownedIDs).
func (c *decisionCache) put(k decisionKey, d Decision) {
	var b strings.Builder
	b.Grow(len(k.name) + len(k.args))
	b.WriteString(k.name)
	b.WriteString(k.args)
	s := b.String()
	k.name, k.args = s[:len(k.name)], s[len(k.name):]
	d.Resource.ID = cedar.String(k.name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedDecisions {
		c.m = make(map[decisionKey]Decision, 64)
	}
	c.m[k] = d
}

// len returns the number of cached decisions.
func (c *decisionCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
