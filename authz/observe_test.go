package authz

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mcpauth-go/mcpauth/observe"
)

// TestObserverDecisions: one Decision event per request the middleware
// answers or passes, with its outcome, a method authz knows (never the
// client's made-up one), the action and the deciding policies, and nothing
// naming the principal or the resource.
func TestObserverDecisions(t *testing.T) {
	var mu sync.Mutex
	var got []string
	obs := &observe.Observer{Decision: func(_ context.Context, e observe.Decision) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, e.Outcome.String()+" "+e.Method+" "+e.Action+" ["+strings.Join(e.Policies, ",")+"]")
	}}
	a := newTestAuthorizer(t, func(c *Config) { c.Observer = obs })
	rec := &recorder{}
	srv := httptest.NewServer(withIdentity(engineer(), a.Middleware(rec.handler(nil))))
	t.Cleanup(srv.Close)

	for _, body := range []string{
		call("get_weather", ""),                                   // allowed by read-only-tools
		call("delete_repo", ""),                                   // default deny (not an admin)
		call("deploy", ""),                                        // step-up: deploy-scope forbids without deploy:write
		`{"jsonrpc":"2.0","id":1,"method":"ping"}`,                // protocol method
		`{"jsonrpc":"2.0","id":1,"method":"secrets/steal_alice"}`, // unknown method
	} {
		post(t, srv, body, nil)
	}
	want := []string{
		"allowed tools/call call_tool [read-only-tools]",
		"denied tools/call call_tool []",
		"insufficient_scope tools/call call_tool [deploy-scope]",
		"allowed ping  []",
		"denied   []",
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("decision events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Without an Observer, a decision allocates no more than before: the hook
// is a nil check.
func TestObserverNilDecisionAllocs(t *testing.T) {
	a := newTestAuthorizer(t, nil)
	d := Decision{Allowed: true}
	if n := testing.AllocsPerRun(100, func() { a.observe(context.Background(), "tools/call", d) }); n != 0 {
		t.Fatalf("nil observer allocates %v", n)
	}
	a = newTestAuthorizer(t, func(c *Config) {
		c.Observer = &observe.Observer{Decision: func(context.Context, observe.Decision) {}}
	})
	if n := testing.AllocsPerRun(100, func() { a.observe(context.Background(), "tools/call", d) }); n != 0 {
		t.Fatalf("observer allocates %v", n)
	}
}
