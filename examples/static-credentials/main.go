// Command static-credentials runs an MCP server whose tools call a backend
// API with a static API key read from a file — the way a Kubernetes secret
// volume or a secret manager's agent delivers it — and that picks up a
// rotated key without a restart. The key does not depend on the caller: the
// caller is verified at the MCP server (OAuth, as every MCP server must), and
// the caller's token is never forwarded (MCP forbids token passthrough).
//
//	MCP client --token(aud=MCP server)--> MCP server --X-API-Key: <key from file>--> backend API
//
// Everything runs in this process on loopback ports: a development IdP
// (package authn/idptest), the backend API, which accepts the keys it has
// issued and offers two admin endpoints standing in for your secret
// manager (rotate: issue a new key and write it to the file; revoke the old
// ones), and the MCP server (official Go SDK) behind middleware.Protect,
// whose "backend_status" tool calls the backend through a
// credentials.Transport reading credentials.File.
//
//	go run ./examples/static-credentials          # serve and print what to try
//	go run ./examples/static-credentials -demo    # rotate once during a client session, then exit
//
// Flags:
//
//	-addr      listen address of the MCP server (default 127.0.0.1:8080;
//	           an ephemeral port with -demo)
//	-key-file  the API key file (default: a new file in a temporary
//	           directory, removed on exit). An existing file's key is the
//	           backend's first key; rotations overwrite the file.
//	-issuer    trust this external issuer for inbound tokens instead of the
//	           embedded IdP (no -demo then; the printed text says what token to get)
//	-demo      run the client round trip and exit (0 on success)
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
	"time"

	"github.com/mcpauth-go/mcpauth/credentials"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "static-credentials:", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	addr          string
	keyFile       string
	issuer        string // external issuer; empty: the embedded development IdP
	demo          bool
	checkInterval time.Duration // between checks of the key file; 0: credentials.DefaultFileCheckInterval (tests shorten it)
}

// run is main without the process: it serves until ctx is done or, with
// -demo, until the round trip has finished. Tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("static-credentials", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "", "listen address of the MCP server (default 127.0.0.1:8080, or an ephemeral port with -demo)")
	fs.StringVar(&o.keyFile, "key-file", "", "API key file (default: a new file in a temporary directory)")
	fs.StringVar(&o.issuer, "issuer", "", "trust this external OAuth issuer instead of the embedded development IdP")
	fs.BoolVar(&o.demo, "demo", false, "run a client round trip with one key rotation, then exit (embedded IdP only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.demo && o.issuer != "" {
		return errors.New("-demo runs against the embedded IdP only; drop -issuer")
	}
	if o.addr == "" {
		o.addr = "127.0.0.1:8080"
		if o.demo {
			o.addr = "127.0.0.1:0"
		}
	}
	ex, err := start(o, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return err
	}
	defer ex.close()
	if o.demo {
		return ex.runDemo(ctx, stdout)
	}
	ex.printUsage(stdout, credentials.DefaultFileCheckInterval)
	<-ctx.Done()
	fmt.Fprintln(stdout, "shutting down")
	return nil
}
