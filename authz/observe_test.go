package authz

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/observe"
)

// events records Decision and ListFilter events as lines, and checks that
// each is timed.
type events struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (ev *events) observer() *observe.Observer {
	return &observe.Observer{
		Decision: func(_ context.Context, e observe.Decision) {
			ev.mu.Lock()
			defer ev.mu.Unlock()
			ev.lines = append(ev.lines, e.Outcome.String()+" "+e.Method+" "+e.Action+" ["+strings.Join(e.Policies, ",")+"]")
			ev.timed("decision", e.Start, e.Duration)
		},
		ListFilter: func(_ context.Context, e observe.ListFilter) {
			ev.mu.Lock()
			defer ev.mu.Unlock()
			ev.lines = append(ev.lines, fmt.Sprintf("filtered %s kept %d removed %d", e.Method, e.Kept, e.Removed))
			ev.timed("list filter", e.Start, e.Duration)
		},
	}
}

// timed fails unless an event has a start within the last minute and a
// duration no longer than the time since.
func (ev *events) timed(what string, start time.Time, d time.Duration) {
	if since := time.Since(start); start.IsZero() || since < 0 || since > time.Minute || d < 0 || d > since {
		ev.t.Errorf("%s event not timed: start %v, duration %v", what, start, d)
	}
}

// check compares the events recorded since the last check with want.
func (ev *events) check(want ...string) {
	ev.t.Helper()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if strings.Join(ev.lines, "\n") != strings.Join(want, "\n") {
		ev.t.Errorf("events:\n%s\nwant:\n%s", strings.Join(ev.lines, "\n"), strings.Join(want, "\n"))
	}
	ev.lines = nil
}

// TestObserverDecisions: one Decision event per request the middleware
// answers or passes, with its outcome, a method authz knows (never the
// client's made-up one), the action and the deciding policies, and nothing
// naming the principal or the resource; timed.
func TestObserverDecisions(t *testing.T) {
	ev := &events{t: t}
	a := newTestAuthorizer(t, func(c *Config) { c.Observer = ev.observer() })
	rec := &recorder{}
	srv := httptest.NewServer(withIdentity(engineer(), a.Middleware(rec.handler(nil))))
	t.Cleanup(srv.Close)
	anon := httptest.NewServer(withIdentity(nil, a.Middleware(rec.handler(nil))))
	t.Cleanup(anon.Close)

	for _, body := range []string{
		call("get_weather", ""),                                      // allowed by read-only-tools
		call("delete_repo", ""),                                      // default deny (not an admin)
		call("deploy", ""),                                           // step-up: deploy-scope forbids without deploy:write
		`{"jsonrpc":"2.0","id":1,"method":"ping"}`,                   // protocol method
		`{"jsonrpc":"2.0","id":1,"method":"secrets/steal_alice"}`,    // unknown method
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`, // no tool name: invalid params
		`{"jsonrpc":"2.0","id":1,`,                                   // malformed
	} {
		post(t, srv, body, nil)
	}
	post(t, anon, call("get_weather", ""), nil) // no identity: refused before the body is read
	ev.check(
		"allowed tools/call call_tool [read-only-tools]",
		"denied tools/call call_tool []",
		"insufficient_scope tools/call call_tool [deploy-scope]",
		"allowed ping  []",
		"denied   []",
		"denied tools/call  []",
		"denied   []",
		"denied   []",
	)
}

// TestObserverListFilter: a filtered list is one ListFilter event with the
// list method and the numbers of items kept and removed (no names); a list
// response that cannot be filtered is a second Decision, a denial naming
// the list method; an error response holds no list and makes no event.
func TestObserverListFilter(t *testing.T) {
	ev := &events{t: t}
	a := newTestAuthorizer(t, func(c *Config) { c.Observer = ev.observer() })

	serveList(t, a, "tools/list", "application/json", toolsListResult, 200)
	ev.check("allowed tools/list  []", "filtered tools/list kept 2 removed 3")

	serveList(t, a, "resources/templates/list", "text/event-stream",
		"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"resourceTemplates\":[{\"uriTemplate\":\"file:///etc/{name}\"},{\"uriTemplate\":\"file:///home/{name}\"},{\"uriTemplate\":\"file:///tmp/{name}\"}]}}\n\n", 200)
	ev.check("allowed resources/templates/list  []", "filtered resources/templates/list kept 2 removed 1")

	serveList(t, a, "prompts/list", "application/json", `{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"x"}}`, 200)
	ev.check("allowed prompts/list  []")

	serveList(t, a, "tools/list", "text/plain", `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"delete_repo"}]}}`, 200)
	ev.check("allowed tools/list  []", "denied tools/list  []")
}

// TestObserverAuthorize: the programmatic Authorize reports its decisions
// as the middleware does, refusals with an error as denials.
func TestObserverAuthorize(t *testing.T) {
	ev := &events{t: t}
	a := newTestAuthorizer(t, func(c *Config) { c.Observer = ev.observer() })
	ctx := authn.NewContext(context.Background(), engineer())
	for _, tc := range []struct {
		ctx     context.Context
		body    string
		wantErr bool
	}{
		{ctx, call("get_weather", ""), false},
		{ctx, call("delete_repo", ""), false},
		{ctx, call("deploy", ""), false},
		{ctx, `{"jsonrpc":"2.0","id":1,"method":"secrets/steal_alice"}`, false},
		{ctx, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`, true},
		{ctx, `{"jsonrpc":"2.0",`, true},
		{context.Background(), call("get_weather", ""), true},
	} {
		if _, err := a.Authorize(tc.ctx, []byte(tc.body)); (err != nil) != tc.wantErr {
			t.Fatalf("Authorize(%s): %v", tc.body, err)
		}
	}
	ev.check(
		"allowed tools/call call_tool [read-only-tools]",
		"denied tools/call call_tool []",
		"insufficient_scope tools/call call_tool [deploy-scope]",
		"denied   []",
		"denied tools/call  []",
		"denied   []",
		"denied   []",
	)
}

