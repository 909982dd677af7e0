package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/prm"
	"github.com/mcpauth-go/mcpauth/tokenexchange"
	"github.com/mcpauth-go/mcpauth/tokenexchange/google"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// example is everything running: your IdP, the fake Google, the MCP server.
type example struct {
	issuer   string          // your IdP: the one issuer trusted
	idp      *idptest.Server // the embedded IdP; nil with -issuer
	google   *fakeGoogle
	resource string // the MCP server's resource URI: the audience of inbound tokens
	verifier *authn.Verifier
	mcpSrv   *http.Server
}

// start runs the servers; the MCP server listens on addr and trusts issuer,
// or the embedded IdP if issuer is empty. The caller must call close.
func start(addr, issuer string, logger *slog.Logger) (_ *example, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("listening on %s: this example serves plain http and must stay on loopback", ln.Addr())
	}
	ex := &example{resource: "http://" + ln.Addr().String() + "/mcp"}
	defer func() {
		if err != nil {
			ln.Close()
			ex.close()
		}
	}()
	ex.issuer = issuer
	if ex.issuer == "" {
		ex.idp = idptest.NewServer(nil, idptest.Config{})
		ex.issuer = ex.idp.Issuer()
	}
	// The pool provider trusts your IdP for tokens issued to this MCP
	// server: its allowed audiences name the server's resource URI.
	if ex.google, err = startFakeGoogle(ex.issuer, []string{ex.resource}, logger); err != nil {
		return nil, err
	}
	ex.verifier, err = authn.NewVerifier(authn.Config{
		Issuer:   ex.issuer,
		Audience: []string{ex.resource},
		Logger:   logger,
	})
	if err != nil {
		return nil, err
	}

	// The Google STS preset: audience naming the pool provider, subject
	// token type jwt, scope cloud-platform, no client authentication.
	cfg := google.STS(google.STSConfig{
		ProjectNumber: projectNumber,
		PoolID:        poolID,
		ProviderID:    providerID,
	})
	cfg.TokenURL = ex.google.tokenURL() // the local fake; leave the preset's for the real STS
	cfg.Logger = logger
	xt, err := tokenexchange.NewTransport(cfg, nil)
	if err != nil {
		return nil, err
	}
	protected, err := middleware.Protect(mcpHandler(ex.google.url, &http.Client{Transport: xt, Timeout: 10 * time.Second}),
		middleware.Config{
			Metadata: prm.Metadata{
				Resource:             ex.resource,
				AuthorizationServers: []string{ex.issuer},
				ResourceName:         "mcpauth federated identity example",
			},
			Verifier: ex.verifier,
			Authn:    authn.Options{Logger: logger},
		})
	if err != nil {
		return nil, err
	}
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
	if ex.google != nil {
		ex.google.close()
	}
	if ex.idp != nil {
		ex.idp.Close()
	}
}

// mcpHandler is the MCP server: one tool, "cloud_whoami", that asks the
// cloud API which principal the caller is mapped to, through hc (whose
// transport exchanges the caller's token at the STS).
func mcpHandler(apiURL string, hc *http.Client) http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "mcpauth-federated", Version: "v0.1.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "cloud_whoami", Description: "Asks the cloud API which federated principal the caller is."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, whoami, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/v1/whoami", nil)
			if err != nil {
				return nil, whoami{}, err
			}
			resp, err := hc.Do(req)
			if err != nil {
				// An STS refusal is a *tokenexchange.Error with the RFC 6749
				// code and a sanitized description; the URL holds no token.
				return nil, whoami{}, fmt.Errorf("cloud API: %w", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return nil, whoami{}, fmt.Errorf("cloud API: %s", resp.Status)
			}
			var w whoami
			if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&w); err != nil {
				return nil, whoami{}, fmt.Errorf("cloud API: %w", err)
			}
			return nil, w, nil
		})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
}

// userToken is a token your IdP would issue to sub after a login, for this
// MCP server, with the given groups.
func (ex *example) userToken(sub string, groups ...string) string {
	return ex.idp.Token(map[string]any{"sub": sub, "aud": ex.resource, "groups": groups})
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
		fmt.Fprintf(w, "Your identity provider:      %s (embedded development IdP, keys die with this process)\n", ex.issuer)
	} else {
		fmt.Fprintf(w, "Your identity provider:      %s\n", ex.issuer)
	}
	fmt.Fprintf(w, "Fake Google STS:             %s (provider %s, condition: group %s)\n", ex.google.tokenURL(), ex.google.provider, requiredGroup)
	fmt.Fprintf(w, "Fake Google API:             %s/v1/whoami\n\n", ex.google.url)
	if ex.idp != nil {
		// Printing tokens is acceptable only here: they are signed by a key
		// made for this process and trusted by nothing else.
		fmt.Fprintf(w, "THROWAWAY DEVELOPMENT TOKENS (valid 1h, useless elsewhere):\n\n")
		fmt.Fprintf(w, "  TOKEN=%s   # sub=dev-user, groups=[%s]\n", shellQuote(ex.userToken("dev-user", requiredGroup)), requiredGroup)
		fmt.Fprintf(w, "  OTHER=%s   # sub=contractor, groups=[contractors]: the STS's condition refuses it\n\n", shellQuote(ex.userToken("contractor", "contractors")))
	} else {
		fmt.Fprintf(w, "Get an access token from %s issued for the resource %s (aud = that URI, RFC 8707)\n", ex.issuer, ex.resource)
		fmt.Fprintf(w, "whose groups claim holds %s, then:\n\n  TOKEN=...your access token...\n\n", requiredGroup)
	}
	fmt.Fprintf(w, "Call the cloud_whoami tool; the server exchanges your token at the STS and the API names the mapped principal:\n\n")
	fmt.Fprintf(w, "  curl -sS %s \\\n", shellQuote(ex.resource))
	fmt.Fprintf(w, "    -H \"Authorization: Bearer $TOKEN\" \\\n")
	fmt.Fprintf(w, "    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\\n")
	fmt.Fprintf(w, "    -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"cloud_whoami\",\"arguments\":{}}}'\n\n")
	fmt.Fprintf(w, "A token without that group (try $OTHER with the embedded IdP) gets the STS's invalid_grant.\n\nPress Ctrl-C to stop.\n")
}
