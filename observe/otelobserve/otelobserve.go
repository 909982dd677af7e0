// Package otelobserve records the events of package
// github.com/mcpauth-go/mcpauth/observe as OpenTelemetry metrics and spans,
// so the Prometheus or OTLP exporter a server already runs shows why
// requests are refused, how often keys are fetched, and where the time of
// a verification, a token exchange or an upstream refresh goes.
//
// It is a module of its own so that the main module never depends on
// OpenTelemetry. Build one Observer and set it in every Config:
//
//	obs, err := otelobserve.New(otelobserve.Config{MeterProvider: mp, TracerProvider: tp})
//	v, err := authn.NewVerifier(authn.Config{Issuer: iss, Audience: aud, Observer: obs})
//	az, err := authz.New(authz.Config{Policies: policies, Observer: obs})
//
// # Metrics
//
// Counters (attributes in brackets):
//
//	mcpauth.authn.verifications         {mcpauth.issuer, mcpauth.outcome, mcpauth.cause}
//	mcpauth.authn.token_cache.lookups   {mcpauth.issuer, mcpauth.cache.result = hit | miss}
//	mcpauth.authn.jwks.fetches          {mcpauth.issuer, mcpauth.outcome}
//	mcpauth.authn.introspections        {mcpauth.issuer, mcpauth.outcome, mcpauth.cause}
//	mcpauth.authz.decisions             {mcpauth.outcome, mcp.method.name, mcpauth.authz.action, mcpauth.authz.policies}
//	mcpauth.authz.list.items            {mcp.method.name, mcpauth.authz.list.item = kept | removed}
//	mcpauth.tokenexchange.exchanges     {mcpauth.outcome, mcpauth.cache.result}
//	mcpauth.upstream.refreshes          {mcpauth.outcome}
//
// and histograms of the durations, in seconds, of the work that was done
// (a cached answer is not timed): mcpauth.authn.verification.duration,
// mcpauth.authn.jwks.fetch.duration, mcpauth.authn.introspection.duration,
// mcpauth.authz.decision.duration {mcpauth.outcome, mcp.method.name},
// mcpauth.authz.list.filter.duration {mcp.method.name} (one value per
// filtered list response: its count is the number of lists filtered),
// mcpauth.tokenexchange.duration and mcpauth.upstream.refresh.duration.
//
// The two authn counters are asynchronous: a verification answered from the
// token cache (the warm path, about 120 ns) adds one to an atomic counter
// (one of eight per issuer, so that concurrent requests do not contend for
// one cache line) that is read at collection, instead of calling into the
// metrics SDK, which would cost as much as the verification itself.
//
// Outcome and cause labels are those of observe.Outcome and observe.Cause;
// mcpauth.authz.policies is the comma-separated list of the ids of the
// policies that determined a decision ("" for a default denial). A token
// an authn.MultiVerifier refuses before routing it to an issuer (no iss,
// an untrusted one, a malformed token) is counted with mcpauth.issuer "".
// List items are counted, never named: the names of tools, prompts and
// resources are many and may differ per user.
//
// # Spans
//
// mcpauth.authn.verify, mcpauth.authn.jwks.fetch, mcpauth.authn.introspect,
// mcpauth.authz.decision, mcpauth.authz.list.filter (with the numbers of
// items kept and removed), mcpauth.tokenexchange.exchange and
// mcpauth.upstream.refresh, children of the span in the request's context,
// with the event's own start and end times and the attributes above; a
// failure sets the span's status to Error with the cause as description (a
// denial is a decision, not a failure: its span has no error status). A
// verification answered from the token cache makes no span (nor does a
// token exchange answered from its cache). Decision and list filter spans
// are recorded only under a request's span. A JWKS fetch runs
// in the background, shared by every request waiting for it: its span is
// a root span. Because a span is recorded once its work is done, the
// HTTP client spans of that work (an instrumented JWKS or STS request) are
// its siblings under the request's span, not its children.
//
// Nothing recorded carries a token, a subject or any other value the client
// chose.
package otelobserve

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpauth-go/mcpauth/observe"
)

// ScopeName is the instrumentation scope of the meter and tracer.
const ScopeName = "github.com/mcpauth-go/mcpauth/observe/otelobserve"

