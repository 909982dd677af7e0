package authz

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/mcpauth-go/mcpauth/authn"
)

// benchPolicies returns n policies in the shape of a real deployment: one
// permit per tool for a group, with an argument condition, plus two
// unconstrained policies every request evaluates.
func benchPolicies(n int) string {
	var b strings.Builder
	b.WriteString(`@id("no-etc") forbid (principal, action, resource) when { context has arg_path && context.arg_path like "/etc/*" };` + "\n")
	b.WriteString(`@id("admins") permit (principal in THVGroup::"admins", action, resource);` + "\n")
	for i := range n - 2 {
		fmt.Fprintf(&b, "@id(\"tool%d\") permit (principal in THVGroup::\"g%d\", action == Action::\"call_tool\", resource == Tool::\"tool%d\") when { !(context has arg_n) || context.arg_n < 100 };\n", i, i%10, i)
	}
	return b.String()
}

// benchIdentity is a verified identity as authn hands it over: with the
// bearer token the subject cache is keyed on.
// benchPoliciesArgFree is benchPolicies without argument conditions: a
// permit per tool for a group and one unconstrained forbid, the shape of a
// ToolHive-style deployment. No policy reads an argument, so a call's
// decision is cached per caller and tool.
func benchPoliciesArgFree(n int) string {
	var b strings.Builder
	b.WriteString(`@id("no-admin-tools") forbid (principal, action, resource) when { resource.name like "admin_*" };` + "\n")
	b.WriteString(`@id("admins") permit (principal in THVGroup::"admins", action, resource);` + "\n")
	for i := range n - 2 {
		fmt.Fprintf(&b, "@id(\"tool%d\") permit (principal in THVGroup::\"g%d\", action == Action::\"call_tool\", resource == Tool::\"tool%d\");\n", i, i%10, i)
	}
	return b.String()
}

func benchIdentity() *authn.TokenInfo {
	return (&authn.TokenInfo{
		Issuer: "https://idp.example", Subject: "user-1234", ClientID: "client-1",
		Audience: []string{"https://mcp.example"}, Scopes: []string{"mcp", "tools"},
		Claims: map[string]any{
			"iss": "https://idp.example", "sub": "user-1234", "aud": "https://mcp.example",
			"exp": float64(1893456000), "iat": float64(1893452400), "scope": "mcp tools",
			"groups": []any{"g5", "eng"}, "email": "u@example.com",
		},
	}).WithToken(benchToken)
}

// benchToken stands in for a bearer token of a typical size (a signed JWT
// of some 800 bytes).
var benchToken = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0." + strings.Repeat("x", 600) + "." + strings.Repeat("s", 342)

// benchBody is a 2026-07-28 tools/call as a client sends it.
const benchBody = `{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"tool5",` +
	`"arguments":{"n":5,"path":"/tmp/x","verbose":true},` +
	`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
	`"io.modelcontextprotocol/clientInfo":{"name":"ExampleClient","version":"1.0.0"},` +
	`"io.modelcontextprotocol/clientCapabilities":{"elicitation":{},"sampling":{}}}}}`

// bareHandler is the MCP handler stand-in: it reads the body, as a real
// server does, and answers a small result.
var bareHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":17,"result":{"content":[]}}`)
})

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

func serveBench(b *testing.B, h http.Handler) { serveBenchVarying(b, h, false) }

// serveBenchVarying is serveBench; with newArgs, every call's path
// argument differs from the previous 10^8 calls', so no decision comes
// from the decision cache.
func serveBenchVarying(b *testing.B, h http.Handler, newArgs bool) {
	b.Helper()
	ctx := authn.NewContext(context.Background(), benchIdentity())
	body := []byte(benchBody)
	digits := -1
	if newArgs {
		body = []byte(strings.Replace(benchBody, `"/tmp/x"`, `"/tmp/x00000000"`, 1))
		digits = bytes.Index(body, []byte("00000000"))
	}
	n := 0
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/mcp", nil)
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", "tool5")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if digits >= 0 {
			n++
			for i, v := 7, n; i >= 0; i, v = i-1, v/10 {
				body[digits+i] = byte('0' + v%10)
			}
		}
		r := *req
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		clear(w.h)
		h.ServeHTTP(w, &r)
	}
}

