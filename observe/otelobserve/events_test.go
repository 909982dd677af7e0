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
