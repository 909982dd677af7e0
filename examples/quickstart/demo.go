package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// demoParams is what the demo client knows before it starts: the server's
// URL and a client registration at whatever authorization server the server
// names. Everything else it discovers.
type demoParams struct {
	resource string
	scopes   []string
	clientID string
	secret   string
}

// Format prints p without its secret, whatever the verb.
func (p demoParams) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "demoParams{resource:%s client:%s secret:REDACTED}", p.resource, p.clientID)
}

// runDemo plays an MCP client that has never seen this server: it probes it
// without a token, follows the challenge to the protected resource metadata
// and the authorization server, gets a token for this resource and calls
// tools with the official SDK client. Each step is printed to out; tokens
// never are. It returns the first failure.
func runDemo(ctx context.Context, p demoParams, out io.Writer) error {
	if p.clientID == "" || p.secret == "" {
		return fmt.Errorf("-demo with -issuer needs -client-id and the client secret in $%s", secretEnv)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: 10 * time.Second}

	metadataURL, err := probe(ctx, hc, p.resource, out)
	if err != nil {
		return fmt.Errorf("step 1 (unauthenticated probe): %w", err)
	}
	// The SDK checks that the document's resource is the one we called
	// (RFC 9728 §3.3): a document for another resource is an attack.
	md, err := oauthex.GetProtectedResourceMetadata(ctx, metadataURL, p.resource, hc)
	if err != nil {
		return fmt.Errorf("step 2 (protected resource metadata): %w", err)
	}
	if len(md.AuthorizationServers) == 0 {
		return errors.New("step 2 (protected resource metadata): no authorization_servers")
	}
	fmt.Fprintf(out, "2. protected resource metadata: resource=%s authorization_servers=%v scopes_supported=%v\n",
		md.Resource, md.AuthorizationServers, md.ScopesSupported)

	issuer := md.AuthorizationServers[0]
	tokenURL, err := tokenEndpoint(ctx, hc, issuer)
	if err != nil {
		return fmt.Errorf("step 3 (authorization server metadata): %w", err)
	}
	fmt.Fprintf(out, "3. authorization server %s: token_endpoint=%s\n", issuer, tokenURL)

	ts, err := getToken(ctx, hc, p, tokenURL, md.ScopesSupported, out)
	if err != nil {
		return fmt.Errorf("step 4 (token): %w", err)
	}
	if err := callTools(ctx, p.resource, &oauth2.Transport{Source: ts}, out); err != nil {
		return fmt.Errorf("step 5 (MCP): %w", err)
	}
	fmt.Fprintln(out, "demo OK")
	return nil
}

// probe sends what an MCP client sends first, without a token, and returns
// the resource_metadata URL from the 401 challenge (RFC 9728 §5.1).
func probe(ctx context.Context, hc *http.Client, resource string, out io.Writer) (string, error) {
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"probe","version":"0"}}}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, resource, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		return "", fmt.Errorf("got %s, want 401", resp.Status)
	}
	fmt.Fprintf(out, "1. POST %s without a token: %s\n   WWW-Authenticate: %s\n",
		resource, resp.Status, strings.Join(resp.Header.Values("WWW-Authenticate"), ", "))
	challenges, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if err != nil {
		return "", err
	}
	for _, c := range challenges {
		if c.Scheme == "bearer" && c.Params["resource_metadata"] != "" {
			return c.Params["resource_metadata"], nil
		}
	}
	return "", errors.New("no Bearer challenge with resource_metadata")
}

// tokenEndpoint discovers the issuer's token endpoint: RFC 8414 metadata
// first, then OpenID Connect Discovery, which many IdPs serve instead. The
// SDK checks that the document names the same issuer.
func tokenEndpoint(ctx context.Context, hc *http.Client, issuer string) (string, error) {
	for _, u := range discoveryURLs(issuer) {
		asm, err := oauthex.GetAuthServerMeta(ctx, u, issuer, hc)
		if err != nil {
			return "", err
		}
		if asm != nil && asm.TokenEndpoint != "" { // nil: not found there, try the next
			return asm.TokenEndpoint, nil
		}
	}
	return "", fmt.Errorf("no authorization server metadata found for %s", issuer)
}

// discoveryURLs lists the metadata locations for issuer: the RFC 8414 §3.1
// path-inserted URL, then the OpenID Connect Discovery 1.0 appended one.
func discoveryURLs(issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	origin := u.Scheme + "://" + u.Host
	return []string{
		origin + "/.well-known/oauth-authorization-server" + path,
		origin + path + "/.well-known/openid-configuration",
	}
}

// getToken gets an access token with the client credentials grant, asking
// for this resource (RFC 8707) so the token's audience is this server and
// nothing else. It returns a TokenSource that renews the token when needed.
func getToken(ctx context.Context, hc *http.Client, p demoParams, tokenURL string, supported []string, out io.Writer) (oauth2.TokenSource, error) {
	scopes := p.scopes
	if len(scopes) == 0 {
		scopes = supported
	}
	cc := clientcredentials.Config{
		ClientID:       p.clientID,
		ClientSecret:   p.secret,
		TokenURL:       tokenURL,
		Scopes:         scopes,
		EndpointParams: url.Values{"resource": {p.resource}},
	}
	// The token source keeps using hc (and ctx) for renewals.
	ts := cc.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, hc))
	tok, err := ts.Token()
	if err != nil {
		return nil, err
	}
	scope, _ := tok.Extra("scope").(string)
	fmt.Fprintf(out, "4. client_credentials token for resource=%s: type=%s scope=%q expires in %s (token not shown)\n",
		p.resource, tok.Type(), scope, time.Until(tok.Expiry).Round(time.Second))
	return ts, nil
}

// callTools connects the official MCP client through rt, which adds the
// Authorization header to every request, and calls both tools.
func callTools(ctx context.Context, resource string, rt http.RoundTripper, out io.Writer) error {
	client := mcp.NewClient(&mcp.Implementation{Name: "quickstart-demo", Version: "v0.1.0"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             resource,
		HTTPClient:           &http.Client{Transport: rt, Timeout: 10 * time.Second},
		DisableStandaloneSSE: true, // request/response is all the demo needs
		MaxRetries:           -1,
	}, nil)
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	defer session.Close()
	init := session.InitializeResult()
	fmt.Fprintf(out, "5. MCP initialize: server %s %s, protocol %s\n",
		init.ServerInfo.Name, init.ServerInfo.Version, init.ProtocolVersion)

	for _, call := range []mcp.CallToolParams{
		{Name: "whoami", Arguments: map[string]any{}},
		{Name: "echo", Arguments: map[string]any{"text": "hello from the demo client"}},
	} {
		res, err := session.CallTool(ctx, &call)
		if err != nil {
			return fmt.Errorf("tools/call %s: %w", call.Name, err)
		}
		text := resultText(res)
		if res.IsError {
			return fmt.Errorf("tools/call %s: tool error: %s", call.Name, text)
		}
		fmt.Fprintf(out, "6. tools/call %s: %s\n", call.Name, text)
	}
	return nil
}

// resultText renders a tool result: its structured content if any, else
// its text content.
func resultText(res *mcp.CallToolResult) string {
	if res.StructuredContent != nil {
		if b, err := json.Marshal(res.StructuredContent); err == nil {
			return string(b)
		}
	}
	var parts []string
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, t.Text)
		}
	}
	return strings.Join(parts, " ")
}
