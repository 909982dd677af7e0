// Command embedded-as runs an MCP server (official Go SDK, streamable HTTP)
// together with its own OAuth 2.1 authorization server (package upstream)
// that logs users in at an upstream identity provider:
//
//   - the MCP endpoint needs a bearer token issued by the embedded
//     authorization server for this resource (packages prm and authn);
//   - MCP clients discover the authorization server through the Protected
//     Resource Metadata, register (Client ID Metadata Document, or dynamic
//     registration for older clients), and log in with PKCE;
//   - the authorization server asks the user to approve the client, sends
//     them to the upstream provider, keeps the upstream tokens under the
//     session id (tsid) and issues its own short-lived JWT.
//
// By default the upstream is a throwaway OpenID provider running in the same
// process (package upstream/upstreamtest) that logs in "alice" without
// asking anything, so nothing needs to be set up:
//
//	go run ./examples/embedded-as
//
// prints the URLs and what to try. Everything listens on one loopback port:
// the MCP endpoint at /mcp, its metadata at
// /.well-known/oauth-protected-resource/mcp, and the authorization server
// (issuer = http://ADDR) at /authorize, /token, /register, /revoke, /jwks,
// /consent, /callback and the well-known metadata documents.
//
// Flags:
//
//	-addr               listen address (default 127.0.0.1:8090)
//	-issuer             issuer URL of the embedded authorization server (default http://ADDR)
//	-resource           canonical resource URI of the MCP server (default http://ADDR/mcp)
//	-scopes             comma-separated scopes: supported, granted by default and required (default mcp:tools)
//	-upstream           dev (default: in-process fake provider), oidc, or github
//	-upstream-issuer    issuer of the OIDC upstream (with -upstream oidc)
//	-upstream-client-id this server's client_id at the upstream (oidc, github);
//	                    its secret is read from $MCPAUTH_UPSTREAM_CLIENT_SECRET
//	-signing-key        PEM file with the token signing key (default: a generated development key)
//	-cimd-allow         comma-separated CIDRs from which Client ID Metadata Documents may be
//	                    fetched although private or loopback (default none)
//	-no-dcr             turn off dynamic client registration
//	-client-id          pre-register a public client (PKCE, no secret) with this client_id,
//	-client-redirect    and these comma-separated redirect URIs (a loopback redirect
//	                    matches on any port), for clients that cannot register
//
// Client ID Metadata Documents are fetched over https only; for a document
// server with a private certificate authority set SSL_CERT_FILE, and allow
// its network with -cimd-allow.
//
// The upstream's redirect URI to register is ISSUER/callback.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// secretEnv names the environment variable holding the upstream client
// secret. A secret is never a flag: flags end up in shell history and ps.
const secretEnv = "MCPAUTH_UPSTREAM_CLIENT_SECRET"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "embedded-as:", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	addr, issuer, resource string
	scopes                 []string
	upstream               string
	upstreamIssuer         string
	upstreamClientID       string
	upstreamSecret         string // from secretEnv
	signingKey             string
	cimdAllow              []netip.Prefix
	noDCR                  bool
	clientID               string
	clientRedirects        []string
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	var scopes, cimd, redirects string
	fs := flag.NewFlagSet("embedded-as", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8090", "listen address")
	fs.StringVar(&o.issuer, "issuer", "", "issuer URL of the embedded authorization server (default http://ADDR)")
	fs.StringVar(&o.resource, "resource", "", "canonical resource URI of the MCP server (default http://ADDR/mcp)")
	fs.StringVar(&scopes, "scopes", "mcp:tools", "comma-separated scopes (supported, default and required)")
	fs.StringVar(&o.upstream, "upstream", "dev", "upstream identity provider: dev, oidc or github")
	fs.StringVar(&o.upstreamIssuer, "upstream-issuer", "", "issuer of the OIDC upstream (-upstream oidc)")
	fs.StringVar(&o.upstreamClientID, "upstream-client-id", "", "client_id at the upstream (secret from $"+secretEnv+")")
	fs.StringVar(&o.signingKey, "signing-key", "", "PEM file with the token signing key (default: generated development key)")
	fs.StringVar(&cimd, "cimd-allow", "", "comma-separated CIDRs Client ID Metadata Documents may be fetched from although private")
	fs.BoolVar(&o.noDCR, "no-dcr", false, "turn off dynamic client registration")
	fs.StringVar(&o.clientID, "client-id", "", "pre-register a public client with this client_id")
	fs.StringVar(&redirects, "client-redirect", "", "comma-separated redirect URIs of -client-id")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for s := range strings.SplitSeq(scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.scopes = append(o.scopes, s)
		}
	}
	for s := range strings.SplitSeq(cimd, ",") {
		if s = strings.TrimSpace(s); s != "" {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return o, fmt.Errorf("-cimd-allow: %w", err)
			}
			o.cimdAllow = append(o.cimdAllow, p)
		}
	}
	for s := range strings.SplitSeq(redirects, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.clientRedirects = append(o.clientRedirects, s)
		}
	}
	if (o.clientID == "") != (len(o.clientRedirects) == 0) {
		return o, errors.New("-client-id and -client-redirect go together")
	}
	switch o.upstream {
	case "dev":
	case "oidc":
		if o.upstreamIssuer == "" || o.upstreamClientID == "" {
			return o, errors.New("-upstream oidc needs -upstream-issuer and -upstream-client-id")
		}
	case "github":
		if o.upstreamClientID == "" {
			return o, errors.New("-upstream github needs -upstream-client-id")
		}
	default:
		return o, fmt.Errorf("-upstream must be dev, oidc or github, not %q", o.upstream)
	}
	o.upstreamSecret = getenv(secretEnv)
	return o, nil
}

// run is main without the process; tests call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	a, err := start(o, logger)
	if err != nil {
		return err
	}
	defer a.close()
	a.printUsage(stdout)
	<-ctx.Done()
	fmt.Fprintln(stdout, "shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return a.srv.Shutdown(sctx)
}
