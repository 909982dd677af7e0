package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/authz"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/middleware/mcpgo"
	"github.com/mcpauth-go/mcpauth/prm"
)

// stepUpScope is the extra scope write_note needs.
const stepUpScope = "notes:write"

// policies is the Cedar policy set. Principals are Client::"<sub>", members
// of THVGroup::"<g>" for every g in the token's "groups" claim (see the
// package authz documentation for the whole mapping).
const policies = `
// Every authenticated user may call the everyday tools.
@id("everyone-everyday-tools")
permit (principal, action == Action::"call_tool", resource is Tool)
when { resource in [Tool::"whoami", Tool::"echo", Tool::"write_note"] };

// write_note also needs the notes:write scope. The @scope annotation turns
// this forbid's deny into 403 insufficient_scope, scope="notes:write", so the
// client can ask the user for it (step-up) and retry.
@id("write-note-needs-scope")
@scope("notes:write")
forbid (principal, action == Action::"call_tool", resource == Tool::"write_note")
unless { context.scopes.contains("notes:write") };

// Only admins may reset. Nobody else sees admin_reset in tools/list.
@id("admins-reset")
permit (principal in THVGroup::"admins", action == Action::"call_tool",
        resource == Tool::"admin_reset");
`

// server is a running example: listener, verifier, authorizer and, unless
// -issuer was given, the embedded development IdP.
type server struct {
	resource  string // canonical resource URI; tokens must carry it in aud
	issuer    string // the one authorization server trusted
	endpoint  string // URL of the MCP endpoint on the listener
	stateless bool
	scopes    []string // required for every request

	idp      *idptest.Server // nil with -issuer
	verifier *authn.Verifier
	srv      *http.Server
}

// start listens on o.addr, sets up the IdP, verifier and authorizer and
// starts serving in the background. The caller must call close.
func start(o options, logger *slog.Logger) (_ *server, err error) {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, err
	}
	s := &server{issuer: o.issuer, stateless: o.stateless, scopes: o.scopes}
	defer func() {
		if err != nil {
			ln.Close()
			s.close()
		}
	}()
	if !isLoopback(ln.Addr()) {
		logger.Warn("LISTENING ON A NON-LOOPBACK ADDRESS: this is an example server; "+
			"use an https -resource and a real -issuer before exposing it", "addr", ln.Addr().String())
	}
	// The resource URI is configuration, never derived from a request's Host.
	s.resource = o.resource
	if s.resource == "" {
		if !isLoopback(ln.Addr()) {
			return nil, fmt.Errorf("listening on %s: set -resource to the https URI clients reach this server at", ln.Addr())
		}
		s.resource = "http://" + ln.Addr().String() + "/mcp"
	}
	mcpPath, err := resourcePath(s.resource)
	if err != nil {
		return nil, err
	}
	s.endpoint = "http://" + ln.Addr().String() + mcpPath
	if s.issuer == "" {
		s.idp = idptest.NewServer(nil, idptest.Config{Audience: []string{s.resource}})
		s.issuer = s.idp.Issuer()
	}
	// Discovery and key fetches happen lazily, so the server may start
	// before an external IdP is reachable (requests meanwhile get 503).
	cfg := authn.Config{Issuer: s.issuer, Audience: []string{s.resource}, Logger: logger}
	if o.introspectionClientID != "" {
		cfg.Introspection = &authn.IntrospectionConfig{ClientID: o.introspectionClientID, ClientSecret: o.introspectionSecret}
	}
	s.verifier, err = authn.NewVerifier(cfg)
	if err != nil {
		return nil, err
	}
	h, err := s.handler(mcpPath, o.allowedOrigins, logger)
	if err != nil {
		return nil, err
	}
	// No WriteTimeout: MCP responses may be long-lived event streams.
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// handler mounts the metadata document and the MCP endpoint behind
// middleware.Protect (PRM + authn + authz), and nothing else.
func (s *server) handler(mcpPath string, origins []string, logger *slog.Logger) (http.Handler, error) {
	metadataURL, err := prm.MetadataURL(s.resource)
	if err != nil {
		return nil, err
	}
	az, err := authz.New(authz.Config{
		Policies:            policies,
		ResourceMetadataURL: metadataURL, // step-up challenges point at the metadata
		Logger:              logger,
	})
	if err != nil {
		return nil, err
	}
	// The binder ties each mcp-go session id to the user who opened it:
	// another user's token on it gets 403.
	binder, err := mcpgo.New(mcpgo.Config{})
	if err != nil {
		return nil, err
	}
	protected, err := middleware.Protect(binder.Middleware(mcpHandler(s.stateless)), middleware.Config{
		Metadata: prm.Metadata{
			Resource:               s.resource,
			AuthorizationServers:   []string{s.issuer},
			ScopesSupported:        append(slices.Clone(s.scopes), stepUpScope),
			BearerMethodsSupported: []string{"header"},
			ResourceName:           "mcpauth mcp-go example",
		},
		Verifier:       s.verifier,
		Authn:          authn.Options{Scopes: s.scopes, Logger: logger},
		Authorizer:     az,
		AllowedOrigins: origins,
	})
	if err != nil {
		return nil, err
	}
	prmPath, _ := prm.WellKnownPath(s.resource) // validated by Protect
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Exact matches only: any other path is not ours to serve.
		switch r.URL.EscapedPath() {
		case prmPath, mcpPath:
			protected.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	}), nil
}