// Attribute keys.
const (
	KeyIssuer      = attribute.Key("mcpauth.issuer")
	KeyOutcome     = attribute.Key("mcpauth.outcome")
	KeyCause       = attribute.Key("mcpauth.cause")
	KeyCacheResult = attribute.Key("mcpauth.cache.result")
	KeyMethod      = attribute.Key("mcp.method.name")
	KeyAction      = attribute.Key("mcpauth.authz.action")
	KeyPolicies    = attribute.Key("mcpauth.authz.policies")
	KeyKeys        = attribute.Key("mcpauth.authn.jwks.keys")
	KeyListItem    = attribute.Key("mcpauth.authz.list.item")    // kept or removed
	KeyKept        = attribute.Key("mcpauth.authz.list.kept")    // on list filter spans
	KeyRemoved     = attribute.Key("mcpauth.authz.list.removed") // on list filter spans
)

// Config configures the Observer New returns.
type Config struct {
	// MeterProvider creates the instruments. If nil, the global provider
	// (otel.GetMeterProvider) is used, as OpenTelemetry instrumentation
	// libraries do.
	MeterProvider metric.MeterProvider

	// TracerProvider creates the spans. If nil, the global provider
	// (otel.GetTracerProvider) is used.
	TracerProvider trace.TracerProvider
}

// durationBuckets suit work from tens of microseconds (a signature check)
// to seconds (a slow identity provider), in seconds.
var durationBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// recorder holds the instruments and the authn counters read at collection.
type recorder struct {
	tracer trace.Tracer

	verifyDur, fetchDur, introDur, exchangeDur, refreshDur metric.Float64Histogram
	decisionDur, filterDur                                 metric.Float64Histogram
	fetches, intros, decisions, exchanges, refreshes       metric.Int64Counter
	listItems                                              metric.Int64Counter

	last    atomic.Pointer[issuerStats] // the issuer seen last: the warm path's lookup
	mu      sync.Mutex
	issuers map[string]*issuerStats
}

// issuerStats counts one issuer's verifications.
type issuerStats struct {
	issuer string
	attr   attribute.KeyValue
	causes [observe.NumCauses]atomic.Int64 // verifications that were not cache hits, by cause
	hits   [hitStripes]paddedCounter       // verified from the token cache, striped (see hit)
	misses atomic.Int64                    // looked up in the token cache, not found
}

