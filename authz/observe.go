package authz

import (
	"context"
	"unsafe"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/mcpauth-go/mcpauth/observe"
)

// This file reports decisions to Config.Observer. Without an Observer the
// hook is one nil check.

// observe reports d, the decision on a request for method, to
// Config.Observer.Decision.
func (a *Authorizer) observe(ctx context.Context, method string, d Decision) {
	o := a.cfg.Observer
	if o == nil || o.Decision == nil {
		return
	}
	e := observe.Decision{Outcome: observe.Allowed, Method: methodNames[method], Policies: policyIDs(d.Policies)}
	if !d.Allowed {
		e.Outcome = observe.Denied
		if len(d.Scopes) > 0 {
			e.Outcome = observe.InsufficientScope
		}
	}
	if d.Action.Type != "" {
		e.Action = string(d.Action.ID)
	}
	o.Decision(ctx, e)
}

// methodNames maps each MCP method authz knows to itself: the method of a
// request points into its body, which is reused, so an event carries this
// copy instead (and nothing for a method the client made up).
var methodNames = func() map[string]string {
	m := make(map[string]string, len(mcpMethods))
	for k := range mcpMethods {
		m[k] = k
	}
	return m
}()

// policyIDs views ids as strings without copying (cedar.PolicyID is a
// string type); the slice is valid only during the Observer's call.
func policyIDs(ids []cedar.PolicyID) []string {
	if len(ids) == 0 {
		return nil
	}
	return unsafe.Slice((*string)(unsafe.Pointer(unsafe.SliceData(ids))), len(ids))
}