// Without an Observer, reporting a decision allocates nothing; with one,
// neither does it.
func TestObserverNilDecisionAllocs(t *testing.T) {
	a := newTestAuthorizer(t, nil)
	d := Decision{Allowed: true}
	if n := testing.AllocsPerRun(100, func() {
		a.observe(context.Background(), a.decisionStart(), "tools/call", d)
		a.observeFilter(context.Background(), a.filterStart(), mcpMethods["tools/list"], 1, 2)
	}); n != 0 {
		t.Fatalf("nil observer allocates %v", n)
	}
	if !a.decisionStart().IsZero() || !a.filterStart().IsZero() {
		t.Fatal("the clock is read without an observer")
	}
	a = newTestAuthorizer(t, func(c *Config) {
		c.Observer = &observe.Observer{
			Decision:   func(context.Context, observe.Decision) {},
			ListFilter: func(context.Context, observe.ListFilter) {},
		}
	})
	if n := testing.AllocsPerRun(100, func() {
		a.observe(context.Background(), a.decisionStart(), "tools/call", d)
		a.observeFilter(context.Background(), a.filterStart(), mcpMethods["tools/list"], 1, 2)
	}); n != 0 {
		t.Fatalf("observer allocates %v", n)
	}
}

// BenchmarkObservedDecision is a tools/call through the middleware at 100
// policies without an Observer and with one whose functions do nothing:
// the difference is the cost of reporting (two clock reads and the call).
func BenchmarkObservedDecision(b *testing.B) {
	for _, tc := range []struct {
		name string
		obs  *observe.Observer
	}{
		{"observer=nil", nil},
		{"observer=noop", &observe.Observer{Decision: func(context.Context, observe.Decision) {}, ListFilter: func(context.Context, observe.ListFilter) {}}},
	} {
		a, err := New(Config{Policies: benchPolicies(100), Observer: tc.obs})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) { serveBench(b, a.Middleware(bareHandler)) })
	}
}
