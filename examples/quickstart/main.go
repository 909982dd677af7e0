// Command quickstart runs an MCP server (official Go SDK, streamable HTTP)
// whose every request needs a verified OAuth bearer token, the way the MCP
// authorization specification requires:
//
//   - the server publishes OAuth 2.0 Protected Resource Metadata (RFC 9728)
//     naming the authorization server that issues its tokens (package prm);
//   - a request without a valid token gets 401 with a WWW-Authenticate
//     challenge pointing at that metadata (RFC 6750, RFC 9728 §5.1);
//   - a token is accepted only if it was issued by that authorization server
//     for this server's resource URI (RFC 8707 audience), is unexpired and
//     carries the required scopes (package authn).
//
// By default the authorization server is a throwaway development IdP running
// in the same process (package authn/idptest), so nothing needs to be set up:
//
//	go run ./examples/quickstart                  # serve and print a ready-to-paste curl
//	go run ./examples/quickstart -demo            # full client round trip, then exit
//
// With -issuer the server trusts your own identity provider instead (Okta,
// Entra ID, Keycloak, ...): its signing keys are discovered from the issuer
// (RFC 8414 or OpenID Connect Discovery) and no development token is printed.
//
// Flags:
//
//	-addr       listen address (default 127.0.0.1:8080; an ephemeral port for -demo)
//	-resource   canonical resource URI of this server (default http://ADDR/mcp)
//	-issuer     trust this external issuer instead of the embedded IdP
//	-scopes     comma-separated scopes every request needs
//	-demo       run the client round trip and exit (0 on success)
//	-client-id  client_credentials client for -demo with -issuer; its secret is
//	            read from the MCPAUTH_QUICKSTART_CLIENT_SECRET environment variable
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// secretEnv names the environment variable holding the -client-id secret.
// A secret is never a flag: flags end up in shell history and in ps output.
const secretEnv = "MCPAUTH_QUICKSTART_CLIENT_SECRET"

func main() {
	// Stop on Ctrl-C or SIGTERM: run then shuts the server down gracefully.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp): // -h: usage already printed
	case err != nil:
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	addr     string
	resource string
	issuer   string
	scopes   []string
	demo     bool
	clientID string
	secret   string // from secretEnv, never from a flag
}

// parseFlags reads args into options.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	var scopes string
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "", "listen address (default 127.0.0.1:8080, or an ephemeral loopback port with -demo)")
	fs.StringVar(&o.resource, "resource", "", "canonical resource URI of this MCP server, the audience tokens must carry (default http://ADDR/mcp)")
	fs.StringVar(&o.issuer, "issuer", "", "trust this external OAuth issuer instead of the embedded development IdP")
	fs.StringVar(&scopes, "scopes", "", "comma-separated scopes every request needs")
	fs.BoolVar(&o.demo, "demo", false, "run a client round trip against the server, then exit")
	fs.StringVar(&o.clientID, "client-id", "", "client_credentials client for -demo with -issuer (secret from $"+secretEnv+")")
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
	if o.addr == "" {
		o.addr = "127.0.0.1:8080"
		if o.demo {
			// An ephemeral port, so a demo never collides with a running
			// server and tests can run in parallel.
			o.addr = "127.0.0.1:0"
		}
	}
	o.secret = getenv(secretEnv)
	return o, nil
}

// run is main without the process: it serves until ctx is done, or, with
// -demo, until the round trip has finished. Tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	qs, err := start(o, logger)
	if err != nil {
		return err
	}
	defer qs.close()

	if o.demo {
		return runDemo(ctx, qs.demoParams(o), stdout)
	}
	qs.printUsage(stdout)
	<-ctx.Done()
	fmt.Fprintln(stdout, "shutting down")
	return qs.shutdown(5 * time.Second)
}

// shutdown stops accepting requests, waits up to timeout for the ones in
// flight, then closes the connections still open. (net/http counts a
// connection a client opened but has not used yet — a browser's preconnect,
// an HTTP client's spare dial — as busy for its first five seconds.)
func (qs *quickstart) shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := qs.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = qs.srv.Close()
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
