package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
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

// jwtPattern matches anything shaped like a compact JWS.
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.`)

// TestDemo runs `go run ./examples/tokenexchange -demo` in process, end to
// end over loopback: client token, refusal at the backend, two tool calls
// through one cached exchange. Neither output holds a token.
func TestDemo(t *testing.T) {
	t.Parallel()
	var out, errOut syncBuffer
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := run(ctx, []string{"-demo"}, noEnv, &out, &errOut); err != nil {
		t.Fatalf("demo failed: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"2. that token sent straight to the backend: 401", "3. tools/call profile: the backend saw", "demo OK"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	for name, s := range map[string]string{"stdout": out.String(), "stderr": errOut.String()} {
		if jwtPattern.MatchString(s) {
			t.Errorf("%s contains a token:\n%s", name, s)
		}
	}
}

// TestUsage checks the printed instructions name the three servers and
// that the printed development token works as printed.
func TestUsage(t *testing.T) {
	t.Parallel()
	ex := startTest(t)
	var out bytes.Buffer
	ex.printUsage(&out)
	for _, want := range []string{ex.resource, ex.backend.url, ex.idp.Issuer(), `"name":"profile"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
	m := regexp.MustCompile(`TOKEN='([^']+)'`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no TOKEN= line:\n%s", out.String())
	}
	if status, p := callProfile(t, ex, m[1]); status != http.StatusOK || p.Subject != "dev-user" {
		t.Errorf("printed token: %d %+v, want 200 for dev-user", status, p)
	}
}

