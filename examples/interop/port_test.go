package interop

import (
	"net"
	"net/http"
	"testing"
)

// TestStartExampleReportsTakenPort checks the other half of the free-port
// race fix: when another process holds the address before the example
// binds it, startExample reports it (so testport.Start tries another port)
// instead of failing the test or waiting for the other process's answers.
func TestStartExampleReportsTakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	addr := ln.Addr().String()
	resource := "http://" + addr + "/mcp"
	if startExample(t, "gosdk", resource, "-issuer", "http://127.0.0.1:1", "-resource", resource, "-addr", addr) {
		t.Fatal("startExample reported the example serving on an address another process holds")
	}
}
