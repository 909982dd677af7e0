package benchcmp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/authz"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/prm"
)

// The full-stack benchmark (issue 13's table): a small MCP handler bare (A),
// behind middleware.Protect with a warm token (B), plus authz with
// stackPolicies Cedar policies on tools/call (C), and a tools/list of
// listTools tools filtered (D) beside the same list bare.

const (
	// stackResource is the MCP server's resource URI in the stack benchmark.
	stackResource = "http://127.0.0.1/mcp"
	// stackPolicies is the size of the Cedar policy set of C and D.
	stackPolicies = 100
	// listTools is the number of tools in the tools/list response.
	listTools = 50
	// loopbackWorkers is the number of concurrent clients over loopback.
	loopbackWorkers = 32
	// stackSubject's groups claim puts it in g5: it may call tool5, tool15,
	// tool25, … (stackPolicyText), so D keeps listTools/10 tools.
	stackGroup = "g5"
)

// stackPolicyText returns n policies in the shape of a real deployment: one
// permit per tool for one of ten groups, with an argument condition, plus a
// forbid and an admin permit that every request evaluates.
func stackPolicyText(n int) string {
	var b strings.Builder
	b.WriteString(`@id("no-etc") forbid (principal, action, resource) when { context has arg_path && context.arg_path like "/etc/*" };` + "\n")
	b.WriteString(`@id("admins") permit (principal in THVGroup::"admins", action, resource);` + "\n")
	for i := range n - 2 {
		fmt.Fprintf(&b, "@id(\"tool%d\") permit (principal in THVGroup::\"g%d\", action == Action::\"call_tool\", resource == Tool::\"tool%d\") when { !(context has arg_n) || context.arg_n < 100 };\n", i, i%10, i)
	}
	return b.String()
}

// callBody is a 2026-07-28 tools/call as a client sends it.
const callBody = `{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"tool5",` +
	`"arguments":{"n":5,"path":"/tmp/x","verbose":true},` +
	`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
	`"io.modelcontextprotocol/clientInfo":{"name":"ExampleClient","version":"1.0.0"}}}}`

// listBody is a tools/list request.
const listBody = `{"jsonrpc":"2.0","id":18,"method":"tools/list","params":{}}`

// listResult is the result of tools/list: listTools tools with a
// description and a small input schema each.
var listResult = func() json.RawMessage {
	var b strings.Builder
	b.WriteString(`{"tools":[`)
	for i := range listTools {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"tool%d","description":"Tool number %d does things.","inputSchema":{"type":"object","properties":{"n":{"type":"integer"},"path":{"type":"string"}}}}`, i, i)
	}
	b.WriteString(`]}`)
	return json.RawMessage(b.String())
}()

// mcpStandIn is the small MCP handler: it decodes the JSON-RPC request with
// encoding/json, as a server does, and answers tools/call with a text
// result and tools/list with listResult.
var mcpStandIn = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "parse error", http.StatusBadRequest)
		return
	}
	resp := struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  any             `json:"result"`
	}{JSONRPC: "2.0", ID: req.ID}
	switch req.Method {
	case "tools/call":
		resp.Result = map[string]any{"content": []map[string]string{{"type": "text", "text": "ran " + req.Params.Name}}}
	case "tools/list":
		resp.Result = listResult
	default:
		http.Error(w, "unknown method", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
})

// stack holds the handlers under comparison and a warm token.
type stack struct {
	token    string
	bare     http.Handler // A, and the bare list
	protect  http.Handler // B: Protect (Origin, PRM routing, authn with a warm cache)
	authz    http.Handler // C and D: Protect + authz
	verifier *authn.Verifier
}