func startTest(t *testing.T) *example {
	t.Helper()
	ex, err := start(options{addr: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ex.close)
	return ex
}

// callProfile calls the profile tool with token and returns the HTTP status
// and, on success, the backend's answer.
func callProfile(t *testing.T, ex *example, token string) (int, profile) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"profile","arguments":{}}}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ex.resource, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, profile{}
	}
	var rpc struct {
		Result struct {
			IsError           bool    `json:"isError"`
			StructuredContent profile `json:"structuredContent"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rpc); err != nil {
		t.Fatal(err)
	}
	if rpc.Result.IsError {
		t.Fatalf("tool error")
	}
	return resp.StatusCode, rpc.Result.StructuredContent
}

// TestBackendReceivesExchangedToken is the point of the example: the backend
// gets a token whose audience is the backend and whose subject is the
// caller, never the caller's own token; each caller gets their own.
func TestBackendReceivesExchangedToken(t *testing.T) {
	t.Parallel()
	ex := startTest(t)
	alice := ex.idp.Token(map[string]any{"sub": "alice", "aud": ex.resource})
	bob := ex.idp.Token(map[string]any{"sub": "bob", "aud": ex.resource})

	for i := range 2 {
		status, p := callProfile(t, ex, alice)
		if status != http.StatusOK || p.Subject != "alice" || p.ClientID != mcpClientID || !slices.Equal(p.Audience, []string{ex.backend.url}) {
			t.Fatalf("call %d for alice: %d %+v, want subject alice, client %s, audience [%s]", i, status, p, mcpClientID, ex.backend.url)
		}
	}
	if _, p := callProfile(t, ex, bob); p.Subject != "bob" {
		t.Fatalf("bob's call reached the backend as %q: an exchanged token was shared across callers", p.Subject)
	}
	if ex.backend.received(alice) != 0 || ex.backend.received(bob) != 0 {
		t.Fatal("the backend received an inbound token")
	}
	if n := ex.backend.accepted(); n != 2 {
		t.Errorf("the backend accepted %d distinct tokens, want 2 (one exchanged token per caller)", n)
	}
}

// TestRejected checks the refusals on both sides: the MCP server refuses a
// token for another audience (and never exchanges it), and the backend
// refuses the MCP server's inbound token.
func TestRejected(t *testing.T) {
	t.Parallel()
	ex := startTest(t)
	other := ex.idp.Token(map[string]any{"sub": "mallory", "aud": "http://127.0.0.1:1/other"})
	if status, _ := callProfile(t, ex, other); status != http.StatusUnauthorized {
		t.Errorf("token for another audience: status %d, want 401", status)
	}
	forBackend := ex.idp.Token(map[string]any{"sub": "mallory", "aud": ex.backend.url})
	if status, _ := callProfile(t, ex, forBackend); status != http.StatusUnauthorized {
		t.Errorf("token for the backend sent to the MCP server: status %d, want 401", status)
	}
	if ex.backend.accepted() != 0 {
		t.Error("the backend was reached by a rejected caller")
	}

	inbound := ex.idp.Token(map[string]any{"sub": "alice", "aud": ex.resource})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ex.backend.url+"/profile", nil)
	req.Header.Set("Authorization", "Bearer "+inbound)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("backend with the MCP server's token: %s, want 401", resp.Status)
	}
}

// noEnv is a getenv with nothing set.
func noEnv(string) string { return "" }

// TestFlags checks the settings that must fail at start: -issuer without its
// client, -demo with -issuer; and that the secret comes from the
// environment only.
func TestFlags(t *testing.T) {
	t.Parallel()
	env := func(k string) string {
		if k == secretEnv {
			return "s3cret"
		}
		return ""
	}
	for _, tc := range []struct {
		name    string
		args    []string
		getenv  func(string) string
		wantErr string
	}{
		{"issuer without client", []string{"-issuer", "https://idp.example"}, env, "-client-id"},
		{"issuer without secret", []string{"-issuer", "https://idp.example", "-client-id", "mcp"}, noEnv, secretEnv},
		{"demo with issuer", []string{"-demo", "-issuer", "https://idp.example", "-client-id", "mcp"}, env, "embedded IdP only"},
		{"stray argument", []string{"extra"}, noEnv, "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, tc.getenv, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
	o, err := parseFlags([]string{"-issuer", "https://idp.example", "-client-id", "mcp", "-audience", "backend"}, env, io.Discard)
	if err != nil || o.secret != "s3cret" || o.audience != "backend" || o.addr != "127.0.0.1:8080" {
		t.Fatalf("parseFlags = %+v, %v", o, err)
	}
}

// TestExternalIssuer runs the server against an "external" IdP (another
// idptest server standing in for Keycloak): the exchange goes to its
// discovered token endpoint as the configured client, for the configured
// audience, and the backend accepts only that.
func TestExternalIssuer(t *testing.T) {
	t.Parallel()
	const clientID, secret = "mcp-at-ext", "ext-secret-0123456789"
	ext := idptest.NewServer(t, idptest.Config{Clients: []idptest.Client{{ID: clientID, Secret: secret}}})
	ex, err := start(options{addr: "127.0.0.1:0", issuer: ext.Issuer(), clientID: clientID, secret: secret, audience: "backend-api"},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ex.close)
	if ex.idp != nil {
		t.Fatal("the embedded IdP runs with -issuer")
	}
	inbound := ext.Token(map[string]any{"sub": "alice", "aud": ex.resource})
	status, p := callProfile(t, ex, inbound)
	if status != http.StatusOK || p.Subject != "alice" || p.ClientID != clientID || !slices.Equal(p.Audience, []string{"backend-api"}) {
		t.Fatalf("profile: %d %+v, want alice via %s for [backend-api]", status, p, clientID)
	}
	if ex.backend.received(inbound) != 0 {
		t.Fatal("the backend received the inbound token")
	}
	if got := ext.LastTokenRequest().Get("audience"); got != "backend-api" {
		t.Errorf("exchange audience = %q, want backend-api", got)
	}
	var out bytes.Buffer
	ex.printUsage(&out)
	if jwtPattern.MatchString(out.String()) || !strings.Contains(out.String(), "your access token") {
		t.Errorf("usage with -issuer prints a token or lacks the instructions:\n%s", out.String())
	}
}