// mcpHandler is the MCP server itself, unaware of OAuth. mcp-go runs a
// tool with the context of the request being handled, so authn.FromContext
// reports the current caller.
func mcpHandler(stateless bool) http.Handler {
	server := mcpserver.NewMCPServer("mcpauth-mcp-go-example", "v0.1.0")
	text := mcp.WithString("text", mcp.Required(), mcp.Description("the text"))
	server.AddTool(mcp.NewTool("whoami", mcp.WithDescription("Reports the verified caller.")), whoami)
	server.AddTool(mcp.NewTool("echo", mcp.WithDescription("Echoes its text."), text), echo)
	server.AddTool(mcp.NewTool("write_note", mcp.WithDescription("Stores a note (needs the notes:write scope)."), text), writeNote)
	server.AddTool(mcp.NewTool("admin_reset", mcp.WithDescription("Resets everything (admins only).")), adminReset)
	if stateless {
		return mcpserver.NewStreamableHTTPServer(server, mcpserver.WithStateLess(true))
	}
	return mcpserver.NewStreamableHTTPServer(server, mcpserver.WithStateful(true))
}

// caller returns the verified identity behind the request.
func caller(ctx context.Context) (*authn.TokenInfo, error) {
	if info, ok := authn.FromContext(ctx); ok {
		return info, nil
	}
	return nil, errors.New("no verified identity") // cannot happen behind Protect: fail closed
}

