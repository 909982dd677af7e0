// Command gosdk runs an MCP server on the official MCP Go SDK (v1.8.0,
// Streamable HTTP) protected the way a production server would be:
//
//   - OAuth 2.0 Protected Resource Metadata (RFC 9728) naming the trusted
//     authorization server (package prm);
//   - bearer token verification: issuer, signature, RFC 8707 audience,
//     expiry (package authn), with RFC 6750 / RFC 9728 challenges;
//   - Cedar authorization of every tools/call, and tools/list filtered to
//     the tools the caller may call (package authz);
//   - a tool that needs an extra scope: calling it without that scope gets
//     403 insufficient_scope naming it, so the client can ask for it
//     (step-up authorization);
//   - the SDK identity adapter (module middleware/gosdk), so that in the
//     SDK's stateful mode a session belongs to the user who opened it and
//     another user's token on it gets 403.
//
// The policy set (see policies below) lets every authenticated user call
// whoami and echo, lets them call write_note once their token carries the
// scope notes:write, and keeps admin_reset for members of the "admins"
// group (a "groups" claim): an ordinary user does not even see it in
// tools/list. write_note is listed to every user: authz keeps in a filtered
// list a tool denied only for a missing scope, so a client that calls only
// listed tools (the MCP Inspector does) can call it, get 403
// insufficient_scope naming notes:write, and step up.
//
// By default the authorization server is a throwaway development IdP in the
// same process (package authn/idptest), and development tokens are printed:
//
//	go run ./examples/gosdk                   # stateful, on 127.0.0.1:8080
//	go run ./examples/gosdk -stateless        # the SDK's stateless mode
//
// To trust a real issuer instead (Okta, Entra ID, Keycloak, node
// oidc-provider, ...), give -issuer; tokens must then carry the -resource
// URI in aud (RFC 8707 resource indicators):
//
//	go run ./examples/gosdk -issuer http://127.0.0.1:3000 \
//	    -resource http://127.0.0.1:8080/mcp -addr 127.0.0.1:8080
//
// The first line on standard output, once the server accepts connections,
// is always
//
//	READY url=<MCP endpoint URL> resource=<resource URI> metadata=<PRM URL> issuer=<issuer> mode=<stateful|stateless>
//
// (single-space separated key=value pairs, values without spaces), so
// scripts and tests can start it with -addr 127.0.0.1:0 and read the port
// from it. Logs go to standard error. SIGINT or SIGTERM stop it.
//
// Flags:
//
//	-addr            listen address (default 127.0.0.1:8080; port 0 picks a free one)
//	-resource        canonical resource URI, the audience tokens must carry (default http://ADDR/mcp)
//	-issuer          trust this external issuer instead of the embedded development IdP
//	-stateless       use the SDK's stateless mode (default: stateful sessions)
//	-scopes          comma-separated scopes every request needs (default none)
//	-allowed-origins comma-separated browser origins allowed besides the resource's own
//	-introspection-client-id
//	                 also accept opaque tokens, checked at the issuer's RFC 7662
//	                 introspection endpoint (discovered) as this client; its secret
//	                 is read from the MCPAUTH_INTROSPECTION_CLIENT_SECRET environment
//	                 variable (empty: a public client)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp): // -h: usage already printed
	case err != nil:
		fmt.Fprintln(os.Stderr, "gosdk:", err)
		os.Exit(1)
	}
}

// secretEnv names the environment variable holding the introspection
// client's secret. A secret is never a flag: flags end up in shell history
// and in ps output.
const secretEnv = "MCPAUTH_INTROSPECTION_CLIENT_SECRET"

// options are the command-line settings.
type options struct {
	addr           string
	resource       string
	issuer         string
	stateless      bool
	scopes         []string
	allowedOrigins []string

	introspectionClientID string
	introspectionSecret   string // from secretEnv, never from a flag
}

// Format prints o without the introspection secret, whatever the verb.
func (o options) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "options{addr:%s resource:%s issuer:%s stateless:%t}", o.addr, o.resource, o.issuer, o.stateless)
}

// parseFlags reads args into options.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	var scopes, origins string
	fs := flag.NewFlagSet("gosdk", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address; port 0 picks a free port (see the READY line)")
	fs.StringVar(&o.resource, "resource", "", "canonical resource URI of this MCP server, the audience tokens must carry (default http://ADDR/mcp)")
	fs.StringVar(&o.issuer, "issuer", "", "trust this external OAuth issuer instead of the embedded development IdP")
	fs.BoolVar(&o.stateless, "stateless", false, "use the SDK's stateless mode instead of stateful sessions")
	fs.StringVar(&scopes, "scopes", "", "comma-separated scopes every request needs")
	fs.StringVar(&origins, "allowed-origins", "", "comma-separated browser origins (scheme://host[:port]) allowed besides the resource's own")
	fs.StringVar(&o.introspectionClientID, "introspection-client-id", "",
		"also accept opaque tokens through the issuer's introspection endpoint, as this client (secret from $"+secretEnv+")")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.scopes = splitList(scopes)
	o.allowedOrigins = splitList(origins)
	if o.introspectionClientID != "" {
		o.introspectionSecret = getenv(secretEnv)
	}
	return o, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// run is main without the process: it serves until ctx is done. Tests call
// it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	s, err := start(o, logger)
	if err != nil {
		return err
	}
	defer s.close()
	s.printUsage(stdout)
	<-ctx.Done()
	fmt.Fprintln(stdout, "shutting down")
	return s.shutdown(5 * time.Second)
}
