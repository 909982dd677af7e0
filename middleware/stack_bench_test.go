package middleware_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/authz"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/prm"
)

// BenchmarkProtectAuthz is issue 13's in-process rows A, B and C: a
// tools/call served by a small MCP handler bare (bare-handler), behind
// Protect with a warm JWT from a fake IdP (protect: Origin, PRM routing,
// cached verification), and behind Protect with an authz.Authorizer of 100
// Cedar policies that read the call's arguments (protect-authz: the same
// arguments each call, so the decision is cached; protect-authz-newargs: a
// new path argument each call, so every call is evaluated). Subtract
// bare-handler from the others for the cost of the stack.
func BenchmarkProtectAuthz(b *testing.B) {
	const res = "http://127.0.0.1/mcp"
	idp := idptest.NewServer(b, idptest.Config{Audience: []string{res}})
	v, err := authn.NewVerifier(authn.Config{
		Issuer: idp.Issuer(), Audience: []string{res}, HTTPClient: idp.Client(), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = v.Close() })
	tok := idp.Token(map[string]any{"sub": "user-1234", "groups": []any{"g5", "eng"}, "scope": "mcp tools", "client_id": "client-1"})
	mcp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":17,"result":{"content":[]}}`)
	})
	var pol strings.Builder
	pol.WriteString(`@id("no-etc") forbid (principal, action, resource) when { context has arg_path && context.arg_path like "/etc/*" };` + "\n")
	pol.WriteString(`@id("admins") permit (principal in THVGroup::"admins", action, resource);` + "\n")
	for i := range 98 {
		fmt.Fprintf(&pol, "@id(\"tool%d\") permit (principal in THVGroup::\"g%d\", action == Action::\"call_tool\", resource == Tool::\"tool%d\") when { !(context has arg_n) || context.arg_n < 100 };\n", i, i%10, i)
	}
	az, err := authz.New(authz.Config{Policies: pol.String()})
	if err != nil {
		b.Fatal(err)
	}
	protect := func(az middleware.Authorizer) http.Handler {
		cfg := middleware.Config{
			Metadata: prm.Metadata{Resource: res, AuthorizationServers: []string{idp.Issuer()}},
			Verifier: v,
			Authn:    authn.Options{Logger: slog.New(slog.DiscardHandler)},
		}
		if az != nil {
			cfg.Authorizer = az
		}
		h, err := middleware.Protect(mcp, cfg)
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	body := []byte(`{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"tool5",` +
		`"arguments":{"n":5,"path":"/tmp/x00000000","verbose":true},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
		`"io.modelcontextprotocol/clientInfo":{"name":"ExampleClient","version":"1.0.0"},` +
		`"io.modelcontextprotocol/clientCapabilities":{"elicitation":{},"sampling":{}}}}}`)
	digits := bytes.Index(body, []byte("00000000"))
	run := func(b *testing.B, h http.Handler, newArgs bool) {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Mcp-Method", "tools/call")
		req.Header.Set("Mcp-Name", "tool5")
		rec := httptest.NewRecorder()
		first := *req
		first.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(rec, &first)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"result"`) {
			b.Fatalf("status %d, body %s: the call does not reach the handler", rec.Code, rec.Body)
		}
		w := &discardWriter{h: http.Header{}}
		n := 0
		b.ReportAllocs()
		for b.Loop() {
			if newArgs {
				n++
				for i, x := 7, n; i >= 0; i, x = i-1, x/10 {
					body[digits+i] = byte('0' + x%10)
				}
			}
			r := *req
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			clear(w.h)
			h.ServeHTTP(w, &r)
		}
	}
	b.Run("bare-handler", func(b *testing.B) { run(b, mcp, false) })
	b.Run("protect", func(b *testing.B) { run(b, protect(nil), false) })
	b.Run("protect-authz", func(b *testing.B) { run(b, protect(az), false) })
	b.Run("protect-authz-newargs", func(b *testing.B) { run(b, protect(az), true) })
}
