package testport

import (
	"net"
	"strconv"
	"testing"
)

// TestFreeBelowEphemeralRange checks that Free returns a port that can be
// bound and, when the kernel's ephemeral range leaves room, lies below it,
// where connect() never picks a local port.
func TestFreeBelowEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	for range 20 {
		p, err := Free()
		if err != nil {
			t.Fatal(err)
		}
		if low-lowest >= 1000 && (p < lowest || p >= low) {
			t.Fatalf("Free() = %d; want a port in [%d, %d)", p, lowest, low)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("listen on the port Free returned: %v", err)
		}
		ln.Close()
	}
}

func TestInUse(t *testing.T) {
	for msg, want := range map[string]bool{
		"gosdk: listen tcp 127.0.0.1:35325: bind: address already in use":                                      true,
		"# Warning: Could not create server TCP listening socket 127.0.0.1:6379: bind: Address already in use": true,
		"Error: listen EADDRINUSE: address already in use 127.0.0.1:3000":                                      true,
		"gosdk: listen tcp 127.0.0.1:1: bind: permission denied":                                               false,
	} {
		if got := InUse(msg); got != want {
			t.Errorf("InUse(%q) = %v; want %v", msg, got, want)
		}
	}
}
