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

// runDemo plays an MCP client through one key rotation: a call with key-1,
// a rotation, calls until the server sends key-2 (within a few file check
// intervals), revocation of key-1, and a last call that still works.
func (ex *example) runDemo(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "static-credentials-demo", Version: "v0.1.0"}, nil)
	ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: ex.idp.Token(map[string]any{"sub": "alice", "aud": ex.resource})})
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             ex.resource,
		HTTPClient:           &http.Client{Transport: &oauth2.Transport{Source: ts}, Timeout: 10 * time.Second},
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, nil)
	if err != nil {
		return fmt.Errorf("MCP initialize: %w", err)
	}
	defer session.Close()
	call := func() (string, error) {
		res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "backend_status", Arguments: map[string]any{}})
		if err != nil {
			return "", fmt.Errorf("tools/call backend_status: %w", err)
		}
		if res.IsError {
			return "", fmt.Errorf("tools/call backend_status: tool error: %s", textOf(res))
		}
		b, _ := json.Marshal(res.StructuredContent)
		var s status
		if err := json.Unmarshal(b, &s); err != nil {
			return "", err
		}
		return s.KeyID, nil
	}

	id, err := call()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "1. tools/call backend_status: the backend received %s\n", id)
	newID, err := ex.backend.rotate()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "2. rotated: the backend issued %s and the key file now holds it\n", newID)
	start := time.Now()
	for id != newID {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the server kept sending %s: %w", id, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if id, err = call(); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "3. tools/call backend_status: the backend received %s, %s after the rotation, no restart\n",
		id, time.Since(start).Round(100*time.Millisecond))
	fmt.Fprintf(out, "4. revoked %v\n", ex.backend.revokeOld())
	if id, err = call(); err != nil {
		return err
	}
	fmt.Fprintf(out, "5. tools/call backend_status: the backend received %s\n", id)
	if _, n := ex.backend.seen(); n != 0 {
		return fmt.Errorf("the backend received %d requests with an Authorization header (token passthrough)", n)
	}
	fmt.Fprintln(out, "demo OK")
	return nil
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
