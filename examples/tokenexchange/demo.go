package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// runDemo plays an MCP client: it gets a token for the MCP server, shows that
// the backend refuses that token, then calls the profile tool twice and
// checks that the backend saw an exchanged token (audience: the backend, same
// subject) and that the second call reused it. Tokens are never printed.
func (ex *example) runDemo(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: 10 * time.Second}

	cc := clientcredentials.Config{
		ClientID:       demoClientID,
		ClientSecret:   ex.demoSecret,
		TokenURL:       ex.idp.TokenURL(),
		EndpointParams: url.Values{"resource": {ex.resource}}, // RFC 8707: aud = the MCP server
	}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
	if err != nil {
		return fmt.Errorf("client token: %w", err)
	}
	fmt.Fprintf(out, "1. client_credentials token for %s (aud = the MCP server; token not shown)\n", ex.resource)

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ex.backend.url+"/profile", nil)
	if err != nil {
		return err
	}
	tok.SetAuthHeader(req)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("backend accepted the client's own token: %s, want 401", resp.Status)
	}
	fmt.Fprintf(out, "2. that token sent straight to the backend: %s (wrong audience)\n", resp.Status)

	client := mcp.NewClient(&mcp.Implementation{Name: "tokenexchange-demo", Version: "v0.1.0"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             ex.resource,
		HTTPClient:           &http.Client{Transport: &oauth2.Transport{Source: oauth2.StaticTokenSource(tok)}, Timeout: 10 * time.Second},
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, nil)
	if err != nil {
		return fmt.Errorf("MCP initialize: %w", err)
	}
	defer session.Close()

	for i := 1; i <= 2; i++ {
		res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "profile", Arguments: map[string]any{}})
		if err != nil {
			return fmt.Errorf("tools/call profile: %w", err)
		}
		if res.IsError {
			return fmt.Errorf("tools/call profile: tool error: %v", textOf(res))
		}
		b, _ := json.Marshal(res.StructuredContent)
		var p profile
		if err := json.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("tools/call profile: %w", err)
		}
		fmt.Fprintf(out, "%d. tools/call profile: the backend saw %s\n", i+2, b)
		if p.Subject != demoClientID || p.ClientID != mcpClientID || !slices.Equal(p.Audience, []string{ex.backend.url}) {
			return fmt.Errorf("backend saw subject %q client %q audience %v, want %q, %q, [%s]",
				p.Subject, p.ClientID, p.Audience, demoClientID, mcpClientID, ex.backend.url)
		}
	}
	if n := ex.backend.received(tok.AccessToken); n != 0 {
		return fmt.Errorf("the backend received the client's own token %d times", n)
	}
	// One client_credentials grant, then one exchange shared by both calls.
	n := ex.idp.Requests(idptest.EndpointToken)
	if n != 2 {
		return fmt.Errorf("the IdP's token endpoint served %d requests, want 2 (the client's grant and one exchange)", n)
	}
	fmt.Fprintf(out, "5. the IdP's token endpoint served %d requests: the client's grant and one exchange, cached for the second call\n", n)
	fmt.Fprintln(out, "demo OK")
	return nil
}

// textOf returns the text content of a tool result.
func textOf(res *mcp.CallToolResult) []string {
	var s []string
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			s = append(s, t.Text)
		}
	}
	return s
}
