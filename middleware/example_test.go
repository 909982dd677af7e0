package middleware_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/prm"
)

// Protect an MCP handler: the metadata document is public, everything else
// needs a verified bearer token. A real server uses an *authn.Verifier; the
// fake here accepts one fixed token.
func ExampleProtect() {
	mcpHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := authn.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s", info.Subject)
	})
	verifier := authn.VerifierFunc(func(ctx context.Context, token string) (*authn.TokenInfo, error) {
		if token != "example-token" {
			return nil, authn.ErrInvalidToken
		}
		return &authn.TokenInfo{Subject: "alice", Scopes: []string{"mcp:tools"}}, nil
	})

	h, err := middleware.Protect(mcpHandler, middleware.Config{
		Metadata: prm.Metadata{
			Resource:             "https://mcp.example.com/mcp",
			AuthorizationServers: []string{"https://login.example.com"},
			ScopesSupported:      []string{"mcp:tools"},
		},
		Verifier: verifier,
		Authn:    authn.Options{Scopes: []string{"mcp:tools"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	get := func(path, token string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Println(path, resp.StatusCode)
		if c := resp.Header.Get("WWW-Authenticate"); c != "" {
			fmt.Println("  WWW-Authenticate:", c)
		} else {
			fmt.Println(" ", string(body))
		}
	}
	get("/.well-known/oauth-protected-resource/mcp", "")
	get("/mcp", "")
	get("/mcp", "example-token")
	// Output:
	// /.well-known/oauth-protected-resource/mcp 200
	//   {"resource":"https://mcp.example.com/mcp","authorization_servers":["https://login.example.com"],"scopes_supported":["mcp:tools"]}
	// /mcp 401
	//   WWW-Authenticate: Bearer scope="mcp:tools", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	// /mcp 200
	//   hello alice
}

// Chain applies middlewares first-outermost.
func ExampleChain() {
	tag := func(name string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Println("enter", name)
				next.ServeHTTP(w, r)
			})
		}
	}
	h := middleware.Chain(tag("logging"), tag("recover"), tag("auth"))(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { fmt.Println("handler") }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	// Output:
	// enter logging
	// enter recover
	// enter auth
	// handler
}
