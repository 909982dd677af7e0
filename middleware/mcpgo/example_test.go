package mcpgo_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/middleware/mcpgo"
	"github.com/mcpauth-go/mcpauth/prm"
)

// A stateful mcp-go server behind middleware.Protect with the binder:
// alice's session is hers, and bob's valid token on it is refused. A real
// server verifies with an *authn.Verifier; the fake here knows two tokens.
func ExampleBinder_Middleware() {
	verifier := authn.VerifierFunc(func(_ context.Context, token string) (*authn.TokenInfo, error) {
		sub, ok := map[string]string{"alice-token": "alice", "bob-token": "bob"}[token]
		if !ok {
			return nil, authn.ErrInvalidToken
		}
		return &authn.TokenInfo{Issuer: "https://login.example.com", Subject: sub}, nil
	})
	s := server.NewMCPServer("example", "v0")
	s.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		info, _ := authn.FromContext(ctx) // mcp-go passes the request's context
		return mcp.NewToolResultText(info.Subject), nil
	})
	b, err := mcpgo.New(mcpgo.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	h, err := middleware.Protect(b.Middleware(server.NewStreamableHTTPServer(s, server.WithStateful(true))), middleware.Config{
		Metadata: prm.Metadata{Resource: "https://mcp.example.com/mcp", AuthorizationServers: []string{"https://login.example.com"}},
		Verifier: verifier,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	post := func(token, session, body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := post("alice-token", "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"alice","version":"0"}}}`)
	session := resp.Header.Get("Mcp-Session-Id")
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`
	fmt.Println("alice on her session:", post("alice-token", session, call).StatusCode)
	fmt.Println("bob on alice's session:", post("bob-token", session, call).StatusCode)
	// Output:
	// alice on her session: 200
	// bob on alice's session: 403
}