// newStack builds the handlers with a real verifier whose key set is fetched
// and whose token cache holds the token before any timing.
func newStack(tb testing.TB) *stack {
	tb.Helper()
	idp := idptest.NewServer(tb, idptest.Config{Algorithms: []string{"RS256"}, Audience: []string{stackResource}, TokenTTL: 6 * time.Hour})
	v, err := authn.NewVerifier(authn.Config{
		Issuer: idp.Issuer(), Audience: []string{stackResource}, JWKSURL: idp.JWKSURL(),
		HTTPClient: idp.Client(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	s := &stack{verifier: v, bare: mcpStandIn, token: idp.Token(map[string]any{
		"sub": "user-1234", "client_id": "client-1", "scope": "mcp tools",
		"groups": []string{stackGroup, "eng"}, "email": "u@example.com",
	})}
	if _, err := v.Verify(context.Background(), s.token); err != nil {
		tb.Fatalf("warming the verifier: %v", err)
	}
	md := prm.Metadata{Resource: stackResource, AuthorizationServers: []string{idp.Issuer()}}
	if s.protect, err = middleware.Protect(mcpStandIn, middleware.Config{Metadata: md, Verifier: v}); err != nil {
		tb.Fatal(err)
	}
	a, err := authz.New(authz.Config{Policies: stackPolicyText(stackPolicies)})
	if err != nil {
		tb.Fatal(err)
	}
	if s.authz, err = middleware.Protect(mcpStandIn, middleware.Config{Metadata: md, Verifier: v, Authorizer: a}); err != nil {
		tb.Fatal(err)
	}
	return s
}

// stackCase is one row of the comparison.
type stackCase struct {
	name    string
	body    string
	method  string // Mcp-Method header
	toolArg string // Mcp-Name header, if any
	// protected is whether the handler requires the token. Every case
	// sends it, so that each handler receives the same bytes and the bare
	// rows are the honest baseline (over loopback, the 1 KB Authorization
	// header costs the client and the server's header parsing a few µs).
	protected bool
	handler   func(*stack) http.Handler
}

// stackCases are the rows, in the order they are reported. The names are
// parsed by cmd/benchdoc.
var stackCases = []stackCase{
	{"A-bare", callBody, "tools/call", "tool5", false, func(s *stack) http.Handler { return s.bare }},
	{"B-protect", callBody, "tools/call", "tool5", true, func(s *stack) http.Handler { return s.protect }},
	{"C-authz", callBody, "tools/call", "tool5", true, func(s *stack) http.Handler { return s.authz }},
	{"list-bare", listBody, "tools/list", "", false, func(s *stack) http.Handler { return s.bare }},
	{"D-list-filtered", listBody, "tools/list", "", true, func(s *stack) http.Handler { return s.authz }},
}

// header sets the headers a 2026-07-28 client sends, the same for a bare
// handler as for a protected one.
func (c *stackCase) header(h http.Header, token string) {
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json, text/event-stream")
	h.Set("Mcp-Method", c.method)
	if c.toolArg != "" {
		h.Set("Mcp-Name", c.toolArg)
	}
	h.Set("Authorization", "Bearer "+token)
}

// recorder is a reusable ResponseWriter that keeps the status and counts
// the body bytes, so the in-process loop measures the handlers, not
// httptest.ResponseRecorder's buffer.
type recorder struct {
	h      http.Header
	status int
	n      int
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.n += len(p)
	return len(p), nil
}
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

// BenchmarkStack is issue 13's table. inproc/<case> calls ServeHTTP with a
// reusable recorder: ns/op is the CPU cost of one request, allocs/op its
// allocations. loopback/<case> sends b.N requests from loopbackWorkers
// concurrent keep-alive clients to a server on 127.0.0.1: ns/op is wall time
// per request (1e9/ns/op is the throughput) and the p50-µs and p99-µs
// metrics are request latencies as the clients see them. Use a fixed
// -benchtime count (e.g. 2000x) so every case sends the same number of
// requests; cmd/benchdoc reports each case as a ratio to its bare handler.
// Every case also reports cpu-ns/op, the process CPU time per request
// (over loopback: client and server together), which a busy machine
// disturbs far less than wall time.
func BenchmarkStack(b *testing.B) {
	s := newStack(b)
	b.Run("inproc", func(b *testing.B) {
		for _, c := range stackCases {
			b.Run(c.name, func(b *testing.B) { labelled(b, c.name, func() { benchInproc(b, s, &c) }) })
		}
	})
	b.Run("loopback", func(b *testing.B) {
		for _, c := range stackCases {
			b.Run(c.name, func(b *testing.B) { labelled(b, c.name, func() { benchLoopback(b, s, &c) }) })
		}
	})
}

// labelled runs f with the pprof label case=name, which the goroutines it
// starts inherit (the loopback server's, its connections', the clients'),
// so that one -cpuprofile of several cases splits by case:
// go tool pprof -tagfocus case=C-authz. The garbage collector's background
// workers and sweeper carry no label.
func labelled(b *testing.B, name string, f func()) {
	pprof.Do(b.Context(), pprof.Labels("case", name), func(context.Context) { f() })
}

func benchInproc(b *testing.B, s *stack, c *stackCase) {
	h := c.handler(s)
	body := []byte(c.body)
	req := httptest.NewRequest(http.MethodPost, stackResource, nil)
	c.header(req.Header, s.token)
	w := &recorder{h: http.Header{}}
	serve := func() {
		r := *req
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		clear(w.h)
		w.status, w.n = 0, 0
		h.ServeHTTP(w, &r)
		if w.status != http.StatusOK {
			b.Fatalf("%s: status %d", c.name, w.status)
		}
	}
	serve()
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		serve()
	}
	reportCPU(b, cpu)
}

func benchLoopback(b *testing.B, s *stack, c *stackCase) {
	srv := httptest.NewServer(c.handler(s)) // 127.0.0.1, random port
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConns: 2 * loopbackWorkers, MaxIdleConnsPerHost: 2 * loopbackWorkers, IdleConnTimeout: time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	body := []byte(c.body)
	hdr := http.Header{}
	c.header(hdr, s.token)
	send := func() error {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/mcp", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header = hdr.Clone()
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: status %s", c.name, resp.Status)
		}
		return err
	}
	// Open the connections before timing.
	var wg sync.WaitGroup
	for range loopbackWorkers {
		wg.Go(func() { _ = send() })
	}
	wg.Wait()

	var (
		mu  sync.Mutex
		lat []time.Duration
	)
	b.SetParallelism(int(math.Ceil(float64(loopbackWorkers) / float64(runtime.GOMAXPROCS(0)))))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if err := send(); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	reportCPU(b, cpu) // client and server together
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
