package otelobserve_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/authz"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/observe"
	"github.com/mcpauth-go/mcpauth/observe/otelobserve"
	"github.com/mcpauth-go/mcpauth/prm"
)

const resource = "http://127.0.0.1/mcp"

const policies = `
@id("read-for-all")
permit (principal, action == Action::"call_tool", resource == Tool::"read");

@id("delete-open")
permit (principal, action == Action::"call_tool", resource == Tool::"delete");

@id("no-delete")
forbid (principal, action == Action::"call_tool", resource == Tool::"delete");
`

// telemetry is an OpenTelemetry SDK that keeps what it records in memory.
type telemetry struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	obs    *observe.Observer
}

func newTelemetry(t testing.TB) *telemetry {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() {
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	})
	obs, err := otelobserve.New(otelobserve.Config{MeterProvider: mp, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	return &telemetry{reader: reader, spans: spans, tp: tp, obs: obs}
}

// counts collects the metrics and returns the data points of the counter
// name, keyed by their attributes ("k=v,k=v" in key order).
func (tm *telemetry) counts(t *testing.T, name string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tm.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T, want a Sum[int64]", name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				out[attrKey(dp.Attributes)] += dp.Value
			}
		}
	}
	return out
}

// histogramCount returns the number of values recorded in histogram name.
func (tm *telemetry) histogramCount(t *testing.T, name string) uint64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tm.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, dp := range h.DataPoints {
					n += dp.Count
				}
			}
		}
	}
	return n
}

func attrKey(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.Emit())
	}
	return strings.Join(parts, ",")
}

