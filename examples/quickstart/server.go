package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/prm"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// demoClientID is the client the embedded IdP registers for -demo.
const demoClientID = "quickstart-demo"

// quickstart is a running server: the listener, the verifier and, unless
// -issuer was given, the embedded development IdP.
type quickstart struct {
	resource string // canonical resource URI; tokens must carry it in aud
	issuer   string // the one authorization server trusted
	scopes   []string
	url      string // where the server listens, for the printed calls

	idp        *idptest.Server // nil with -issuer
	demoSecret string          // secret of demoClientID at idp

	verifier *authn.Verifier
	srv      *http.Server
}

// Format prints qs without the demo client's secret, whatever the verb.
func (qs quickstart) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "quickstart{resource:%s issuer:%s}", qs.resource, qs.issuer)
}

// start listens on o.addr, sets up the IdP and the verifier and starts
// serving in the background. The caller must call close.
func start(o options, logger *slog.Logger) (_ *quickstart, err error) {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, err
	}
	qs := &quickstart{issuer: o.issuer, scopes: o.scopes, url: "http://" + ln.Addr().String()}
	defer func() {
		if err != nil {
			ln.Close()
			qs.close()
		}
	}()
	if !isLoopback(ln.Addr()) {
		logger.Warn("LISTENING ON A NON-LOOPBACK ADDRESS: this is a demo server; "+
			"use an https -resource and a real -issuer before exposing it", "addr", ln.Addr().String())
	}

	// The resource URI is configuration, never derived from a request's Host
	// header: it is what tokens are audience-restricted to (RFC 8707).
	qs.resource = o.resource
	if qs.resource == "" {
		if qs.resource, err = defaultResource(ln.Addr()); err != nil {
			return nil, err
		}
	}
	if qs.issuer == "" {
		qs.startEmbeddedIdP()
	}

	// Discovery and key fetches happen lazily on the first request, so the
	// server may start before an external IdP is reachable.
	qs.verifier, err = authn.NewVerifier(authn.Config{
		Issuer:   qs.issuer,
		Audience: []string{qs.resource},
		Logger:   logger,
	})
	if err != nil {
		return nil, err
	}
	h, err := qs.handler(logger)
	if err != nil {
		return nil, err
	}
	// No WriteTimeout: MCP responses may be long-lived event streams.
	qs.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go qs.srv.Serve(ln)
	return qs, nil
}

// startEmbeddedIdP starts the development IdP: fresh keys per process,
// tokens for this resource, and one confidential client for -demo.
func (qs *quickstart) startEmbeddedIdP() {
	qs.demoSecret = rand.Text()
	qs.idp = idptest.NewServer(nil, idptest.Config{
		Audience: []string{qs.resource},
		Clients:  []idptest.Client{{ID: demoClientID, Secret: qs.demoSecret}},
	})
	qs.issuer = qs.idp.Issuer()
}

// handler mounts the metadata document and the MCP endpoint behind
// middleware.Protect, and nothing else.
func (qs *quickstart) handler(logger *slog.Logger) (http.Handler, error) {
	protected, err := middleware.Protect(mcpHandler(), middleware.Config{
		Metadata: prm.Metadata{
			Resource:               qs.resource,
			AuthorizationServers:   []string{qs.issuer},
			ScopesSupported:        qs.scopes,
			BearerMethodsSupported: []string{"header"},
			ResourceName:           "mcpauth quickstart",
		},
		Verifier: qs.verifier,
		Authn:    authn.Options{Scopes: qs.scopes, Logger: logger},
	})
	if err != nil {
		return nil, err
	}
	prmPath, _ := prm.WellKnownPath(qs.resource) // validated by Protect
	mcpPath := resourcePath(qs.resource)
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

// mcpHandler is the MCP server itself, unaware of OAuth: it reads the
// verified identity that Protect put in the request context.
func mcpHandler() http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "mcpauth-quickstart", Version: "v0.1.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "Reports the verified caller."}, whoami)
	mcp.AddTool(server, &mcp.Tool{Name: "echo", Description: "Echoes its text."}, echo)
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{
			// Stateless: every HTTP request is verified and handled on its own,
			// so the identity a tool sees is the one that sent this very
			// request. In the SDK's stateful mode a tool's context is that of
			// the request that opened the session: authn.FromContext would
			// report whoever sent initialize, not the caller
			// (TestIdentityPerRequest shows it).
			Stateless: true,
			// Plain JSON responses keep the printed curl output readable.
			JSONResponse: true,
		})
}

// identity is the whoami tool's result.
type identity struct {
	Subject  string   `json:"subject"`
	ClientID string   `json:"client_id,omitempty"`
	Issuer   string   `json:"issuer"`
	Scopes   []string `json:"scopes,omitempty"`
}

