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
//	-backend            URL the upstream_profile tool calls with the user's upstream token
//	                    (default: the upstream's userinfo endpoint; api.github.com/user for github)
//	-redis-addr         keep sessions in Redis at this address (package upstream/redisstore)
//	                    instead of in memory; needs -signing-key, and an AES-256 key for the
//	                    stored values in $MCPAUTH_REDIS_KEY (32 bytes, base64)
//
// The upstream_profile tool shows the point of the embedded authorization
// server: the tool calls a backend API (by default the upstream's userinfo
// endpoint) through an upstream.Transport, which sends the logged-in user's
// own upstream access token — never the MCP access token — and refreshes it
// when it expires. If the user's upstream grant is gone (revoked at the
// provider), upstream.HandleErrors answers the MCP request with 401
// invalid_token, so the MCP client logs the user in again; if the store is
// down, with 503 and Retry-After.
//
// Several replicas: run each with the same -redis-addr, $MCPAUTH_REDIS_KEY,
// -signing-key and -issuer (the load balancer's URL), with a real upstream
// (-upstream oidc or github; the dev provider lives inside one process).
// A login started on one replica finishes on another, and an expired
// upstream token is refreshed once whichever replicas need it.
//
// Client ID Metadata Documents are fetched over https only; for a document
// server with a private certificate authority set SSL_CERT_FILE, and allow
// its network with -cimd-allow.
//
// The upstream's redirect URI to register is ISSUER/callback.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mcpauth-go/mcpauth/upstream/redisstore"
)

// secretEnv names the environment variable holding the upstream client
// secret. A secret is never a flag: flags end up in shell history and ps.
const secretEnv = "MCPAUTH_UPSTREAM_CLIENT_SECRET"

// redisKeyEnv names the environment variable holding the key that encrypts
// the values stored in Redis (-redis-addr): 32 bytes, base64.
const redisKeyEnv = "MCPAUTH_REDIS_KEY"

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
	backend                string
	redisAddr              string
	redisKey               redisstore.Key // from redisKeyEnv
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
	fs.StringVar(&o.backend, "backend", "", "URL the upstream_profile tool calls with the user's upstream token (default: the upstream's userinfo endpoint)")
	fs.StringVar(&o.redisAddr, "redis-addr", "", "keep sessions in Redis at this address (key in $"+redisKeyEnv+"; needs -signing-key)")
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
	if o.redisAddr != "" {
		if o.signingKey == "" {
			return o, errors.New("-redis-addr needs -signing-key: every replica must sign with the same key")
		}
		secret, err := decodeKey(getenv(redisKeyEnv))
		if err != nil {
			return o, fmt.Errorf("-redis-addr: $%s: %w", redisKeyEnv, err)
		}
		o.redisKey = redisstore.Key{ID: "k1", Secret: secret}
	}
	return o, nil
}

// decodeKey decodes a base64 (standard or URL alphabet, padded or not)
// 32-byte key. The error never quotes the value.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	if s == "" {
		return nil, errors.New("not set (32 random bytes, base64: openssl rand -base64 32)")
	}
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawURLEncoding.DecodeString(s)
	}
	if err != nil || len(b) != 32 {
		return nil, errors.New("not 32 bytes in base64 (openssl rand -base64 32)")
	}
	return b, nil
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
	// In-flight requests get five seconds; connections still open then
	// (including one a client opened but never used, which net/http counts
	// as busy for its first five seconds) are closed.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = a.srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = a.srv.Close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
