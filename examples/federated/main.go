// Command federated runs an MCP server that calls a Google-style cloud API on
// behalf of the verified caller through workload identity federation: it
// exchanges the caller's token (issued by your own identity provider) at a
// Security Token Service (RFC 8693) that maps the foreign identity to one of
// its own — principal://iam.googleapis.com/.../subject/<sub> — and sends the
// federated token the STS issues. The caller's token never leaves the MCP
// server except to the STS (MCP forbids token passthrough).
//
//	MCP client --token(iss=your IdP)--> MCP server --exchange--> STS (maps sub, checks a condition)
//	                                    MCP server --federated token--> cloud API
//
// Everything runs in this process on loopback ports: a development IdP
// (package authn/idptest), a fake of Google's STS and of a Google API that
// behave like the real ones on the wire (form-encoded RFC 8693 request, no
// client authentication, audience naming the workload identity pool
// provider, opaque access token back), and the MCP server (official Go SDK)
// behind middleware.Protect, whose "cloud_whoami" tool calls the API through
// a transport built from the Google STS preset (package tokenexchange/google).
//
// Against the real Google STS, drop the TokenURL override in server.go and
// configure the pool provider to trust your IdP's issuer, with the MCP
// server's resource URI among its allowed audiences.
//
//	go run ./examples/federated          # serve and print what to try
//	go run ./examples/federated -demo    # run a client round trip, then exit
//
// Flags:
//
//	-addr    listen address of the MCP server (default 127.0.0.1:8080; an
//	         ephemeral port with -demo)
//	-demo    run the client round trip and exit (0 on success)
//	-issuer  trust this external issuer (your IdP) instead of the embedded one,
//	         both at the MCP server and at the fake STS's pool provider (no -demo
//	         then; tokens need a groups claim holding gcp-users to be federated)
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
		fmt.Fprintln(os.Stderr, "federated:", err)
		os.Exit(1)
	}
}

// run is main without the process: it serves until ctx is done or, with
// -demo, until the round trip has finished. Tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("federated", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "listen address of the MCP server (default 127.0.0.1:8080, or an ephemeral port with -demo)")
	demo := fs.Bool("demo", false, "run a client round trip against the server, then exit (embedded IdP only)")
	issuer := fs.String("issuer", "", "trust this external OAuth issuer instead of the embedded development IdP")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *demo && *issuer != "" {
		return errors.New("-demo runs against the embedded IdP only; drop -issuer")
	}
	if *addr == "" {
		*addr = "127.0.0.1:8080"
		if *demo {
			*addr = "127.0.0.1:0"
		}
	}
	ex, err := start(*addr, *issuer, slog.New(slog.NewTextHandler(stderr, nil)))
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
