package mcpgo_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/middleware/mcpgo"
	"github.com/mcpauth-go/mcpauth/prm"
)

// legacyVersion is a protocol version with sessions (2026-07-28 has none).
const legacyVersion = "2025-11-25"

// seen is what the whoami tool observed.
type seen struct {
	Subject string `json:"subject"` // authn.FromContext(ctx)
	Session string `json:"session"` // mcp-go's session for the request
}

// mcpgoHandler is a stateful mcp-go server with a tool reporting the caller
// and the session it runs in.
func mcpgoHandler() http.Handler {
	s := server.NewMCPServer("mcpgo-test", "v0")
	s.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var out seen
		if info, ok := authn.FromContext(ctx); ok {
			out.Subject = info.Subject
		}
		if cs := server.ClientSessionFromContext(ctx); cs != nil {
			out.Session = cs.SessionID()
		}
		return mcp.NewToolResultJSON(out)
	})
	return server.NewStreamableHTTPServer(s, server.WithStateful(true))
}

// env is an mcp-go server behind mcpauth.
type env struct {
	url  string
	idps []*idptest.Server
}

// newEnv serves mcpgoHandler wrapped by wrap (nil: no binder) behind
// middleware.Protect trusting nIssuers development IdPs.
func newEnv(t *testing.T, nIssuers int, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	e := &env{url: srv.URL + "/mcp"}
	verifiers := map[string]authn.TokenVerifier{}
	var issuers []string
	for range nIssuers {
		idp := idptest.NewServer(t, idptest.Config{Audience: []string{e.url}})
		v, err := authn.NewVerifier(authn.Config{Issuer: idp.Issuer(), Audience: []string{e.url}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		e.idps = append(e.idps, idp)
		verifiers[idp.Issuer()] = v
		issuers = append(issuers, idp.Issuer())
	}
	mv, err := authn.NewMultiVerifier(verifiers, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := mcpgoHandler()
	if wrap != nil {
		h = wrap(h)
	}
	protected, err := middleware.Protect(h, middleware.Config{
		Metadata: prm.Metadata{Resource: e.url, AuthorizationServers: issuers},
		Verifier: mv,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = protected
	return e
}

func binder(t *testing.T, cfg mcpgo.Config) *mcpgo.Binder {
	t.Helper()
	b, err := mcpgo.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// do sends one request as a raw Streamable HTTP client.
func do(t *testing.T, method, url, token, sessionID, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", legacyVersion)
	if sessionID != "" {
		req.Header.Set("Mcp-Session-Id", sessionID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

// initialize opens a session as the holder of token and returns its id.
func initialize(t *testing.T, url, token string) string {
	t.Helper()
	resp, body := do(t, http.MethodPost, url, token, "",
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+legacyVersion+`","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d %q %s", resp.StatusCode, sid, body)
	}
	resp, body = do(t, http.MethodPost, url, token, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("initialized: %d %s", resp.StatusCode, body)
	}
	return sid
}

// whoami calls the tool on sessionID with token.
func whoami(t *testing.T, url, token, sessionID string) (int, string, *seen) {
	t.Helper()
	resp, body := do(t, http.MethodPost, url, token, sessionID,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, body, nil
	}
	var msg struct {
		Result struct {
			StructuredContent *seen `json:"structuredContent"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(body), &msg); err != nil || msg.Result.StructuredContent == nil {
		t.Fatalf("whoami response %s: %v", body, err)
	}
	return resp.StatusCode, body, msg.Result.StructuredContent
}

// TestHijackWithoutBinder shows the hole: with mcpauth alone in front of a
// stateful mcp-go server, bob's valid token on alice's session id is served
// in alice's session.
func TestHijackWithoutBinder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1, nil)
	sid := initialize(t, e.url, e.idps[0].Token(map[string]any{"sub": "alice"}))
	status, body, got := whoami(t, e.url, e.idps[0].Token(map[string]any{"sub": "bob"}), sid)
	if status != http.StatusOK || got == nil || got.Session != sid {
		t.Fatalf("without the binder, bob on alice's session: %d %s; want it served in alice's session", status, body)
	}
}

func TestHijackRefused(t *testing.T) {
	t.Parallel()
	b := binder(t, mcpgo.Config{})
	e := newEnv(t, 1, b.Middleware)
	idp := e.idps[0]
	alice, bob := idp.Token(map[string]any{"sub": "alice"}), idp.Token(map[string]any{"sub": "bob"})
	sid := initialize(t, e.url, alice)

	if status, body, _ := whoami(t, e.url, bob, sid); status != http.StatusForbidden {
		t.Fatalf("bob's POST on alice's session: %d %s; want 403", status, body)
	}
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		if resp, body := do(t, method, e.url, bob, sid, ""); resp.StatusCode != http.StatusForbidden {
			t.Errorf("bob's %s on alice's session: %d %s; want 403", method, resp.StatusCode, body)
		}
	}
	// Alice keeps her session, with any of her tokens.
	status, body, got := whoami(t, e.url, idp.Token(map[string]any{"sub": "alice", "jti": "2"}), sid)
	if status != http.StatusOK || got.Subject != "alice" || got.Session != sid {
		t.Fatalf("alice on her session: %d %s", status, body)
	}
	// A session id never handed out is not found.
	if status, body, _ := whoami(t, e.url, bob, "mcp-session-00000000-0000-0000-0000-000000000000"); status != http.StatusNotFound {
		t.Errorf("unknown session id: %d %s; want 404", status, body)
	}
	// Alice ends her session: the binding goes with it.
	if resp, body := do(t, http.MethodDelete, e.url, alice, sid, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice's DELETE: %d %s", resp.StatusCode, body)
	}
	if n := b.Len(); n != 0 {
		t.Errorf("%d bindings after DELETE, want 0", n)
	}
	if status, _, _ := whoami(t, e.url, alice, sid); status != http.StatusNotFound {
		t.Errorf("alice on her deleted session: %d, want 404", status)
	}
}

// TestStreamingGET: the binder keeps mcp-go's GET event stream working
// (mcp-go needs an http.Flusher) for the owner.
func TestStreamingGET(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1, binder(t, mcpgo.Config{}).Middleware)
	alice := e.idps[0].Token(map[string]any{"sub": "alice"})
	sid := initialize(t, e.url, alice)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url, nil)
	req.Header.Set("Authorization", "Bearer "+alice)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", legacyVersion)
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("alice's GET stream: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestSameSubjectOtherIssuer: "alice" at issuer B is not "alice" at issuer A.
func TestSameSubjectOtherIssuer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2, binder(t, mcpgo.Config{}).Middleware)
	sid := initialize(t, e.url, e.idps[0].Token(map[string]any{"sub": "alice"}))
	if status, body, _ := whoami(t, e.url, e.idps[1].Token(map[string]any{"sub": "alice"}), sid); status != http.StatusForbidden {
		t.Fatalf("issuer B's alice on issuer A's alice's session: %d %s; want 403", status, body)
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Now()}
	e := newEnv(t, 1, binder(t, mcpgo.Config{IdleTimeout: time.Hour, Now: clock.now}).Middleware)
	alice := e.idps[0].Token(map[string]any{"sub": "alice"})
	sid := initialize(t, e.url, alice)
	clock.add(59 * time.Minute)
	if status, body, _ := whoami(t, e.url, alice, sid); status != http.StatusOK {
		t.Fatalf("after 59 min: %d %s", status, body)
	}
	clock.add(59 * time.Minute) // the use above restarted the hour
	if status, body, _ := whoami(t, e.url, alice, sid); status != http.StatusOK {
		t.Fatalf("59 min after the last use: %d %s", status, body)
	}
	clock.add(time.Hour)
	if status, _, _ := whoami(t, e.url, alice, sid); status != http.StatusNotFound {
		t.Fatalf("an hour idle: %d, want 404", status)
	}
}

func TestMaxSessions(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Now()}
	e := newEnv(t, 1, binder(t, mcpgo.Config{MaxSessions: 1, IdleTimeout: time.Hour, Now: clock.now}).Middleware)
	alice := e.idps[0].Token(map[string]any{"sub": "alice"})
	initialize(t, e.url, alice)
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + legacyVersion + `","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`
	resp, body := do(t, http.MethodPost, e.url, alice, "", init)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Mcp-Session-Id") != "" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second session over the cap: %d %q %s", resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), body)
	}
	clock.add(time.Hour) // the first binding expires and makes room
	initialize(t, e.url, alice)
}