// server is an MCP endpoint behind middleware.Protect with authn (a
// MultiVerifier, as a resource with several authorization servers has, in
// front of a Verifier) and authz both reporting to obs, under a request span
// as otelhttp would start. It answers tools/list with three tools.
func server(t *testing.T, tm *telemetry, idp *idptest.Server) *httptest.Server {
	t.Helper()
	v, err := authn.NewVerifier(authn.Config{
		Issuer: idp.Issuer(), Audience: []string{resource}, HTTPClient: idp.Client(),
		Logger: slog.New(slog.DiscardHandler), Observer: tm.obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	mv, err := authn.NewMultiVerifier(map[string]authn.TokenVerifier{idp.Issuer(): v}, nil)
	if err != nil {
		t.Fatal(err)
	}
	az, err := authz.New(authz.Config{Policies: policies, Observer: tm.obs})
	if err != nil {
		t.Fatal(err)
	}
	mcp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if b, _ := io.ReadAll(r.Body); strings.Contains(string(b), `"tools/list"`) {
			_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"read"},{"name":"delete"},{"name":"other"}]}}`)
			return
		}
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	})
	h, err := middleware.Protect(mcp, middleware.Config{
		Metadata:   prm.Metadata{Resource: resource, AuthorizationServers: []string{idp.Issuer()}},
		Verifier:   mv,
		Authn:      authn.Options{Logger: slog.New(slog.DiscardHandler)},
		Authorizer: az,
	})
	if err != nil {
		t.Fatal(err)
	}
	tracer := tm.tp.Tracer("test")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tracer.Start(r.Context(), "request", trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// call posts a tools/call of tool, or a tools/list when tool is "".
func call(t *testing.T, srv *httptest.Server, token, tool string) int {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `"}}`
	if tool == "" {
		body = `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestScriptedTraffic sends a mix of good and bad requests through
// middleware.Protect and authz and checks the counters, the histograms and
// the spans an operator would see.
func TestScriptedTraffic(t *testing.T) {
	tm := newTelemetry(t)
	idp := idptest.NewServer(t, idptest.Config{Audience: []string{resource}})
	srv := server(t, tm, idp)
	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	unknownKid := "no-such-kid"
	alice := idp.Token(map[string]any{"sub": "alice"})
	bob := idp.Token(map[string]any{"sub": "bob"})

	script := []struct {
		name, token, tool string
		status            int
	}{
		{"allowed", alice, "read", 200},
		{"allowed, cached token", alice, "read", 200},
		{"denied by a forbid", alice, "delete", 403},
		{"denied by default", bob, "other", 403},
		{"expired", idp.Token(map[string]any{"exp": time.Now().Add(-10 * time.Minute), "iat": time.Now().Add(-time.Hour)}), "read", 401},
		{"wrong audience", idp.Token(map[string]any{"aud": "https://elsewhere.example/mcp"}), "read", 401},
		{"bad signature", idp.TokenWith(idptest.TokenOptions{Key: foreign, Alg: "RS256"}), "read", 401},
		{"unknown kid", idp.TokenWith(idptest.TokenOptions{Kid: &unknownKid}), "read", 401},
		{"untrusted issuer (refused before routing)", idp.Token(map[string]any{"iss": "https://evil.example"}), "read", 401},
		{"malformed (refused before routing)", "not-a-jwt", "read", 401},
		{"list filtered", alice, "", 200},
	}
	for _, s := range script {
		if got := call(t, srv, s.token, s.tool); got != s.status {
			t.Fatalf("%s: status %d, want %d", s.name, got, s.status)
		}
	}

	iss := "mcpauth.issuer=" + idp.Issuer()
	wantVerifs := map[string]int64{
		"mcpauth.cause=," + iss + ",mcpauth.outcome=ok":                    5,
		"mcpauth.cause=expired," + iss + ",mcpauth.outcome=invalid":        1,
		"mcpauth.cause=wrong_audience," + iss + ",mcpauth.outcome=invalid": 1,
		"mcpauth.cause=bad_signature," + iss + ",mcpauth.outcome=invalid":  1,
		"mcpauth.cause=unknown_key," + iss + ",mcpauth.outcome=invalid":    1,
		// Refused by the MultiVerifier: no issuer label.
		"mcpauth.cause=wrong_issuer,mcpauth.issuer=,mcpauth.outcome=invalid": 1,
		"mcpauth.cause=malformed,mcpauth.issuer=,mcpauth.outcome=invalid":    1,
	}
	if got := tm.counts(t, "mcpauth.authn.verifications"); !equal(got, wantVerifs) {
		t.Errorf("mcpauth.authn.verifications = %v\nwant %v", got, wantVerifs)
	}
	wantLookups := map[string]int64{
		"mcpauth.cache.result=hit," + iss:  3,
		"mcpauth.cache.result=miss," + iss: 6,
	}
	if got := tm.counts(t, "mcpauth.authn.token_cache.lookups"); !equal(got, wantLookups) {
		t.Errorf("mcpauth.authn.token_cache.lookups = %v\nwant %v", got, wantLookups)
	}
	const m = "mcp.method.name=tools/call,mcpauth.authz.action=call_tool,"
	wantDecisions := map[string]int64{
		m + "mcpauth.authz.policies=read-for-all,mcpauth.outcome=allowed":                                  2,
		m + "mcpauth.authz.policies=no-delete,mcpauth.outcome=denied":                                      1,
		m + "mcpauth.authz.policies=,mcpauth.outcome=denied":                                               1,
		"mcp.method.name=tools/list,mcpauth.authz.action=,mcpauth.authz.policies=,mcpauth.outcome=allowed": 1,
	}
	if got := tm.counts(t, "mcpauth.authz.decisions"); !equal(got, wantDecisions) {
		t.Errorf("mcpauth.authz.decisions = %v\nwant %v", got, wantDecisions)
	}
	// The first request fetched the keys, the unknown kid once more.
	if got := tm.counts(t, "mcpauth.authn.jwks.fetches"); got[iss+",mcpauth.outcome=ok"] != 2 || len(got) != 1 {
		t.Errorf("mcpauth.authn.jwks.fetches = %v, want 2 ok", got)
	}
	if n := tm.histogramCount(t, "mcpauth.authn.verification.duration"); n != 8 {
		t.Errorf("verification.duration has %d values, want 8 (cache hits are not timed)", n)
	}
	if n := tm.histogramCount(t, "mcpauth.authz.decision.duration"); n != 5 {
		t.Errorf("decision.duration has %d values, want 5", n)
	}
	// The list: read kept; delete (forbidden) and other (no permit) removed.
	wantItems := map[string]int64{
		"mcp.method.name=tools/list,mcpauth.authz.list.item=kept":    1,
		"mcp.method.name=tools/list,mcpauth.authz.list.item=removed": 2,
	}
	if got := tm.counts(t, "mcpauth.authz.list.items"); !equal(got, wantItems) {
		t.Errorf("mcpauth.authz.list.items = %v\nwant %v", got, wantItems)
	}
	if n := tm.histogramCount(t, "mcpauth.authz.list.filter.duration"); n != 1 {
		t.Errorf("list.filter.duration has %d values, want 1", n)
	}

	// Spans: a verify span per verification that was not a cache hit, a
	// decision span per decision and a list filter span per filtered list,
	// each a child of its request's span and within it; the refusals are
	// errors named by their cause.
	ended := tm.spans.Ended()
	requests := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range ended {
		if s.Name() == "request" {
			requests[s.SpanContext().SpanID()] = s
		}
	}
	var verifyStatus, decisions, filters []string
	for _, s := range ended {
		switch s.Name() {
		case "mcpauth.authn.verify", "mcpauth.authz.decision", "mcpauth.authz.list.filter":
			req := requests[s.Parent().SpanID()]
			if req == nil {
				t.Errorf("%s span is not a child of a request span", s.Name())
			} else if s.StartTime().Before(req.StartTime()) || s.EndTime().Before(s.StartTime()) || s.EndTime().After(req.EndTime()) {
				t.Errorf("%s span [%v, %v] not within its request's [%v, %v]", s.Name(), s.StartTime(), s.EndTime(), req.StartTime(), req.EndTime())
			}
		}
		switch s.Name() {
		case "mcpauth.authn.verify":
			st := s.Status()
			if st.Code == codes.Error {
				verifyStatus = append(verifyStatus, st.Description)
			} else {
				verifyStatus = append(verifyStatus, "ok")
			}
			if !s.EndTime().After(s.StartTime()) {
				t.Errorf("verify span without duration: %v to %v", s.StartTime(), s.EndTime())
			}
		case "mcpauth.authz.decision":
			if s.Status().Code == codes.Error {
				t.Errorf("decision span with error status %+v", s.Status())
			}
			for _, kv := range s.Attributes() {
				if kv.Key == otelobserve.KeyOutcome {
					decisions = append(decisions, kv.Value.AsString())
				}
			}
		case "mcpauth.authz.list.filter":
			var parts []string
			for _, kv := range s.Attributes() {
				parts = append(parts, string(kv.Key)+"="+kv.Value.Emit())
			}
			slices.Sort(parts)
			filters = append(filters, strings.Join(parts, ","))
		}
	}
	if want := []string{"ok", "ok", "expired", "wrong_audience", "bad_signature", "unknown_key", "wrong_issuer", "malformed"}; !slices.Equal(verifyStatus, want) {
		t.Errorf("verify spans = %q, want %q", verifyStatus, want)
	}
	if want := []string{"allowed", "allowed", "denied", "denied", "allowed"}; !slices.Equal(decisions, want) {
		t.Errorf("decision spans = %q, want %q", decisions, want)
	}
	if want := []string{"mcp.method.name=tools/list,mcpauth.authz.list.kept=1,mcpauth.authz.list.removed=2"}; !slices.Equal(filters, want) {
		t.Errorf("list filter spans = %q, want %q", filters, want)
	}
	// Nothing recorded carries a token.
	for _, s := range ended {
		for _, kv := range s.Attributes() {
			if v := kv.Value.Emit(); strings.Contains(v, "eyJ") {
				t.Errorf("span %s attribute %s carries token material", s.Name(), kv.Key)
			}
		}
	}
}

func equal(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
