// Command tokenexchange runs an MCP server that calls a backend API on behalf
// of the verified caller with a token of its own, obtained by OAuth 2.0 Token
// Exchange (RFC 8693) at the same identity provider that issued the caller's
// token. It never forwards the caller's token: that token's audience is the
// MCP server (RFC 8707), and the MCP authorization specification forbids
// passing it on ("token passthrough").
//
//	MCP client --token(aud=MCP server)--> MCP server --exchange--> IdP
//	                                      MCP server --token(aud=backend)--> backend API
//
// Three servers run in this process on loopback ports: a development IdP
// (package authn/idptest), the backend API, which accepts only tokens whose
// audience is itself, and the MCP server (official Go SDK) behind
// middleware.Protect, whose "profile" tool calls the backend through a
// tokenexchange.Transport.
//
//	go run ./examples/tokenexchange          # serve and print what to try
//	go run ./examples/tokenexchange -demo    # run a client round trip, then exit
//
// With -issuer the MCP server trusts your own identity provider instead
// (Keycloak, say, with token exchange enabled for the server's client) and
// exchanges tokens at its token endpoint, found by discovery; the backend
// then accepts that issuer's tokens for -audience.
//
// Flags:
//
//	-addr       listen address of the MCP server (default 127.0.0.1:8080; an
//	            ephemeral port with -demo)
//	-demo       run the client round trip and exit (0 on success; embedded IdP only)
//	-issuer     trust this external issuer instead of the embedded IdP
//	-client-id  the MCP server's client at -issuer, which performs the exchange;
//	            its secret is read from MCPAUTH_TOKENEXCHANGE_CLIENT_SECRET
//	-audience   RFC 8693 audience to request for the backend (an IdP's name for
//	            it, e.g. a Keycloak client ID); empty sends the backend's URL as
//	            the resource parameter instead
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
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "tokenexchange:", err)
		os.Exit(1)
	}
}

// secretEnv names the environment variable holding the -client-id secret.
// A secret is never a flag: flags end up in shell history and in ps output.
const secretEnv = "MCPAUTH_TOKENEXCHANGE_CLIENT_SECRET"

// options are the command-line settings.
type options struct {
	addr     string
	demo     bool
	issuer   string // external issuer; empty: the embedded development IdP
	clientID string // the MCP server's client at issuer
	secret   string // its secret, from secretEnv
	audience string // RFC 8693 audience of the exchanged token; empty: resource = the backend URL
}

// parseFlags reads args into options.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("tokenexchange", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "", "listen address of the MCP server (default 127.0.0.1:8080, or an ephemeral port with -demo)")
	fs.BoolVar(&o.demo, "demo", false, "run a client round trip against the server, then exit (embedded IdP only)")
	fs.StringVar(&o.issuer, "issuer", "", "trust this external OAuth issuer instead of the embedded development IdP")
	fs.StringVar(&o.clientID, "client-id", "", "the MCP server's client at -issuer, used for the exchange (secret from $"+secretEnv+")")
	fs.StringVar(&o.audience, "audience", "", "RFC 8693 audience to request for the backend (default: the backend URL as resource)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.issuer != "" {
		if o.demo {
			return o, errors.New("-demo runs against the embedded IdP only; drop -issuer")
		}
		if o.secret = getenv(secretEnv); o.clientID == "" || o.secret == "" {
			return o, fmt.Errorf("-issuer needs -client-id and the client secret in $%s", secretEnv)
		}
	}
	if o.addr == "" {
		o.addr = "127.0.0.1:8080"
		if o.demo {
			o.addr = "127.0.0.1:0"
		}
	}
	return o, nil
}

// run is main without the process: it serves until ctx is done or, with
// -demo, until the round trip has finished. Tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	ex, err := start(o, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return err
	}
	defer ex.close()
	if o.demo {
		return ex.runDemo(ctx, stdout)
	}
	ex.printUsage(stdout)
	<-ctx.Done()
	fmt.Fprintln(stdout, "shutting down")
	return nil
}
