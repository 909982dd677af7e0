package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/prm"
	"github.com/mcpauth-go/mcpauth/tokenexchange"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Clients registered at the development IdP.
const (
	demoClientID = "tokenexchange-demo" // the MCP client of -demo
	mcpClientID  = "mcp-server"         // the MCP server, exchanging tokens
)

// example is everything running: the IdP (unless -issuer), the backend API
// and the MCP server, each on its own loopback port.
type example struct {
	issuer     string          // the one issuer trusted
	idp        *idptest.Server // the embedded IdP; nil with -issuer
	demoSecret string          // secret of demoClientID
	mcpSecret  string          // secret of mcpClientID, the MCP server's own credential

	backend *backend

	resource string // the MCP server's resource URI: the audience of inbound tokens
	verifier *authn.Verifier
	mcpSrv   *http.Server
}

// Format prints ex without its secrets, whatever the verb.
func (ex *example) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "example{resource:%s issuer:%s}", ex.resource, ex.issuer)
}

// start runs the servers; the MCP server listens on o.addr. The caller
// must call close.
func start(o options, logger *slog.Logger) (_ *example, err error) {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, err
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("listening on %s: this example serves plain http and must stay on loopback", ln.Addr())
	}
	ex := &example{
		resource:   "http://" + ln.Addr().String() + "/mcp",
		demoSecret: rand.Text(),
		mcpSecret:  rand.Text(),
	}
	defer func() {
		if err != nil {
			ln.Close()
			ex.close()
		}
	}()
	// The outbound transport's configuration: for each backend call it
	// exchanges the caller's token (taken from the request context, where
	// Protect put it) at the IdP's token endpoint for one meant for the
	// backend, caches it per caller until shortly before it expires, and
	// sends that one.
	xcfg := tokenexchange.Config{Audience: o.audience, Logger: logger}
	if o.issuer == "" {
		ex.idp = idptest.NewServer(nil, idptest.Config{
			Clients: []idptest.Client{
				{ID: demoClientID, Secret: ex.demoSecret},
				{ID: mcpClientID, Secret: ex.mcpSecret},
			},
		})
		ex.issuer = ex.idp.Issuer()
		xcfg.TokenURL, xcfg.ClientID, xcfg.ClientSecret = ex.idp.TokenURL(), mcpClientID, ex.mcpSecret
	} else {
		// The token endpoint is discovered from the issuer on first use.
		ex.issuer = o.issuer
		xcfg.Issuer, xcfg.ClientID, xcfg.ClientSecret = o.issuer, o.clientID, o.secret
	}
	if ex.backend, err = startBackend(ex.issuer, o.audience, logger); err != nil {
		return nil, err
	}
	if o.audience == "" {
		xcfg.Resources = []string{ex.backend.url} // RFC 8707: the backend's URL names it
	}

	ex.verifier, err = authn.NewVerifier(authn.Config{
		Issuer:   ex.issuer,
		Audience: []string{ex.resource},
		Logger:   logger,
	})
	if err != nil {
		return nil, err
	}
	xt, err := tokenexchange.NewTransport(xcfg, nil)
	if err != nil {
		return nil, err
	}
	protected, err := middleware.Protect(mcpHandler(ex.backend.url, &http.Client{Transport: xt, Timeout: 10 * time.Second}),
		middleware.Config{
			Metadata: prm.Metadata{
				Resource:             ex.resource,
				AuthorizationServers: []string{ex.issuer},
				ResourceName:         "mcpauth token exchange example",
			},
			Verifier: ex.verifier,
			Authn:    authn.Options{Logger: logger},
		})
	if err != nil {
		return nil, err
	}
	// Protect serves the metadata at its well-known path and guards the
	// rest; the mux keeps every other path out.
	prmPath, _ := prm.WellKnownPath(ex.resource)
	mux := http.NewServeMux()
	mux.Handle(prmPath, protected)
	mux.Handle("/mcp", protected)
	ex.mcpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go ex.mcpSrv.Serve(ln)
	return ex, nil
}

// close stops everything immediately.
func (ex *example) close() {
	if ex.mcpSrv != nil {
		ex.mcpSrv.Close()
	}
	if ex.verifier != nil {
		ex.verifier.Close()
	}
	if ex.backend != nil {
		ex.backend.close()
	}
	if ex.idp != nil {
		ex.idp.Close()
	}
}

// profile is what the backend answers: who it thinks is calling, from the
// token it received.
type profile struct {
	Subject  string   `json:"subject"`
	ClientID string   `json:"client_id"`
	Audience []string `json:"audience"`
}

// mcpHandler is the MCP server: one tool, "profile", that asks the backend
// who the caller is, through hc (whose transport exchanges the token).
func mcpHandler(backendURL string, hc *http.Client) http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "mcpauth-tokenexchange", Version: "v0.1.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "profile", Description: "Asks the backend API who the caller is."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, profile, error) {
			// ctx carries the verified identity of this very request (the
			// handler is stateless), which the transport exchanges.
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, backendURL+"/profile", nil)
			if err != nil {
				return nil, profile{}, err
			}
			resp, err := hc.Do(req)
			if err != nil {
				// The client's error quotes the URL, which holds no token here.
				return nil, profile{}, fmt.Errorf("backend: %w", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return nil, profile{}, fmt.Errorf("backend: %s", resp.Status)
			}
			var p profile
			if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&p); err != nil {
				return nil, profile{}, fmt.Errorf("backend: %w", err)
			}
			return nil, p, nil
		})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
}

