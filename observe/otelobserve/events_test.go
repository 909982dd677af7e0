package otelobserve_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"

	"github.com/mcpauth-go/mcpauth/observe"
)

// TestOtherEvents: JWKS fetches, introspections, exchanges and refreshes
// become counters by outcome, duration histograms and spans with their own
// times; a cached exchange is counted but neither timed nor traced.
func TestOtherEvents(t *testing.T) {
	tm := newTelemetry(t)
	ctx := context.Background()
	start := time.Now().Add(-time.Second)
	const iss = "https://login.example.com"
	tm.obs.KeyFetch(ctx, observe.KeyFetch{Issuer: iss, Outcome: observe.OK, Keys: 2, Start: start, Duration: 3 * time.Millisecond})
	tm.obs.KeyFetch(ctx, observe.KeyFetch{Issuer: iss, Outcome: observe.Unavailable, Start: start, Duration: time.Millisecond})
	tm.obs.Introspection(ctx, observe.Introspection{Issuer: iss, Outcome: observe.Invalid, Cause: observe.CauseInactive, Start: start, Duration: time.Millisecond})
	tm.obs.Exchange(ctx, observe.Exchange{Cache: observe.CacheMiss, Outcome: observe.OK, Start: start, Duration: 5 * time.Millisecond})
	tm.obs.Exchange(ctx, observe.Exchange{Cache: observe.CacheHit, Outcome: observe.OK})
	tm.obs.Exchange(ctx, observe.Exchange{Cache: observe.CacheMiss, Outcome: observe.Failed, Start: start, Duration: time.Millisecond})
	tm.obs.Refresh(ctx, observe.Refresh{Outcome: observe.OK, Start: start, Duration: 7 * time.Millisecond})
	tm.obs.Refresh(ctx, observe.Refresh{Outcome: observe.Unavailable, Start: start, Duration: time.Millisecond})

	for name, want := range map[string]map[string]int64{
		"mcpauth.authn.jwks.fetches": {
			"mcpauth.issuer=" + iss + ",mcpauth.outcome=ok":          1,
			"mcpauth.issuer=" + iss + ",mcpauth.outcome=unavailable": 1,
		},
		"mcpauth.authn.introspections": {
			"mcpauth.cause=inactive,mcpauth.issuer=" + iss + ",mcpauth.outcome=invalid": 1,
		},
		"mcpauth.tokenexchange.exchanges": {
			"mcpauth.cache.result=miss,mcpauth.outcome=ok":     1,
			"mcpauth.cache.result=hit,mcpauth.outcome=ok":      1,
			"mcpauth.cache.result=miss,mcpauth.outcome=failed": 1,
		},
		"mcpauth.upstream.refreshes": {
			"mcpauth.outcome=ok":          1,
			"mcpauth.outcome=unavailable": 1,
		},
	} {
		if got := tm.counts(t, name); !equal(got, want) {
			t.Errorf("%s = %v\nwant %v", name, got, want)
		}
	}
	for name, want := range map[string]uint64{
		"mcpauth.authn.jwks.fetch.duration":    2,
		"mcpauth.authn.introspection.duration": 1,
		"mcpauth.tokenexchange.duration":       2,
		"mcpauth.upstream.refresh.duration":    2,
		"mcpauth.authn.verification.duration":  0,
	} {
		if n := tm.histogramCount(t, name); n != want {
			t.Errorf("%s has %d values, want %d", name, n, want)
		}
	}

	spans := map[string]int{}
	for _, s := range tm.spans.Ended() {
		spans[s.Name()]++
		if !s.StartTime().Equal(start) {
			t.Errorf("%s starts at %v, want the event's start %v", s.Name(), s.StartTime(), start)
		}
		if s.Name() == "mcpauth.authn.introspect" && (s.Status().Code != codes.Error || s.Status().Description != "inactive") {
			t.Errorf("introspect span status %+v", s.Status())
		}
		if s.Name() == "mcpauth.upstream.refresh" && s.EndTime().Sub(s.StartTime()) == 7*time.Millisecond && s.Status().Code == codes.Error {
			t.Error("a successful refresh span has an error status")
		}
	}
	want := map[string]int{
		"mcpauth.authn.jwks.fetch": 2, "mcpauth.authn.introspect": 1,
		"mcpauth.tokenexchange.exchange": 2, "mcpauth.upstream.refresh": 2,
	}
	if len(spans) != len(want) {
		t.Errorf("spans %v, want %v", spans, want)
	}
	for k, v := range want {
		if spans[k] != v {
			t.Errorf("spans %v, want %v", spans, want)
			break
		}
	}
}

