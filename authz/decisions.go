package authz

import (
	"slices"
	"strings"
	"sync"

	cedar "github.com/cedar-policy/cedar-go"
)

// This file is the decision cache. A tools/list (or prompts/list,
// resources/list) response asks one decision per item, and the same caller
// lists the same items again on every connect and every list_changed
// notification, then calls some of them: whenever a decision cannot depend
// on a request's arguments (see Authorizer.decideOp) it is made once per
// caller, action, item, policy set and tool annotations version.

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
}

// decisionCache holds decisions made under one policy set. It lives in the
// policySet, so Reload starts an empty one. Safe for concurrent use.
type decisionCache struct {
	mu sync.RWMutex
	m  map[decisionKey]Decision
}

// get returns the cached decision for k.
func (c *decisionCache) get(k decisionKey) (Decision, bool) {
	c.mu.RLock()
	d, ok := c.m[k]
	c.mu.RUnlock()
	return d, ok
}

// put stores a copy of d: the name is copied (it points into a request or
// a response), and so are the policy ids (they live in a scratch).
func (c *decisionCache) put(k decisionKey, d Decision) {
	k.name = strings.Clone(k.name)
	d.Resource.ID = cedar.String(k.name)
	d.Policies = slices.Clone(d.Policies)
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