// identity is the whoami tool's result.
type identity struct {
	Subject  string   `json:"subject"`
	Issuer   string   `json:"issuer"`
	UserID   string   `json:"user_id"` // the session owner id
	ClientID string   `json:"client_id,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
}

func whoami(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	info, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	uid, err := mcpgo.UserID(info)
	if err != nil {
		return nil, err
	}
	return mcp.NewToolResultJSON(identity{Subject: info.Subject, Issuer: info.Issuer, UserID: uid,
		ClientID: info.ClientID, Scopes: info.Scopes})
}

func echo(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return mcp.NewToolResultText(req.GetString("text", "")), nil
}

func writeNote(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	info, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	return mcp.NewToolResultText(fmt.Sprintf("note stored for %s: %s", info.Subject, req.GetString("text", ""))), nil
}

func adminReset(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	info, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	return mcp.NewToolResultText("reset done by " + info.Subject), nil
}

// close stops the server, the verifier and the embedded IdP immediately.
func (s *server) close() {
	if s.srv != nil {
		s.srv.Close()
	}
	if s.verifier != nil {
		s.verifier.Close()
	}
	if s.idp != nil {
		s.idp.Close()
	}
}

// shutdown stops accepting requests, waits up to timeout for the ones in
// flight, then closes the connections still open. (net/http counts a
// connection a client opened but has not used yet — a browser's preconnect,
// an HTTP client's spare dial — as busy for its first five seconds.)
func (s *server) shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// resourcePath is the escaped path of the resource URI, "/" for a bare
// origin: the MCP endpoint is served there.
func resourcePath(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("-resource %q is not an absolute URI", resource)
	}
	if u.EscapedPath() == "" {
		return "/", nil
	}
	return u.EscapedPath(), nil
}

// isLoopback reports whether addr is a loopback IP address.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// mode names the session mode.
func (s *server) mode() string {
	if s.stateless {
		return "stateless"
	}
	return "stateful"
}

// printUsage prints the READY line, then what to try.
func (s *server) printUsage(w io.Writer) {
	metadataURL, _ := prm.MetadataURL(s.resource)
	fmt.Fprintf(w, "READY url=%s resource=%s metadata=%s issuer=%s mode=%s\n\n",
		s.endpoint, s.resource, metadataURL, s.issuer, s.mode())
	fmt.Fprintf(w, "MCP server (mark3labs/mcp-go, %s): %s\n", s.mode(), s.endpoint)
	fmt.Fprintf(w, "Protected resource metadata:  %s\n", metadataURL)
	if s.idp != nil {
		fmt.Fprintf(w, "Authorization server:         %s (embedded development IdP, keys die with this process)\n", s.issuer)
	} else {
		fmt.Fprintf(w, "Authorization server:         %s\n", s.issuer)
	}
	fmt.Fprintf(w, "Scopes every request needs:   %s\n", orNone(s.scopes))
	fmt.Fprintf(w, "Policies: everyone may call whoami and echo; write_note needs the scope %s (403\n", stepUpScope)
	fmt.Fprintf(w, "insufficient_scope otherwise); admin_reset needs the group \"admins\" (groups claim).\n\n")
	if s.idp != nil {
		// Printing tokens is acceptable only here: they are signed by a key
		// generated for this process and trusted by nothing else.
		fmt.Fprintf(w, "THROWAWAY DEVELOPMENT TOKENS from the embedded IdP (valid 1h, useless elsewhere):\n\n")
		fmt.Fprintf(w, "  TOKEN=%s        # dev-user\n", shellQuote(s.devToken("dev-user", nil)))
		fmt.Fprintf(w, "  NOTES_TOKEN=%s  # dev-user with %s\n", shellQuote(s.devToken("dev-user", []string{stepUpScope})), stepUpScope)
		fmt.Fprintf(w, "  ADMIN_TOKEN=%s  # dev-admin, group admins\n\n", shellQuote(s.devToken("dev-admin", nil, "admins")))
	} else {
		fmt.Fprintf(w, "Get an access token from %s whose aud is %s\n", s.issuer, s.resource)
		fmt.Fprintf(w, "(RFC 8707 resource=...) and set TOKEN to it.\n\n")
	}
	fmt.Fprintf(w, "List the tools you may call:\n\n")
	fmt.Fprintf(w, "  curl -sS %s -H \"Authorization: Bearer $TOKEN\" \\\n", shellQuote(s.endpoint))
	fmt.Fprintf(w, "    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\\n")
	fmt.Fprintf(w, "    -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}'\n\n")
	if !s.stateless {
		fmt.Fprintf(w, "(stateful: a 2025-11-25 client sends initialize first and carries the Mcp-Session-Id it gets;\n")
		fmt.Fprintf(w, "run with -stateless for single curl calls)\n\n")
	}
	fmt.Fprintf(w, "Press Ctrl-C to stop.\n")
}

// devToken mints a development token for sub with scopes (on top of any
// every request needs) and groups.
func (s *server) devToken(sub string, scopes []string, groups ...string) string {
	claims := map[string]any{"sub": sub, "client_id": "mcp-go-example-dev"}
	if all := append(slices.Clone(s.scopes), scopes...); len(all) > 0 {
		claims["scope"] = strings.Join(all, " ")
	}
	if len(groups) > 0 {
		claims["groups"] = groups
	}
	return s.idp.Token(claims)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, " ")
}
