package gosdk_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/middleware/gosdk"
	"github.com/mcpauth-go/mcpauth/prm"
)

// bearer sets a fixed bearer token on every request.
type bearer string

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(r)
}

// A stateful official SDK server behind middleware.Protect, with the
// adapter: the SDK binds alice's session to her, and bob's valid token on
// it is refused. A real server verifies with an *authn.Verifier; the fake
// here knows two fixed tokens.
func ExampleMiddleware() {
	verifier := authn.VerifierFunc(func(_ context.Context, token string) (*authn.TokenInfo, error) {
		sub, ok := map[string]string{"alice-token": "alice", "bob-token": "bob"}[token]
		if !ok {
			return nil, authn.ErrInvalidToken
		}
		return &authn.TokenInfo{Issuer: "https://login.example.com", Subject: sub, Expiry: time.Now().Add(time.Hour)}, nil
	})
	server := mcp.NewServer(&mcp.Implementation{Name: "example", Version: "v0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "whoami"}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		info, _ := gosdk.FromTokenInfo(req.Extra.TokenInfo) // this request's caller
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: info.Subject}}}, nil, nil
	})
	sdk := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil) // stateful

	h, err := middleware.Protect(gosdk.Middleware(sdk), middleware.Config{
		Metadata: prm.Metadata{Resource: "https://mcp.example.com/mcp", AuthorizationServers: []string{"https://login.example.com"}},
		Verifier: verifier,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	// Alice opens a session with the official client and calls a tool.
	client := mcp.NewClient(&mcp.Implementation{Name: "alice", Version: "v0"}, nil)
	alice, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint: srv.URL, HTTPClient: &http.Client{Transport: bearer("alice-token")}, DisableStandaloneSSE: true,
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Close()
	res, err := alice.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("alice's call ran as", res.Content[0].(*mcp.TextContent).Text)

	// Bob, with a valid token of his own, tries alice's session id.
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(
		`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`))
	req.Header.Set("Authorization", "Bearer bob-token")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", alice.ID())
	req.Header.Set("Mcp-Protocol-Version", alice.InitializeResult().ProtocolVersion)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println("bob on alice's session:", resp.StatusCode, strings.TrimSpace(string(body)))
	// Output:
	// alice's call ran as alice
	// bob on alice's session: 403 session user mismatch
}

// The SDK's UserID for a verified identity is its issuer-qualified subject.
func ExampleUserID() {
	id, _ := gosdk.UserID(&authn.TokenInfo{Issuer: "https://login.example.com", Subject: "248289761001"})
	fmt.Println(id)
	// Output: https://login.example.com#248289761001
}