// New returns an Observer recording events as metrics and spans (see the
// package documentation). It fails only if an instrument cannot be
// created.
func New(cfg Config) (*observe.Observer, error) {
	mp, tp := cfg.MeterProvider, cfg.TracerProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	m := mp.Meter(ScopeName)
	r := &recorder{tracer: tp.Tracer(ScopeName), issuers: map[string]*issuerStats{}}

	var errs []error
	hist := func(name, desc string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		errs = append(errs, err)
		return h
	}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	r.verifyDur = hist("mcpauth.authn.verification.duration", "Duration of token verifications not answered from the token cache.")
	r.fetchDur = hist("mcpauth.authn.jwks.fetch.duration", "Duration of JWKS fetches.")
	r.introDur = hist("mcpauth.authn.introspection.duration", "Duration of RFC 7662 introspection requests.")
	r.exchangeDur = hist("mcpauth.tokenexchange.duration", "Duration of RFC 8693 token exchange calls to the STS.")
	r.refreshDur = hist("mcpauth.upstream.refresh.duration", "Duration of upstream token refreshes.")
	r.decisionDur = hist("mcpauth.authz.decision.duration", "Duration of authorization decisions (parsing, checks and policy evaluation).")
	r.filterDur = hist("mcpauth.authz.list.filter.duration", "Duration of list response filtering, one value per filtered list.")
	r.fetches = counter("mcpauth.authn.jwks.fetches", "{fetch}", "JWKS fetches by outcome.")
	r.intros = counter("mcpauth.authn.introspections", "{request}", "RFC 7662 introspection requests by outcome and cause.")
	r.decisions = counter("mcpauth.authz.decisions", "{decision}", "Authorization decisions by outcome, MCP method, action and deciding policies.")
	r.exchanges = counter("mcpauth.tokenexchange.exchanges", "{token}", "Exchanged tokens needed, by outcome and cache result.")
	r.refreshes = counter("mcpauth.upstream.refreshes", "{refresh}", "Upstream token refreshes by outcome.")
	r.listItems = counter("mcpauth.authz.list.items", "{item}", "Items of filtered list responses, kept or removed, by list method.")

	verifs, err := m.Int64ObservableCounter("mcpauth.authn.verifications", metric.WithUnit("{verification}"),
		metric.WithDescription("Token verifications by issuer, outcome and cause."))
	errs = append(errs, err)
	lookups, err := m.Int64ObservableCounter("mcpauth.authn.token_cache.lookups", metric.WithUnit("{lookup}"),
		metric.WithDescription("Verified-token cache lookups by result."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if _, err := m.RegisterCallback(r.collect(verifs, lookups), verifs, lookups); err != nil {
		return nil, err
	}
	return &observe.Observer{
		// A closure rather than the method value r.verification: one
		// indirect call less on the warm path.
		Verification: func(ctx context.Context, e observe.Verification) {
			if e.Cache == observe.CacheHit {
				r.stats(e.Issuer).hit() // the warm path: nothing else
				return
			}
			r.verification(ctx, e)
		},
		KeyFetch:      r.keyFetch,
		Introspection: r.introspection,
		Decision:      r.decision,
		ListFilter:    r.listFilter,
		Exchange:      r.exchange,
		Refresh:       r.refresh,
	}, nil
}

// stats returns the counters of issuer, creating them on first use.
func (r *recorder) stats(issuer string) *issuerStats {
	// The issuer is a Verifier's Config.Issuer, the same string every
	// time: comparing where its bytes are saves comparing them.
	if s := r.last.Load(); s != nil && len(s.issuer) == len(issuer) &&
		(unsafe.StringData(s.issuer) == unsafe.StringData(issuer) || s.issuer == issuer) {
		return s
	}
	r.mu.Lock()
	s := r.issuers[issuer]
	if s == nil {
		s = &issuerStats{issuer: issuer, attr: KeyIssuer.String(issuer)}
		r.issuers[issuer] = s
	}
	r.mu.Unlock()
	r.last.Store(s)
	return s
}

// hitStripes is the number of cache-hit counters per issuer: concurrent
// requests on several cores add to different cache lines.
const hitStripes = 8

// paddedCounter fills a cache line (two, against adjacent-line prefetch).
type paddedCounter struct {
	atomic.Int64
	_ [120]byte
}

// hit counts a cache hit in the stripe of the calling goroutine's stack:
// goroutines (one per request) have stacks of their own, so concurrent ones
// mostly land on different stripes, at the price of no shared state.
func (s *issuerStats) hit() {
	var here byte
	i := (uintptr(unsafe.Pointer(&here)) >> 13) % hitStripes
	s.hits[i].Add(1)
}

func (s *issuerStats) hitCount() int64 {
	var n int64
	for i := range s.hits {
		n += s.hits[i].Load()
	}
	return n
}

// collect reports the authn counters.
func (r *recorder) collect(verifs, lookups metric.Int64ObservableCounter) metric.Callback {
	return func(_ context.Context, o metric.Observer) error {
		r.mu.Lock()
		all := make([]*issuerStats, 0, len(r.issuers))
		for _, s := range r.issuers {
			all = append(all, s)
		}
		r.mu.Unlock()
		for _, s := range all {
			hits := s.hitCount()
			for c := range observe.NumCauses {
				cause := observe.Cause(c)
				n := s.causes[c].Load()
				if cause == observe.CauseNone {
					n += hits
				}
				if n == 0 {
					continue
				}
				o.ObserveInt64(verifs, n, metric.WithAttributes(s.attr,
					KeyOutcome.String(cause.Outcome().String()), KeyCause.String(cause.String())))
			}
			if hits > 0 {
				o.ObserveInt64(lookups, hits, metric.WithAttributes(s.attr, KeyCacheResult.String("hit")))
			}
			if m := s.misses.Load(); m > 0 {
				o.ObserveInt64(lookups, m, metric.WithAttributes(s.attr, KeyCacheResult.String("miss")))
			}
		}
		return nil
	}
}

func (r *recorder) verification(ctx context.Context, e observe.Verification) {
	s := r.stats(e.Issuer)
	if e.Cache == observe.CacheMiss {
		s.misses.Add(1)
	}
	if int(e.Cause) < observe.NumCauses {
		s.causes[e.Cause].Add(1)
	}
	outcome := e.Cause.Outcome()
	attrs := []attribute.KeyValue{s.attr, KeyOutcome.String(outcome.String()), KeyCause.String(e.Cause.String())}
	r.verifyDur.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(attrs[:2]...))
	r.span(ctx, "mcpauth.authn.verify", e.Start, e.Duration, outcome, e.Cause.String(), attrs)
}

func (r *recorder) keyFetch(ctx context.Context, e observe.KeyFetch) {
	attrs := []attribute.KeyValue{KeyIssuer.String(e.Issuer), KeyOutcome.String(e.Outcome.String())}
	set := metric.WithAttributes(attrs...)
	r.fetches.Add(ctx, 1, set)
	r.fetchDur.Record(ctx, e.Duration.Seconds(), set)
	r.span(ctx, "mcpauth.authn.jwks.fetch", e.Start, e.Duration, e.Outcome, "", append(attrs, KeyKeys.Int(e.Keys)))
}

func (r *recorder) introspection(ctx context.Context, e observe.Introspection) {
	attrs := []attribute.KeyValue{KeyIssuer.String(e.Issuer), KeyOutcome.String(e.Outcome.String()), KeyCause.String(e.Cause.String())}
	r.intros.Add(ctx, 1, metric.WithAttributes(attrs...))
	r.introDur.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(attrs[:2]...))
	r.span(ctx, "mcpauth.authn.introspect", e.Start, e.Duration, e.Outcome, e.Cause.String(), attrs)
}