// TestConcurrentVerifications: cache hits of two issuers counted from many
// goroutines at once add up exactly (run with -race).
func TestConcurrentVerifications(t *testing.T) {
	tm := newTelemetry(t)
	issuers := []string{"https://a.example", "https://b.example"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				iss := issuers[(g+i)%2]
				tm.obs.Verification(context.Background(), observe.Verification{Issuer: iss, Cache: observe.CacheHit})
			}
		})
	}
	wg.Wait()
	want := map[string]int64{}
	for _, iss := range issuers {
		want["mcpauth.cause=,mcpauth.issuer="+iss+",mcpauth.outcome=ok"] = 4000
	}
	if got := tm.counts(t, "mcpauth.authn.verifications"); !equal(got, want) {
		t.Fatalf("verifications = %v, want %v", got, want)
	}
}

// TestAuthzEvents: decisions are counted and timed, list filters counted by
// item (a zero count adds no series) and timed; their spans carry the
// event's own times and are recorded only under a request's span.
func TestAuthzEvents(t *testing.T) {
	tm := newTelemetry(t)
	ctx, req := tm.tp.Tracer("test").Start(context.Background(), "request")
	start := time.Now().Add(-time.Second)
	tm.obs.Decision(ctx, observe.Decision{Outcome: observe.Denied, Method: "tools/call", Action: "call_tool", Start: start, Duration: 40 * time.Microsecond})
	tm.obs.ListFilter(ctx, observe.ListFilter{Method: "prompts/list", Kept: 3, Start: start, Duration: 70 * time.Microsecond})
	req.End()
	tm.obs.Decision(context.Background(), observe.Decision{Outcome: observe.Allowed, Method: "ping", Start: start})
	tm.obs.ListFilter(context.Background(), observe.ListFilter{Method: "prompts/list", Kept: 1, Removed: 2, Start: start, Duration: time.Microsecond})

	if got, want := tm.counts(t, "mcpauth.authz.list.items"), map[string]int64{
		"mcp.method.name=prompts/list,mcpauth.authz.list.item=kept":    4,
		"mcp.method.name=prompts/list,mcpauth.authz.list.item=removed": 2,
	}; !equal(got, want) {
		t.Errorf("list items = %v, want %v", got, want)
	}
	for name, want := range map[string]uint64{"mcpauth.authz.decision.duration": 2, "mcpauth.authz.list.filter.duration": 2} {
		if n := tm.histogramCount(t, name); n != want {
			t.Errorf("%s has %d values, want %d", name, n, want)
		}
	}
	got := map[string]time.Duration{}
	for _, s := range tm.spans.Ended() {
		if s.Name() == "request" {
			continue
		}
		if !s.StartTime().Equal(start) || s.Parent().SpanID() != req.SpanContext().SpanID() {
			t.Errorf("%s: start %v parent %v, want %v under the request", s.Name(), s.StartTime(), s.Parent().SpanID(), start)
		}
		if s.Status().Code == codes.Error {
			t.Errorf("%s has an error status", s.Name())
		}
		got[s.Name()] = s.EndTime().Sub(s.StartTime())
	}
	if want := map[string]time.Duration{"mcpauth.authz.decision": 40 * time.Microsecond, "mcpauth.authz.list.filter": 70 * time.Microsecond}; len(got) != len(want) ||
		got["mcpauth.authz.decision"] != want["mcpauth.authz.decision"] || got["mcpauth.authz.list.filter"] != want["mcpauth.authz.list.filter"] {
		t.Errorf("spans %v, want %v", got, want)
	}
}
