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
	"os"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/prm"
	"github.com/mcpauth-go/mcpauth/upstream"
	"github.com/mcpauth-go/mcpauth/upstream/upstreamtest"
)

// app is a running example: one listener serving the authorization server,
// the MCP endpoint and its metadata.
type app struct {
	issuer, resource, url string
	upstreamDesc          string
	dev                   *upstreamtest.Provider // nil unless -upstream dev
	as                    *upstream.Server
	store                 upstream.Store
	verifier              *authn.Verifier
	srv                   *http.Server
}

// start listens on o.addr and serves in the background; call close.
func start(o options, logger *slog.Logger) (_ *app, err error) {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, err
	}
	a := &app{url: "http://" + ln.Addr().String()}
	defer func() {
		if err != nil {
			ln.Close()
			a.close()
		}
	}()
	a.issuer, a.resource = o.issuer, o.resource
	if a.issuer == "" {
		a.issuer = a.url
	}
	if a.resource == "" {
		a.resource = a.url + "/mcp"
	}

	var up upstream.Provider
	switch o.upstream {
	case "dev":
		a.dev = upstreamtest.NewProvider(nil, upstreamtest.Config{Subject: "alice"})
		up = a.dev.OIDC("dev")
		up.DisplayName = "the development provider (logs in alice)"
		a.upstreamDesc = "in-process development OpenID provider at " + a.dev.URL() + " (logs in alice without asking)"
	case "oidc":
		up = upstream.Provider{Name: "oidc", Type: upstream.OIDC, Issuer: o.upstreamIssuer,
			ClientID: o.upstreamClientID, ClientSecret: o.upstreamSecret, Scopes: []string{"openid", "profile"}}
		a.upstreamDesc = "OpenID provider " + o.upstreamIssuer
	case "github":
		up = upstream.Provider{Name: "github", DisplayName: "GitHub", Type: upstream.OAuth2,
			AuthURL: "https://github.com/login/oauth/authorize", TokenURL: "https://github.com/login/oauth/access_token",
			UserinfoURL: "https://api.github.com/user", ClientID: o.upstreamClientID, ClientSecret: o.upstreamSecret,
			Scopes: []string{"read:user"}}
		a.upstreamDesc = "GitHub"
	}
	var keys []upstream.SigningKey
	if o.signingKey != "" {
		pemBytes, err := os.ReadFile(o.signingKey)
		if err != nil {
			return nil, err
		}
		keys = []upstream.SigningKey{{PEM: pemBytes}}
	}
	var clients []upstream.Client
	if o.clientID != "" {
		clients = []upstream.Client{{ID: o.clientID, RedirectURIs: o.clientRedirects, TokenEndpointAuthMethod: "none",
			Name: o.clientID, GrantTypes: []string{"authorization_code", "refresh_token"}}}
	}
	a.store = upstream.NewMemoryStore()
	a.as, err = upstream.NewServer(upstream.Config{
		Issuer: a.issuer, Resources: []string{a.resource}, Upstreams: []upstream.Provider{up},
		ScopesSupported: o.scopes, DefaultScopes: o.scopes, SigningKeys: keys, Store: a.store,
		DisableDynamicRegistration: o.noDCR, Clients: clients,
		ClientMetadata: upstream.ClientMetadataConfig{AllowedNetworks: o.cimdAllow},
		Logger:         logger,
	})
	if err != nil {
		return nil, err
	}
	a.verifier, err = authn.NewVerifier(authn.Config{Issuer: a.issuer, Audience: []string{a.resource}, Logger: logger})
	if err != nil {
		return nil, err
	}
	protected, err := middleware.Protect(mcpHandler(a.store), middleware.Config{
		Metadata: prm.Metadata{Resource: a.resource, AuthorizationServers: []string{a.issuer},
			ScopesSupported: o.scopes, BearerMethodsSupported: []string{"header"}, ResourceName: "mcpauth embedded-as example"},
		Verifier: a.verifier,
		Authn:    authn.Options{Scopes: o.scopes, Logger: logger},
	})
	if err != nil {
		return nil, err
	}
	prmPath, _ := prm.WellKnownPath(a.resource)
	mcpPath := "/"
	if u, err := url.Parse(a.resource); err == nil && u.EscapedPath() != "" {
		mcpPath = u.EscapedPath()
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.EscapedPath() {
		case prmPath, mcpPath:
			protected.ServeHTTP(w, r)
		default:
			a.as.ServeHTTP(w, r) // the authorization server 404s what it does not serve
		}
	})
	a.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	go a.srv.Serve(ln)
	return a, nil
}

// mcpHandler is the MCP server: whoami reports the verified caller and
// whether its upstream session holds a token.
func mcpHandler(store upstream.Store) http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "mcpauth-embedded-as", Version: "v0.1.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "Reports the verified caller and its upstream session."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, identity, error) {
			info, ok := authn.FromContext(ctx)
			if !ok {
				return nil, identity{}, errors.New("no verified identity")
			}
			id := identity{Subject: info.Subject, ClientID: info.ClientID, Issuer: info.Issuer, Scopes: info.Scopes}
			if tsid, _ := info.Claims["tsid"].(string); tsid != "" {
				if s, err := store.GetSession(ctx, tsid); err == nil {
					id.Upstream = s.Upstream
					id.UpstreamToken = s.AccessToken != ""
				}
			}
			return nil, id, nil
		})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
}

// identity is the whoami result.
type identity struct {
	Subject       string   `json:"subject"`
	ClientID      string   `json:"client_id,omitempty"`
	Issuer        string   `json:"issuer"`
	Scopes        []string `json:"scopes,omitempty"`
	Upstream      string   `json:"upstream,omitempty"`
	UpstreamToken bool     `json:"upstream_token"`
}

func (a *app) close() {
	if a.srv != nil {
		a.srv.Close()
	}
	if a.verifier != nil {
		a.verifier.Close()
	}
	if a.as != nil {
		a.as.Close()
	}
	if a.dev != nil {
		a.dev.Close()
	}
}

func (a *app) printUsage(w io.Writer) {
	md, _ := prm.MetadataURL(a.resource)
	fmt.Fprintf(w, "MCP server:                   %s (listening on %s)\n", a.resource, a.url)
	fmt.Fprintf(w, "Protected resource metadata:  %s\n", md)
	fmt.Fprintf(w, "Authorization server issuer:  %s\n", a.issuer)
	fmt.Fprintf(w, "  metadata:                   %s/.well-known/oauth-authorization-server\n", a.url)
	fmt.Fprintf(w, "Upstream identity provider:   %s\n", a.upstreamDesc)
	fmt.Fprintf(w, "  redirect URI to register:   %s/callback\n\n", a.issuer)
	fmt.Fprintf(w, "Try it with any MCP client that supports OAuth, for example:\n\n")
	fmt.Fprintf(w, "  npx @modelcontextprotocol/inspector   # then connect to %s (Streamable HTTP)\n\n", a.resource)
	fmt.Fprintf(w, "The client gets 401, finds this authorization server, registers, and opens a browser:\n")
	fmt.Fprintf(w, "approve the client on the consent page, log in upstream, and call the whoami tool.\n")
	fmt.Fprintf(w, "Without a token you get the challenge a client starts from:\n\n  curl -si -X POST %s\n\n", a.resource)
	fmt.Fprintf(w, "Press Ctrl-C to stop.\n")
}