func (r *recorder) decision(ctx context.Context, e observe.Decision) {
	attrs := []attribute.KeyValue{
		KeyOutcome.String(e.Outcome.String()), KeyMethod.String(e.Method),
		KeyAction.String(e.Action), KeyPolicies.String(strings.Join(e.Policies, ",")),
	}
	r.decisions.Add(ctx, 1, metric.WithAttributes(attrs...))
	r.decisionDur.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(attrs[:2]...))
	if trace.SpanContextFromContext(ctx).IsValid() {
		// A decision span only makes sense under a request's span.
		r.span(ctx, "mcpauth.authz.decision", e.Start, e.Duration, observe.OK, "", attrs)
	}
}

func (r *recorder) listFilter(ctx context.Context, e observe.ListFilter) {
	method := KeyMethod.String(e.Method)
	if e.Kept > 0 {
		r.listItems.Add(ctx, int64(e.Kept), metric.WithAttributes(method, KeyListItem.String("kept")))
	}
	if e.Removed > 0 {
		r.listItems.Add(ctx, int64(e.Removed), metric.WithAttributes(method, KeyListItem.String("removed")))
	}
	r.filterDur.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(method))
	if trace.SpanContextFromContext(ctx).IsValid() {
		r.span(ctx, "mcpauth.authz.list.filter", e.Start, e.Duration, observe.OK, "",
			[]attribute.KeyValue{method, KeyKept.Int(e.Kept), KeyRemoved.Int(e.Removed)})
	}
}

func (r *recorder) exchange(ctx context.Context, e observe.Exchange) {
	attrs := []attribute.KeyValue{KeyOutcome.String(e.Outcome.String()), KeyCacheResult.String(e.Cache.String())}
	r.exchanges.Add(ctx, 1, metric.WithAttributes(attrs...))
	if e.Cache == observe.CacheHit {
		return
	}
	r.exchangeDur.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(attrs[0]))
	r.span(ctx, "mcpauth.tokenexchange.exchange", e.Start, e.Duration, e.Outcome, "", attrs)
}

func (r *recorder) refresh(ctx context.Context, e observe.Refresh) {
	set := metric.WithAttributes(KeyOutcome.String(e.Outcome.String()))
	r.refreshes.Add(ctx, 1, set)
	r.refreshDur.Record(ctx, e.Duration.Seconds(), set)
	r.span(ctx, "mcpauth.upstream.refresh", e.Start, e.Duration, e.Outcome, "", []attribute.KeyValue{KeyOutcome.String(e.Outcome.String())})
}

// span records a finished operation as a span under ctx's, with its own
// start and end.
func (r *recorder) span(ctx context.Context, name string, start time.Time, d time.Duration, o observe.Outcome, cause string, attrs []attribute.KeyValue) {
	if start.IsZero() {
		start = time.Now().Add(-d)
	}
	_, span := r.tracer.Start(ctx, name, trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	if o != observe.OK && o != observe.Allowed {
		desc := o.String()
		if cause != "" {
			desc = cause
		}
		span.SetStatus(codes.Error, desc)
	}
	span.End(trace.WithTimestamp(start.Add(d)))
}
