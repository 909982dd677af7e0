package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"
)

// runDemo plays two users' MCP clients with tokens from your IdP: one in the
// group the pool's condition requires, whose call reaches the API as the
// mapped principal, and one outside it, whose exchange the STS refuses.
// Tokens are never printed.
func (ex *example) runDemo(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	alice := ex.userToken("alice", requiredGroup)
	res, err := ex.callWhoami(ctx, alice)
	if err != nil {
		return err
	}
	if res.IsError {
		return fmt.Errorf("alice: tool error: %s", textOf(res))
	}
	b, _ := json.Marshal(res.StructuredContent)
	var w whoami
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	want := ex.google.pool + "/subject/alice"
	if w.Principal != want {
		return fmt.Errorf("alice was mapped to %q, want %q", w.Principal, want)
	}
	fmt.Fprintf(out, "1. alice (groups=[%s]) calls cloud_whoami: the API saw %s\n", requiredGroup, b)
	if ex.google.wasShown(alice) {
		return fmt.Errorf("the cloud API was shown alice's own token")
	}
	fmt.Fprintln(out, "   (the API received the STS's federated token, never alice's)")

	res, err = ex.callWhoami(ctx, ex.userToken("bob", "contractors"))
	if err != nil {
		return err
	}
	if !res.IsError || !strings.Contains(textOf(res), "invalid_grant") {
		return fmt.Errorf("bob, outside %s, was not refused by the STS: %s", requiredGroup, textOf(res))
	}
	fmt.Fprintf(out, "2. bob (groups=[contractors]) calls cloud_whoami: %s\n", textOf(res))
	fmt.Fprintln(out, "demo OK")
	return nil
}

// callWhoami connects the official MCP client with token and calls
// cloud_whoami.
func (ex *example) callWhoami(ctx context.Context, token string) (*mcp.CallToolResult, error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "federated-demo", Version: "v0.1.0"}, nil)
	ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token, TokenType: "Bearer"})
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             ex.resource,
		HTTPClient:           &http.Client{Transport: &oauth2.Transport{Source: ts}, Timeout: 10 * time.Second},
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("MCP initialize: %w", err)
	}
	defer session.Close()
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "cloud_whoami", Arguments: map[string]any{}})
	if err != nil {
		return nil, fmt.Errorf("tools/call cloud_whoami: %w", err)
	}
	return res, nil
}

// textOf returns the text content of a tool result.
func textOf(res *mcp.CallToolResult) string {
	var s []string
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			s = append(s, t.Text)
		}
	}
	return strings.Join(s, " ")
}
