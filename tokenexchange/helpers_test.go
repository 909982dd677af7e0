package tokenexchange_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/tokenexchange"
)

// Canary values: none of them may ever appear in an error string or a log line.
const (
	canarySubject = "CANARY-SUBJECT-eyJhbGciOiJSUzI1NiJ9.c3ViamVjdA.c2ln"
	canarySecret  = "CANARY-SECRET-s3cr3t/+&="
	canaryActor   = "CANARY-ACTOR-token-value"
)

// fakeSTS is a minimal RFC 8693 token endpoint on loopback.
type fakeSTS struct {
	t     testing.TB
	srv   *httptest.Server
	calls atomic.Int64

	mu         sync.Mutex
	lastForm   url.Values
	lastHeader http.Header
	ttl        int // expires_in; 0 omits it
	// handle, if set, answers instead of the default success response.
	handle func(w http.ResponseWriter, r *http.Request, form url.Values)
	// gate, if set, is waited on before answering.
	gate chan struct{}
}

func newFakeSTS(t testing.TB) *fakeSTS {
	t.Helper()
	s := &fakeSTS{t: t, ttl: 3600}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *fakeSTS) URL() string { return s.srv.URL + "/token" }

// issued returns the token the fake issues for subject: derived from it but
// never containing it.
func issued(subject string) string {
	h := sha256.Sum256([]byte(subject))
	return "xt-" + hex.EncodeToString(h[:12])
}

func (s *fakeSTS) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/token" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	s.calls.Add(1)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.lastForm, s.lastHeader = r.PostForm, r.Header.Clone()
	handle, gate, ttl := s.handle, s.gate, s.ttl
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if handle != nil {
		handle(w, r, r.PostForm)
		return
	}
	if r.PostForm.Get("grant_type") != tokenexchange.GrantType || r.PostForm.Get("subject_token") == "" {
		writeJSON(w, 400, map[string]any{"error": "invalid_request"})
		return
	}
	resp := map[string]any{
		"access_token":      issued(r.PostForm.Get("subject_token") + "|" + r.PostForm.Get("actor_token")),
		"issued_token_type": r.PostForm.Get("requested_token_type"),
		"token_type":        "Bearer",
	}
	if ttl != 0 {
		resp["expires_in"] = ttl
	}
	writeJSON(w, 200, resp)
}

func (s *fakeSTS) set(f func(s *fakeSTS)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *fakeSTS) last() (url.Values, http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastForm, s.lastHeader
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// backend records what outbound requests carried.
type backend struct {
	srv   *httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	seen  []*http.Request
}

func newBackend(t testing.TB) *backend {
	t.Helper()
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		b.mu.Lock()
		b.seen = append(b.seen, r.Clone(context.Background()))
		b.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) lastRequest(t testing.TB) *http.Request {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.seen) == 0 {
		t.Fatal("backend saw no request")
	}
	return b.seen[len(b.seen)-1]
}

// assertNeverSaw fails if any request the backend saw carries tok anywhere
// in its URL or headers.
func (b *backend) assertNeverSaw(t testing.TB, tok string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.seen {
		if strings.Contains(r.URL.String(), tok) {
			t.Errorf("backend URL carries the inbound token")
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				if strings.Contains(v, tok) {
					t.Errorf("backend header %s carries the inbound token", k)
				}
			}
		}
	}
}

// identity returns a context carrying a verified identity with raw token tok.
func identity(tok string, exp time.Time) context.Context {
	info := (&authn.TokenInfo{Subject: "user-1", Expiry: exp}).WithToken(tok)
	return authn.NewContext(context.Background(), info)
}

// logBuffer returns a debug-level logger writing to a buffer.
func logBuffer() (*slog.Logger, *syncBuffer) {
	b := &syncBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

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

// assertClean fails if s contains any of the secrets.
func assertClean(t testing.TB, what, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			t.Errorf("%s leaks a secret (%.12s…): %s", what, sec, s)
		}
	}
}

// trackingBody records whether it was closed.
type trackingBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackingBody) Close() error { b.closed.Store(true); return nil }

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// get sends a GET to url through rt with ctx.
func get(ctx context.Context, rt http.RoundTripper, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := rt.RoundTrip(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func mustTransport(t testing.TB, cfg tokenexchange.Config) *tokenexchange.Transport {
	t.Helper()
	tr, err := tokenexchange.NewTransport(cfg, nil)
	if err != nil {
		t.Fatalf("NewTransport: %v", err)
	}
	return tr
}

// newTestServer serves h on loopback and returns its URL.
func newTestServer(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

var _ = fmt.Sprint
