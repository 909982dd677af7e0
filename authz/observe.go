package authz

import (
	"context"
	"time"
	"unsafe"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/mcpauth-go/mcpauth/observe"
)

// This file reports decisions and filtered lists to Config.Observer.
// Without an Observer each hook is one nil check, and the clock is not
// read.

// decisionStart returns the time now when decisions are observed, and the
// zero time otherwise (without reading the clock).
func (a *Authorizer) decisionStart() time.Time {
	if o := a.cfg.Observer; o != nil && o.Decision != nil {
		return time.Now()
	}
	return time.Time{}
}

// filterStart is decisionStart for filtering a list response, which is
// reported to ListFilter (or, when it fails, to Decision).
func (a *Authorizer) filterStart() time.Time {
	if o := a.cfg.Observer; o != nil && (o.Decision != nil || o.ListFilter != nil) {
		return time.Now()
	}
	return time.Time{}
}

// observe reports d, the decision on a request for method made since start
// (zero: at once), to Config.Observer.Decision.
func (a *Authorizer) observe(ctx context.Context, start time.Time, method string, d Decision) {
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
	if start.IsZero() {
		e.Start = time.Now()
	} else {
		e.Start, e.Duration = start, time.Since(start)
	}
	o.Decision(ctx, e)
}

// observeFilter reports a list response of method m filtered since start
// to Config.Observer.ListFilter.
func (a *Authorizer) observeFilter(ctx context.Context, start time.Time, m mcpMethod, kept, removed int) {
	o := a.cfg.Observer
	if o == nil || o.ListFilter == nil {
		return
	}
	o.ListFilter(ctx, observe.ListFilter{Method: listMethod(m), Kept: kept, Removed: removed, Start: start, Duration: time.Since(start)})
}

// listMethod names the list method m is.
func listMethod(m mcpMethod) string {
	switch m.listKey {
	case "tools":
		return "tools/list"
	case "prompts":
		return "prompts/list"
	case "resources":
		return "resources/list"
	case "resourceTemplates":
		return "resources/templates/list"
	}
	return ""
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
