package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

// syncBuffer is a bytes.Buffer safe for the servers' goroutines to log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemo runs `go run ./examples/static-credentials -demo` in process,
// end to end over loopback, through one rotation.
func TestDemo(t *testing.T) {
	t.Parallel()
	var out, errOut syncBuffer
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := run(ctx, []string{"-demo"}, &out, &errOut); err != nil {
		t.Fatalf("demo failed: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"received key-1", "the backend received key-2", "revoked [key-1]", "demo OK"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	if regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.`).MatchString(out.String() + errOut.String()) {
		t.Error("output contains a token")
	}
}

func startTest(t *testing.T, o options) *example {
	t.Helper()
	o.addr = "127.0.0.1:0"
	ex, err := start(o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ex.close)
	return ex
}

// callStatus calls backend_status with a fresh token for the MCP server and
// returns the key id the backend saw, or the tool's error text.
func callStatus(t *testing.T, ex *example) (keyID, toolErr string) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"backend_status","arguments":{}}}`
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, ex.resource, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+ex.idp.Token(map[string]any{"sub": "alice", "aud": ex.resource}))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("MCP server: %s", resp.Status)
	}
	var rpc struct {
		Result struct {
			IsError           bool                    `json:"isError"`
			Content           []struct{ Text string } `json:"content"`
			StructuredContent status                  `json:"structuredContent"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rpc); err != nil {
		t.Fatal(err)
	}
	if rpc.Result.IsError {
		var s []string
		for _, c := range rpc.Result.Content {
			s = append(s, c.Text)
		}
		return "", strings.Join(s, " ")
	}
	return rpc.Result.StructuredContent.KeyID, ""
}

// TestRotation rotates the key file under a running server: the backend
// sees the new key within a few check intervals, and once the old key is
// revoked calls keep working. The inbound token never reaches the backend.
func TestRotation(t *testing.T) {
	t.Parallel()
	ex := startTest(t, options{checkInterval: 20 * time.Millisecond})
	if id, e := callStatus(t, ex); id != "key-1" {
		t.Fatalf("first call: key %q, error %q; want key-1", id, e)
	}
	newID, err := ex.backend.rotate()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		id, e := callStatus(t, ex)
		if e != "" {
			t.Fatalf("call during rotation failed: %s", e)
		}
		if id == newID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backend still sees %s 10s after the rotation", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ex.backend.revokeOld()
	if id, e := callStatus(t, ex); id != newID {
		t.Fatalf("after revoking the old key: key %q, error %q; want %s", id, e, newID)
	}
	if _, n := ex.backend.seen(); n != 0 {
		t.Errorf("the backend got %d requests with an Authorization header (token passthrough)", n)
	}
}

// TestRevokedKeyRefused shows the backend really checks the key: with the
// file not re-read yet (long check interval), revoking the key the server
// still holds makes the tool fail with the backend's 401.
func TestRevokedKeyRefused(t *testing.T) {
	t.Parallel()
	ex := startTest(t, options{checkInterval: time.Hour})
	if id, _ := callStatus(t, ex); id != "key-1" {
		t.Fatalf("first call: key %q, want key-1", id)
	}
	if _, err := ex.backend.rotate(); err != nil {
		t.Fatal(err)
	}
	ex.backend.revokeOld()
	if id, e := callStatus(t, ex); id != "" || !strings.Contains(e, "401") {
		t.Fatalf("with a revoked key: key %q, error %q; want a 401 tool error", id, e)
	}
}

// TestExistingKeyFile: with -key-file, the file's key is key-1, a rotation
// overwrites the file, and the usage text does not print the key.
func TestExistingKeyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "key")
	const key = "existing-key-0123456789abcdef"
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ex := startTest(t, options{keyFile: path, checkInterval: 20 * time.Millisecond})
	if id, e := callStatus(t, ex); id != "key-1" {
		t.Fatalf("key %q, error %q; want key-1", id, e)
	}
	var out bytes.Buffer
	ex.printUsage(&out, time.Second)
	if strings.Contains(out.String(), key) || !strings.Contains(out.String(), path) {
		t.Errorf("usage prints the key or lacks the key file:\n%s", out.String())
	}
	if _, err := ex.backend.rotate(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) == key {
		t.Fatalf("the key file was not rotated (err %v)", err)
	}
}

// TestAdminEndpoints drives the rotation the way the printed instructions
// do, over HTTP: rotate, wait for the server to send the new key, revoke
// the old one.
func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	ex := startTest(t, options{checkInterval: 20 * time.Millisecond})
	admin := strings.TrimSuffix(ex.backend.url, "/api") + "/admin"
	post := func(path string) string {
		t.Helper()
		resp, err := http.Post(admin+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %s: %s", path, resp.Status, b)
		}
		return string(b)
	}
	if out := post("/rotate"); !strings.Contains(out, "issued key-2") {
		t.Fatalf("rotate answered %q", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for id, _ := callStatus(t, ex); id != "key-2"; id, _ = callStatus(t, ex) {
		if time.Now().After(deadline) {
			t.Fatalf("the backend still sees %q 10s after the rotation", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out := post("/revoke-old"); !strings.Contains(out, "[key-1]") {
		t.Fatalf("revoke-old answered %q", out)
	}
	if id, e := callStatus(t, ex); id != "key-2" {
		t.Fatalf("after revoke-old: key %q, error %q", id, e)
	}
}

// TestExternalIssuer: with -issuer, the server trusts that issuer's tokens
// for its resource (and not the embedded IdP, which does not run), and the
// instructions print no token.
func TestExternalIssuer(t *testing.T) {
	t.Parallel()
	ext := idptest.NewServer(t, idptest.Config{})
	ex := startTest(t, options{issuer: ext.Issuer()})
	if ex.idp != nil {
		t.Fatal("the embedded IdP runs with -issuer")
	}
	ex.idp = ext // callStatus mints with ex.idp
	if id, e := callStatus(t, ex); id != "key-1" {
		t.Fatalf("token from the external issuer: key %q, error %q", id, e)
	}
	ex.idp = nil
	var out bytes.Buffer
	ex.printUsage(&out, time.Second)
	if regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.`).MatchString(out.String()) || !strings.Contains(out.String(), "your access token") {
		t.Errorf("usage with -issuer prints a token or lacks the instructions:\n%s", out.String())
	}
	if err := run(t.Context(), []string{"-demo", "-issuer", ext.Issuer()}, io.Discard, io.Discard); err == nil {
		t.Error("-demo with -issuer was accepted")
	}
}