// BenchmarkAuthorize measures one tools/call through the middleware at 10,
// 100 and 1000 policies (middleware: policies that read arguments, the
// same arguments every call, so the decision comes from the decision cache
// keyed on them; middleware-newargs: the same with a new path argument
// every call, so every call is evaluated; middleware-argfree: policies
// that read no argument), the decision alone (Authorize), and the bare
// handler as the in-run baseline.
func BenchmarkAuthorize(b *testing.B) {
	b.Run("bare-handler", func(b *testing.B) { serveBench(b, bareHandler) })
	for _, n := range []int{10, 100, 1000} {
		a, err := New(Config{Policies: benchPolicies(n)})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("middleware/policies=%d", n), func(b *testing.B) {
			serveBench(b, a.Middleware(bareHandler))
		})
		b.Run(fmt.Sprintf("middleware-newargs/policies=%d", n), func(b *testing.B) {
			serveBenchVarying(b, a.Middleware(bareHandler), true)
		})
		af, err := New(Config{Policies: benchPoliciesArgFree(n)})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("middleware-argfree/policies=%d", n), func(b *testing.B) {
			serveBench(b, af.Middleware(bareHandler))
		})
		b.Run(fmt.Sprintf("cedar-linear/policies=%d", n), func(b *testing.B) {
			// The same Cedar request evaluated against every policy, as
			// cedar.Authorize does without an index: the cost the index avoids.
			ctx := authn.NewContext(context.Background(), benchIdentity())
			info, _ := authn.FromContext(ctx)
			req, _ := parseRPC([]byte(benchBody))
			sub := a.subjectFor(info)
			m := mcpMethods["tools/call"]
			op, _ := a.operation(req, &m)
			ps := a.policies.Load()
			creq, ents := sub.request(a, &op, nil)
			b.ReportAllocs()
			for b.Loop() {
				if d, _ := cedar.Authorize(ps.all.pols, ents, creq); d != cedar.Allow {
					b.Fatal(d)
				}
			}
		})
		b.Run(fmt.Sprintf("decide/policies=%d", n), func(b *testing.B) {
			ctx := authn.NewContext(context.Background(), benchIdentity())
			body := []byte(benchBody)
			b.ReportAllocs()
			for b.Loop() {
				d, err := a.Authorize(ctx, body)
				if err != nil || !d.Allowed {
					b.Fatal(d, err)
				}
			}
		})
	}
}

// BenchmarkFilterToolsList filters a 200-tool tools/list response (JSON) of
// which the caller may use 20, at 100 policies: parsed (the first sight of
// the list: the memo is emptied before each filtering) and remembered (the
// same list with a new id each time, as a server answers every tools/list;
// see listMemo).
func BenchmarkFilterToolsList(b *testing.B) {
	a, err := New(Config{Policies: benchPolicies(200)})
	if err != nil {
		b.Fatal(err)
	}
	var resp strings.Builder
	resp.WriteString(`{"jsonrpc":"2.0","id":10000000,"result":{"tools":[`)
	for i := range 200 {
		if i > 0 {
			resp.WriteByte(',')
		}
		fmt.Fprintf(&resp, `{"name":"tool%d","description":"Tool number %d does things.","inputSchema":{"type":"object","properties":{"n":{"type":"integer"},"path":{"type":"string"}}}}`, i, i)
	}
	resp.WriteString(`],"ttlMs":60000,"cacheScope":"private"}}`)
	list := []byte(resp.String())
	digits := bytes.Index(list, []byte("10000000"))
	ps := a.policies.Load()
	sub := a.subjectFor(benchIdentity()) // token-backed, as through the middleware
	run := func(b *testing.B, remembered bool) {
		b.SetBytes(int64(len(list)))
		b.ReportAllocs()
		var buf []byte // as serveFiltered keeps it in a pooled listBuffers
		n := 10000000
		for b.Loop() {
			if remembered {
				n++
				copy(list[digits:], strconv.Itoa(n))
			} else {
				ps.lists = listMemo{}
			}
			f := listFilter{a: a, ps: ps, sub: sub, m: mcpMethods["tools/list"], msgBuf: buf}
			out, err := f.filterBody("application/json", list)
			if err != nil || f.kept != 20 {
				b.Fatal(err, f.kept)
			}
			_ = out
			buf = f.msgBuf
		}
	}
	b.Run("parsed", func(b *testing.B) { run(b, false) })
	b.Run("remembered", func(b *testing.B) { run(b, true) })
}

// BenchmarkListThroughMiddleware serves a 50-tool tools/list through the
// middleware (filtered for a caller who may use 5 of them, at 100
// policies) beside the bare list handler: (filtered − bare) / 50 is the
// filtering cost per listed tool.
func BenchmarkListThroughMiddleware(b *testing.B) {
	a, err := New(Config{Policies: benchPolicies(100)})
	if err != nil {
		b.Fatal(err)
	}
	var resp strings.Builder
	resp.WriteString(`{"jsonrpc":"2.0","id":3,"result":{"tools":[`)
	for i := range 50 {
		if i > 0 {
			resp.WriteByte(',')
		}
		fmt.Fprintf(&resp, `{"name":"tool%d","description":"Tool number %d does things.","inputSchema":{"type":"object","properties":{"n":{"type":"integer"},"path":{"type":"string"}}}}`, i, i)
	}
	resp.WriteString(`],"ttlMs":60000,"cacheScope":"public"}}`)
	list := resp.String()
	listHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, list)
	})
	body := []byte(`{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{}}`)
	run := func(b *testing.B, h http.Handler) {
		ctx := authn.NewContext(context.Background(), benchIdentity())
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/mcp", nil)
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			r := *req
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			clear(w.h)
			h.ServeHTTP(w, &r)
		}
	}
	b.Run("bare-list", func(b *testing.B) { run(b, listHandler) })
	b.Run("filtered-list", func(b *testing.B) { run(b, a.Middleware(listHandler)) })
}
