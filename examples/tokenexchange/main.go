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
// Flags:
//
//	-addr  listen address of the MCP server (default 127.0.0.1:8080; an
//	       ephemeral port with -demo)
//	-demo  run the client round trip and exit (0 on success)
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
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "tokenexchange:", err)
		os.Exit(1)
	}
}

// run is main without the process: it serves until ctx is done or, with
// -demo, until the round trip has finished. Tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tokenexchange", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "listen address of the MCP server (default 127.0.0.1:8080, or an ephemeral port with -demo)")
	demo := fs.Bool("demo", false, "run a client round trip against the server, then exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *addr == "" {
		*addr = "127.0.0.1:8080"
		if *demo {
			*addr = "127.0.0.1:0"
		}
	}
	ex, err := start(*addr, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return err
	}
	defer ex.close()
	if *demo {
		return ex.runDemo(ctx, stdout)
	}
	ex.printUsage(stdout)
	<-ctx.Done()
	fmt.Fprintln(stdout, "shutting down")
	return nil
}