// backend is the downstream API: an ordinary OAuth resource server that
// accepts tokens from the same IdP whose audience is its own (its URL, or
// -audience), and nothing else, so the MCP client's token (audience: the
// MCP server) is refused there.
type backend struct {
	url      string
	audience string
	verifier *authn.Verifier
	srv      *http.Server

	mu     sync.Mutex
	hashes map[[sha256.Size]byte]int // SHA-256 of each accepted token, with a count; never the token
}

// startBackend starts the backend, accepting tokens from issuer for
// audience, or for its own URL if audience is empty.
func startBackend(issuer, audience string, logger *slog.Logger) (_ *backend, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &backend{url: "http://" + ln.Addr().String() + "/api", audience: audience, hashes: map[[sha256.Size]byte]int{}}
	if b.audience == "" {
		b.audience = b.url
	}
	b.verifier, err = authn.NewVerifier(authn.Config{Issuer: issuer, Audience: []string{b.audience}, Logger: logger})
	if err != nil {
		ln.Close()
		return nil, err
	}
	metadataURL, _ := prm.MetadataURL(b.url)
	protect := authn.Middleware(b.verifier, authn.Options{ResourceMetadataURL: metadataURL, Logger: logger})
	mux := http.NewServeMux()
	mux.Handle("GET /api/profile", protect(http.HandlerFunc(b.serveProfile)))
	b.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go b.srv.Serve(ln)
	return b, nil
}

func (b *backend) serveProfile(w http.ResponseWriter, r *http.Request) {
	info, ok := authn.FromContext(r.Context())
	if !ok {
		http.Error(w, "no identity", http.StatusInternalServerError)
		return
	}
	b.mu.Lock()
	b.hashes[sha256.Sum256([]byte(info.Token()))]++
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(profile{Subject: info.Subject, ClientID: info.ClientID, Audience: info.Audience})
}

// received reports how many requests the backend accepted with token.
func (b *backend) received(token string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hashes[sha256.Sum256([]byte(token))]
}

// accepted reports how many distinct tokens the backend accepted.
func (b *backend) accepted() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.hashes)
}

func (b *backend) close() {
	b.srv.Close()
	b.verifier.Close()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// printUsage prints the servers and calls to paste into a shell.
func (ex *example) printUsage(w io.Writer) {
	metadataURL, _ := prm.MetadataURL(ex.resource)
	fmt.Fprintf(w, "MCP server:                  %s\n", ex.resource)
	fmt.Fprintf(w, "Protected resource metadata: %s\n", metadataURL)
	if ex.idp != nil {
		fmt.Fprintf(w, "Identity provider:           %s (embedded development IdP, keys die with this process)\n", ex.issuer)
	} else {
		fmt.Fprintf(w, "Identity provider:           %s\n", ex.issuer)
	}
	fmt.Fprintf(w, "Backend API:                 %s (accepts only tokens whose audience is %s)\n\n", ex.backend.url, ex.backend.audience)
	if ex.idp != nil {
		// Printing a token is acceptable only here: it is signed by a key
		// made for this process and trusted by nothing else.
		fmt.Fprintf(w, "THROWAWAY DEVELOPMENT TOKEN for the MCP server (sub=dev-user, aud=%s, valid 1h):\n\n", ex.resource)
		fmt.Fprintf(w, "  TOKEN=%s\n\n", shellQuote(ex.idp.Token(map[string]any{"sub": "dev-user", "aud": ex.resource})))
	} else {
		fmt.Fprintf(w, "Get an access token from %s issued for the resource %s\n", ex.issuer, ex.resource)
		fmt.Fprintf(w, "(its aud must be that URI: RFC 8707 resource=...), then:\n\n  TOKEN=...your access token...\n\n")
	}
	fmt.Fprintf(w, "Call the profile tool: the MCP server exchanges your token for one meant for the backend\n")
	fmt.Fprintf(w, "(RFC 8693) and the backend answers with what it received (aud is the backend, sub is you):\n\n")
	fmt.Fprintf(w, "  curl -sS %s \\\n", shellQuote(ex.resource))
	fmt.Fprintf(w, "    -H \"Authorization: Bearer $TOKEN\" \\\n")
	fmt.Fprintf(w, "    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\\n")
	fmt.Fprintf(w, "    -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"profile\",\"arguments\":{}}}'\n\n")
	fmt.Fprintf(w, "Your own token is refused by the backend (wrong audience), which is why the server exchanges it:\n\n")
	fmt.Fprintf(w, "  curl -si %s -H \"Authorization: Bearer $TOKEN\"\n\n", shellQuote(ex.backend.url+"/profile"))
	fmt.Fprintf(w, "Press Ctrl-C to stop.\n")
}