func TestWithoutIdentity(t *testing.T) {
	t.Parallel()
	b := binder(t, mcpgo.Config{})
	reached := false
	h := b.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	for name, ctx := range map[string]context.Context{
		"none":            context.Background(),
		"no subject":      authn.NewContext(context.Background(), &authn.TokenInfo{Issuer: "https://idp.example"}),
		"issuer with '#'": authn.NewContext(context.Background(), &authn.TokenInfo{Issuer: "https://idp.example#x", Subject: "u"}),
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodPost, "/mcp", nil))
		if rec.Code != http.StatusInternalServerError || reached {
			t.Errorf("%s: %d, reached %v; want 500, not reached", name, rec.Code, reached)
		}
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []mcpgo.Config{{IdleTimeout: -1}, {MaxSessions: -1}} {
		if _, err := mcpgo.New(cfg); err == nil || !strings.HasPrefix(err.Error(), "mcpgo: ") {
			t.Errorf("New(%+v) = %v; want an mcpgo: error", cfg, err)
		}
	}
	got, err := mcpgo.UserID(&authn.TokenInfo{Issuer: "https://idp.example", Subject: "a#b"})
	if err != nil || got != "https://idp.example#a#b" {
		t.Errorf("UserID = %q, %v", got, err)
	}
}
