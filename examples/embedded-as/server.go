package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/prm"
	"github.com/mcpauth-go/mcpauth/upstream"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore"
	"github.com/mcpauth-go/mcpauth/upstream/upstreamtest"
)

// app is a running example: one listener serving the authorization server,
// the MCP endpoint and its metadata.
type app struct {
	issuer, resource, url string
	upstreamDesc          string
	backendURL            string // what the upstream_profile tool calls
	storeDesc             string
	dev                   *upstreamtest.Provider // nil unless -upstream dev
	as                    *upstream.Server
	store                 upstream.Store
	rdb                   *redis.Client // nil unless -redis-addr
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
	a.backendURL = o.backend
	switch o.upstream {
	case "dev":
		a.dev = upstreamtest.NewProvider(nil, upstreamtest.Config{Subject: "alice"})
		up = a.dev.OIDC("dev")
		up.DisplayName = "the development provider (logs in alice)"
		a.upstreamDesc = "in-process development OpenID provider at " + a.dev.URL() + " (logs in alice without asking)"
		if a.backendURL == "" {
			// Its userinfo endpoint answers only the provider's own access
			// tokens: an MCP access token gets 401.
			a.backendURL = a.dev.URL() + "/userinfo"
		}
	case "oidc":
		up = upstream.Provider{Name: "oidc", Type: upstream.OIDC, Issuer: o.upstreamIssuer,
			ClientID: o.upstreamClientID, ClientSecret: o.upstreamSecret, Scopes: []string{"openid", "profile"}}
		a.upstreamDesc = "OpenID provider " + o.upstreamIssuer
		if a.backendURL == "" {
			if a.backendURL, err = userinfoEndpoint(o.upstreamIssuer); err != nil {
				return nil, err
			}
		}
	case "github":
		up = upstream.Provider{Name: "github", DisplayName: "GitHub", Type: upstream.OAuth2,
			AuthURL: "https://github.com/login/oauth/authorize", TokenURL: "https://github.com/login/oauth/access_token",
			UserinfoURL: "https://api.github.com/user", ClientID: o.upstreamClientID, ClientSecret: o.upstreamSecret,
			Scopes: []string{"read:user"}}
		a.upstreamDesc = "GitHub"
		if a.backendURL == "" {
			a.backendURL = "https://api.github.com/user"
		}
	}
	backend, err := url.Parse(a.backendURL)
	if err != nil || backend.Host == "" {
		return nil, fmt.Errorf("backend URL %q is not absolute", a.backendURL)
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
	a.store, a.storeDesc = upstream.NewMemoryStore(), "in memory (one replica; lost on restart)"
	if o.redisAddr != "" {
		a.rdb = redis.NewClient(&redis.Options{Addr: o.redisAddr, ContextTimeoutEnabled: true})
		a.store, err = redisstore.New(redisstore.Config{Client: a.rdb, Keys: []redisstore.Key{o.redisKey}})
		if err != nil {
			return nil, err
		}
		a.storeDesc = "Redis at " + o.redisAddr + " (values encrypted with $" + redisKeyEnv + ")"
	}
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
	// The tools' backend calls carry the caller's upstream token, and only
	// to the backend's host.
	tr, err := upstream.NewTransport(upstream.TransportConfig{Server: a.as, Hosts: []string{backend.Host}, Logger: logger}, nil)
	if err != nil {
		return nil, err
	}
	md, err := prm.MetadataURL(a.resource)
	if err != nil {
		return nil, err
	}
	// HandleErrors turns a backend call that failed for want of a valid
	// upstream grant into 401 invalid_token (the client logs in again),
	// and a store or upstream outage into 503: the SDK would otherwise
	// answer 200 with a failed tool result.
	handler := upstream.HandleErrors(upstream.ErrorOptions{ResourceMetadataURL: md})(
		mcpHandler(a.store, &http.Client{Transport: tr, Timeout: 30 * time.Second}, a.backendURL))
	protected, err := middleware.Protect(handler, middleware.Config{
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
// whether its upstream session holds a token; upstream_profile calls the
// backend at backendURL as the caller, through backend (whose Transport is
// an upstream.Transport).
func mcpHandler(store upstream.Store, backend *http.Client, backendURL string) http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "mcpauth-embedded-as", Version: "v0.1.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "upstream_profile",
		Description: "Calls the backend API (by default the upstream provider's userinfo endpoint) as the logged-in user, with the user's own upstream access token, and returns its answer."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, profile, error) {
			// ctx is the HTTP request's (the SDK's stateless handler
			// passes it on): it carries the verified caller, which the
			// Transport needs, and HandleErrors' failure slot.
			p, err := callBackend(ctx, backend, backendURL)
			return nil, p, err
		})
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

// profile is the upstream_profile result.
type profile struct {
	Backend string         `json:"backend"` // the URL called
	Status  int            `json:"status"`  // its HTTP status
	User    map[string]any `json:"user"`    // its JSON answer
}

// callBackend GETs backendURL as the caller verified in ctx. The backend
// sees the caller's upstream access token (refreshed first if it expired),
// never the MCP access token.
func callBackend(ctx context.Context, client *http.Client, backendURL string) (profile, error) {
	p := profile{Backend: backendURL}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, backendURL, nil)
	if err != nil {
		return p, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		// An upstream.ErrReauthenticate or ErrUnavailable here has been
		// noted for HandleErrors, which replaces this tool result with
		// 401 or 503.
		return p, fmt.Errorf("calling the backend: %w", err)
	}
	defer resp.Body.Close()
	p.Status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		return p, fmt.Errorf("the backend answered %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&p.User); err != nil {
		return p, fmt.Errorf("the backend's answer is not a JSON object: %w", err)
	}
	return p, nil
}

// userinfoEndpoint discovers the userinfo endpoint of the OpenID provider
// issuer, the default backend with -upstream oidc.
func userinfoEndpoint(issuer string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("discovering the upstream's userinfo endpoint (or set -backend): %w", err)
	}
	defer resp.Body.Close()
	var doc struct {
		Userinfo string `json:"userinfo_endpoint"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc) != nil || doc.Userinfo == "" {
		return "", fmt.Errorf("%s names no userinfo_endpoint (status %d); set -backend", u, resp.StatusCode)
	}
	return doc.Userinfo, nil
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
	if a.rdb != nil {
		a.rdb.Close()
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
	fmt.Fprintf(w, "  redirect URI to register:   %s/callback\n", a.issuer)
	fmt.Fprintf(w, "Sessions and upstream tokens: %s\n\n", a.storeDesc)
	fmt.Fprintf(w, "Try it with any MCP client that supports OAuth, for example:\n\n")
	fmt.Fprintf(w, "  npx @modelcontextprotocol/inspector   # then connect to %s (Streamable HTTP)\n\n", a.resource)
	fmt.Fprintf(w, "The client gets 401, finds this authorization server, registers, and opens a browser:\n")
	fmt.Fprintf(w, "approve the client on the consent page, log in upstream, and call the tools:\n\n")
	fmt.Fprintf(w, "  whoami             the verified caller (subject, client, scopes) and its upstream session\n")
	fmt.Fprintf(w, "  upstream_profile   calls %s as the user, with the user's own upstream\n", a.backendURL)
	fmt.Fprintf(w, "                     access token (refreshed when it expires; never the MCP token), and\n")
	fmt.Fprintf(w, "                     shows the upstream account it answers for. If the upstream grant is\n")
	fmt.Fprintf(w, "                     revoked, the call gets 401 invalid_token and the client logs in again.\n\n")
	fmt.Fprintf(w, "Without a token you get the challenge a client starts from:\n\n  curl -si -X POST %s\n\n", a.resource)
	fmt.Fprintf(w, "Press Ctrl-C to stop.\n")
}
