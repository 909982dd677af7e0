// Package testport picks loopback ports for tests that must tell a child
// process (an example binary, redis-server, a Node client) which port to
// listen on before it starts.
//
// Asking the kernel for port 0, closing the listener and passing the number
// on races with every outbound connection on the machine: the kernel hands
// ports from the same ephemeral range (ip_local_port_range, 32768–60999 by
// default on Linux) to connect(), so a browser, a Node process or another
// test's HTTP client may hold that port as its local end by the time the
// child binds it ("address already in use"). Free picks below the ephemeral
// range instead, where the kernel never assigns a port on its own: only a
// process that chooses the same number explicitly can take it. Callers
// still retry a start that fails to bind.
package testport

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// lowest is the smallest port Free picks: above the registered ports most
// services use by default (Redis 6379, 8080, 9000…).
const lowest = 20000

// Free returns a port on 127.0.0.1 nothing listens on now, outside the
// kernel's ephemeral range when that range leaves room below it, and
// otherwise one the kernel chose.
func Free() (int, error) {
	low := ephemeralLow()
	if low-lowest >= 1000 {
		for range 100 {
			p := lowest + rand.IntN(low-lowest)
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				continue // taken: try another
			}
			ln.Close()
			return p, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Addr returns "127.0.0.1:<port>" for a port from [Free].
func Addr() (string, error) {
	p, err := Free()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// ephemeralLow is the first port of the kernel's ephemeral range; 32768,
// Linux's default and below the IANA dynamic range (49152) other systems
// use, when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 {
		return 32768
	}
	return n
}

// Start calls start with free loopback addresses ([Addr]) until start
// reports it bound one (true); start returns false when its address was
// taken before it could bind it (see [InUse]). After three taken
// addresses it fails tb.
func Start(tb testing.TB, start func(addr string) bool) {
	tb.Helper()
	for range 3 {
		addr, err := Addr()
		if err != nil {
			tb.Fatal(err)
		}
		if start(addr) {
			return
		}
		tb.Logf("%s was taken before it was bound; trying another port", addr)
	}
	tb.Fatal("three free ports were taken before they were bound")
}

// InUse reports whether a child's output says its listen failed because
// the port was taken (Go: "address already in use"; Redis and Node:
// "Address already in use", EADDRINUSE).
func InUse(output string) bool {
	return strings.Contains(output, "address already in use") ||
		strings.Contains(output, "Address already in use") || strings.Contains(output, "EADDRINUSE")
}