func whoami(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, identity, error) {
	info, ok := authn.FromContext(ctx)
	if !ok {
		// Cannot happen behind Protect; fail closed rather than invent a user.
		return nil, identity{}, errors.New("no verified identity")
	}
	return nil, identity{Subject: info.Subject, ClientID: info.ClientID, Issuer: info.Issuer, Scopes: info.Scopes}, nil
}

type echoArgs struct {
	Text string `json:"text" jsonschema:"the text to echo"`
}

func echo(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
}

// close stops the server, the verifier and the embedded IdP immediately.
func (qs *quickstart) close() {
	if qs.srv != nil {
		qs.srv.Close()
	}
	if qs.verifier != nil {
		qs.verifier.Close()
	}
	if qs.idp != nil {
		qs.idp.Close()
	}
}

// defaultResource is http://ADDR/mcp for a loopback addr. Elsewhere there is
// no good default: plain http is refused off loopback (tokens would cross the
// network in clear), and only the operator knows the https name clients use.
func defaultResource(addr net.Addr) (string, error) {
	if !isLoopback(addr) {
		return "", fmt.Errorf("listening on %s: set -resource to the https URI clients reach this server at", addr)
	}
	return "http://" + addr.String() + "/mcp", nil
}

// resourcePath is the escaped path of the resource URI, "/" for a bare origin.
func resourcePath(resource string) string {
	u, err := url.Parse(resource)
	if err != nil || u.EscapedPath() == "" {
		return "/"
	}
	return u.EscapedPath()
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

// printUsage prints where everything is and a call to paste into a shell.
func (qs *quickstart) printUsage(w io.Writer) {
	metadataURL, _ := prm.MetadataURL(qs.resource)
	fmt.Fprintf(w, "MCP server:                  %s (listening on %s)\n", qs.resource, qs.url)
	fmt.Fprintf(w, "Protected resource metadata: %s\n", metadataURL)
	if qs.idp != nil {
		fmt.Fprintf(w, "Authorization server:        %s (embedded development IdP, keys die with this process)\n", qs.issuer)
	} else {
		fmt.Fprintf(w, "Authorization server:        %s\n", qs.issuer)
	}
	fmt.Fprintf(w, "Required scopes:             %s\n\n", orNone(qs.scopes))

	fmt.Fprintf(w, "Without a token you get the challenge a client starts from:\n\n  curl -si -X POST %s\n\n", shellQuote(qs.resource))
	if qs.idp != nil {
		// Printing a token is acceptable only here: it is signed by a key
		// generated for this process and trusted by nothing else.
		fmt.Fprintf(w, "THROWAWAY DEVELOPMENT TOKEN from the embedded IdP (sub=dev-user, valid 1h, useless elsewhere):\n\n")
		fmt.Fprintf(w, "  TOKEN=%s\n\n", shellQuote(qs.idp.Token(qs.devClaims())))
	} else {
		fmt.Fprintf(w, "Get an access token from %s issued for the resource %s\n", qs.issuer, qs.resource)
		fmt.Fprintf(w, "(its aud must be that URI: RFC 8707 resource=..., called \"audience\" or \"API identifier\" by some IdPs)")
		if len(qs.scopes) > 0 {
			fmt.Fprintf(w, " with the scopes %s", strings.Join(qs.scopes, " "))
		}
		fmt.Fprintf(w, ", then:\n\n  TOKEN=...your access token...\n\n")
	}
	fmt.Fprintf(w, "and call a tool with it:\n\n")
	fmt.Fprintf(w, "  curl -sS %s \\\n", shellQuote(qs.resource))
	fmt.Fprintf(w, "    -H \"Authorization: Bearer $TOKEN\" \\\n")
	fmt.Fprintf(w, "    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\\n")
	fmt.Fprintf(w, "    -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"whoami\",\"arguments\":{}}}'\n\n")
	fmt.Fprintf(w, "Press Ctrl-C to stop.\n")
}

// devClaims are the claims of the printed development token: the dev user,
// with every scope the server requires.
func (qs *quickstart) devClaims() map[string]any {
	claims := map[string]any{"sub": "dev-user", "client_id": "quickstart-dev"}
	if len(qs.scopes) > 0 {
		claims["scope"] = strings.Join(qs.scopes, " ")
	}
	return claims
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, " ")
}

// demoParams tells the demo client what to call and how to get a token.
func (qs *quickstart) demoParams(o options) demoParams {
	p := demoParams{resource: qs.resource, scopes: qs.scopes, clientID: o.clientID, secret: o.secret}
	if qs.idp != nil {
		p.clientID, p.secret = demoClientID, qs.demoSecret
	}
	return p
}
