package authn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

const edgeRM = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"

// edgeLogBuffer is a concurrency-safe log sink for one test.
type edgeLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *edgeLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *edgeLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func edgeLogger() (*slog.Logger, *edgeLogBuffer) {
	b := &edgeLogBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// edgeFakeVerifier accepts the token "good" (scopes "read write"), "noscope"
// (no scopes) and "withtok" (which it returns with its token set), and
// answers every other token with the error named by it.
func edgeFakeVerifier(calls *int) VerifierFunc {
	var mu sync.Mutex
	return func(ctx context.Context, tok string) (*TokenInfo, error) {
		mu.Lock()
		if calls != nil {
			*calls++
		}
		mu.Unlock()
		switch tok {
		case "good":
			return &TokenInfo{Subject: "alice", Scopes: []string{"read", "write"}}, nil
		case "noscope":
			return &TokenInfo{Subject: "bob"}, nil
		case "withtok":
			return (&TokenInfo{Subject: "carol"}).WithToken("withtok"), nil
		case "invalid":
			return nil, invalid("signature mismatch")
		case "expired":
			return nil, &tokenError{kind: ErrExpired, cause: "exp passed"}
		case "unavailable":
			return nil, unavailable("jwks fetch failed", errors.New("connection refused"))
		case "both":
			return nil, errors.Join(invalid("x"), unavailable("y", nil))
		case "insufficient":
			return nil, fmt.Errorf("custom: %w", ErrInsufficientScope)
		case "weird":
			return nil, errors.New("database on fire")
		case "nilnil":
			return nil, nil
		}
		return nil, invalid("unknown test token")
	}
}

type edgeResult struct {
	status    int
	header    http.Header
	body      string
	reached   bool
	info      *TokenInfo
	challenge map[string]string // nil when there is no WWW-Authenticate
}

func edgeDo(t *testing.T, v TokenVerifier, opts Options, headers []string, rawQuery string) edgeResult {
	t.Helper()
	var res edgeResult
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res.reached = true
		res.info, _ = FromContext(r.Context())
		w.WriteHeader(http.StatusTeapot)
	})
	h := Middleware(v, opts)(next)
	r := httptest.NewRequest(http.MethodPost, "http://mcp.example.com/mcp", strings.NewReader(`{}`))
	r.URL.RawQuery = rawQuery
	for _, v := range headers {
		r.Header.Add("Authorization", v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res.status = w.Code
	res.header = w.Header()
	res.body = w.Body.String()
	if ch := w.Header().Values("WWW-Authenticate"); len(ch) > 0 {
		if len(ch) != 1 {
			t.Fatalf("%d WWW-Authenticate headers", len(ch))
		}
		res.challenge = edgeChallengeParams(t, ch[0])
	}
	return res
}

func TestMiddlewareOutcomes(t *testing.T) {
	t.Parallel()
	base := Options{ResourceMetadataURL: edgeRM}
	scoped := Options{ResourceMetadataURL: edgeRM, Scopes: []string{"read", "admin"}}
	tests := []struct {
		name       string
		opts       Options
		headers    []string
		query      string
		wantStatus int
		// wantChallenge lists the exact challenge parameters; nil means no
		// WWW-Authenticate header at all.
		wantChallenge map[string]string
		wantBodyError string
		wantVerify    bool
	}{
		{name: "no header", opts: base, wantStatus: 401,
			wantChallenge: map[string]string{"resource_metadata": edgeRM}},
		{name: "no header, scopes configured", opts: scoped, wantStatus: 401,
			wantChallenge: map[string]string{"resource_metadata": edgeRM, "scope": "read admin"}},
		{name: "other scheme", opts: base, headers: []string{"Basic dXNlcjpwYXNz"}, wantStatus: 401,
			wantChallenge: map[string]string{"resource_metadata": edgeRM}},
		{name: "bearer without token", opts: base, headers: []string{"Bearer"}, wantStatus: 401,
			wantChallenge: map[string]string{"resource_metadata": edgeRM}},
		{name: "two headers", opts: base, headers: []string{"Bearer good", "Bearer good"}, wantStatus: 400,
			wantChallenge: map[string]string{"error": "invalid_request", "error_description": descInvalidRequest, "resource_metadata": edgeRM},
			wantBodyError: "invalid_request"},
		{name: "comma-combined", opts: base, headers: []string{"Bearer good, Bearer good"}, wantStatus: 400,
			wantChallenge: map[string]string{"error": "invalid_request", "error_description": descInvalidRequest, "resource_metadata": edgeRM},
			wantBodyError: "invalid_request"},
		{name: "query token with header", opts: base, headers: []string{"Bearer good"}, query: "access_token=good", wantStatus: 400,
			wantChallenge: map[string]string{"error": "invalid_request", "error_description": descInvalidRequest, "resource_metadata": edgeRM},
			wantBodyError: "invalid_request"},
		{name: "query token alone", opts: base, query: "access_token=good", wantStatus: 400,
			wantChallenge: map[string]string{"error": "invalid_request", "error_description": descInvalidRequest, "resource_metadata": edgeRM},
			wantBodyError: "invalid_request"},
		{name: "not token68", opts: base, headers: []string{`Bearer "good"`}, wantStatus: 401,
			wantChallenge: map[string]string{"error": "invalid_token", "error_description": descInvalidToken, "resource_metadata": edgeRM},
			wantBodyError: "invalid_token"},
		{name: "malformed token: characters outside token68", opts: base, headers: []string{"Bearer go?od*%2E"}, wantStatus: 401,
			wantChallenge: map[string]string{"error": "invalid_token", "error_description": descInvalidToken, "resource_metadata": edgeRM},
			wantBodyError: "invalid_token"},
		{name: "malformed token: NUL and non-ASCII", opts: base, headers: []string{"Bearer go\x00odé"}, wantStatus: 401,
			wantChallenge: map[string]string{"error": "invalid_token", "error_description": descInvalidToken, "resource_metadata": edgeRM},
			wantBodyError: "invalid_token"},
		{name: "malformed token: JWS JSON serialization", opts: base,
			headers:    []string{`Bearer {"payload":"eyJzdWIiOiJ4In0","signatures":[{"protected":"eyJhbGciOiJFUzI1NiJ9","signature":"c2ln"}]}`},
			wantStatus: 401, wantChallenge: map[string]string{"error": "invalid_token", "error_description": descInvalidToken, "resource_metadata": edgeRM},
			wantBodyError: "invalid_token"},
		{name: "malformed token: bare JSON", opts: base, headers: []string{`Bearer {"sub": "alice", "aud": "x"}`}, wantStatus: 401,
			wantChallenge: map[string]string{"error": "invalid_token", "error_description": descInvalidToken, "resource_metadata": edgeRM},
			wantBodyError: "invalid_token"},
		{name: "invalid token", opts: base, headers: []string{"Bearer invalid"}, wantStatus: 401, wantVerify: true,
			wantChallenge: map[string]string{"error": "invalid_token", "error_description": descInvalidToken, "resource_metadata": edgeRM},
			wantBodyError: "invalid_token"},
		{name: "expired token, same public text", opts: base, headers: []string{"bearer expired"}, wantStatus: 401, wantVerify: true,
			wantChallenge: map[string]string{"error": "invalid_token", "error_description": descInvalidToken, "resource_metadata": edgeRM},
			wantBodyError: "invalid_token"},
		{name: "realm", opts: Options{ResourceMetadataURL: edgeRM, Realm: "mcp"}, headers: []string{"Bearer invalid"}, wantStatus: 401, wantVerify: true,
			wantChallenge: map[string]string{"realm": "mcp", "error": "invalid_token", "error_description": descInvalidToken, "resource_metadata": edgeRM},
			wantBodyError: "invalid_token"},
		{name: "unavailable", opts: base, headers: []string{"Bearer unavailable"}, wantStatus: 503, wantVerify: true,
			wantBodyError: "temporarily_unavailable"},
		{name: "invalid and unavailable at once is unavailable", opts: base, headers: []string{"Bearer both"}, wantStatus: 503, wantVerify: true,
			wantBodyError: "temporarily_unavailable"},
		{name: "unknown error fails closed as unavailable", opts: base, headers: []string{"Bearer weird"}, wantStatus: 503, wantVerify: true,
			wantBodyError: "temporarily_unavailable"},
		{name: "verifier returning nil, nil", opts: base, headers: []string{"Bearer nilnil"}, wantStatus: 503, wantVerify: true,
			wantBodyError: "temporarily_unavailable"},
		{name: "missing scope lists every required scope", opts: scoped, headers: []string{"Bearer good"}, wantStatus: 403, wantVerify: true,
			wantChallenge: map[string]string{"error": "insufficient_scope", "error_description": descInsufficientScope, "scope": "read admin", "resource_metadata": edgeRM},
			wantBodyError: "insufficient_scope"},
		{name: "verifier reporting insufficient scope", opts: scoped, headers: []string{"Bearer insufficient"}, wantStatus: 403, wantVerify: true,
			wantChallenge: map[string]string{"error": "insufficient_scope", "error_description": descInsufficientScope, "scope": "read admin", "resource_metadata": edgeRM},
			wantBodyError: "insufficient_scope"},
		{name: "scopes satisfied", opts: Options{ResourceMetadataURL: edgeRM, Scopes: []string{"write", "read"}}, headers: []string{"Bearer good"},
			wantStatus: http.StatusTeapot, wantVerify: true},
		{name: "no scopes required", opts: base, headers: []string{"Bearer noscope"}, wantStatus: http.StatusTeapot, wantVerify: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			res := edgeDo(t, edgeFakeVerifier(&calls), tt.opts, tt.headers, tt.query)
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", res.status, tt.wantStatus, res.body)
			}
			if (calls > 0) != tt.wantVerify {
				t.Errorf("verifier called %d times, want called=%v", calls, tt.wantVerify)
			}
			if res.reached != (tt.wantStatus == http.StatusTeapot) {
				t.Errorf("next reached = %v", res.reached)
			}
			if tt.wantChallenge == nil && res.challenge != nil {
				t.Errorf("unexpected challenge %v", res.challenge)
			}
			if tt.wantChallenge != nil {
				if fmt.Sprint(res.challenge) != fmt.Sprint(tt.wantChallenge) {
					t.Errorf("challenge = %v\nwant        %v", res.challenge, tt.wantChallenge)
				}
			}
			if res.reached {
				return
			}
			if got := res.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q", got)
			}
			if got := res.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			var body map[string]string
			if err := json.Unmarshal([]byte(res.body), &body); err != nil {
				t.Fatalf("body %q: %v", res.body, err)
			}
			if body["error"] != tt.wantBodyError {
				t.Errorf("body error = %q, want %q", body["error"], tt.wantBodyError)
			}
			if body["error_description"] == "" {
				t.Errorf("body has no error_description")
			}
			if res.status == 503 {
				if got := res.header.Get("Retry-After"); got != "30" {
					t.Errorf("Retry-After = %q, want 30", got)
				}
			} else if got := res.header.Get("Retry-After"); got != "" {
				t.Errorf("Retry-After = %q on %d", got, res.status)
			}
		})
	}
}

func TestMiddlewareRetryAfterRoundsUp(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{1500 * time.Millisecond, "2"}, {time.Millisecond, "1"}, {2 * time.Minute, "120"}, {0, "30"}} {
		res := edgeDo(t, edgeFakeVerifier(nil), Options{RetryAfter: tt.d}, []string{"Bearer unavailable"}, "")
		if got := res.header.Get("Retry-After"); got != tt.want {
			t.Errorf("RetryAfter %v: header %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestMiddlewareSuccessContext(t *testing.T) {
	t.Parallel()
	t.Run("token set when the verifier did not", func(t *testing.T) {
		t.Parallel()
		res := edgeDo(t, edgeFakeVerifier(nil), Options{}, []string{"Bearer good"}, "")
		if !res.reached || res.info == nil {
			t.Fatal("next not reached with a TokenInfo")
		}
		if res.info.Subject != "alice" || res.info.Token() != "good" {
			t.Errorf("info = %v, token %q", res.info, res.info.Token())
		}
	})
	t.Run("token from the verifier kept", func(t *testing.T) {
		t.Parallel()
		res := edgeDo(t, edgeFakeVerifier(nil), Options{}, []string{"Bearer withtok"}, "")
		if res.info == nil || res.info.Subject != "carol" || res.info.Token() != "withtok" {
			t.Errorf("info = %v", res.info)
		}
	})
	t.Run("headers and body untouched", func(t *testing.T) {
		t.Parallel()
		var gotAuth, gotBody string
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			gotAuth = r.Header.Get("Authorization")
			b, _ := io.ReadAll(r.Body)
			gotBody = string(b)
		})
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0"}`))
		r.Header.Set("Authorization", "Bearer good")
		Middleware(edgeFakeVerifier(nil), Options{})(next).ServeHTTP(httptest.NewRecorder(), r)
		if gotAuth != "Bearer good" || gotBody != `{"jsonrpc":"2.0"}` {
			t.Errorf("next saw Authorization %q body %q", gotAuth, gotBody)
		}
	})
}

func TestMiddlewareScopesFor(t *testing.T) {
	t.Parallel()
	opts := Options{
		ResourceMetadataURL: edgeRM,
		Scopes:              []string{"read", "read", ""},
		ScopesFor: func(r *http.Request) []string {
			if r.URL.Query().Get("tool") == "delete" {
				return []string{"read", "admin"}
			}
			return nil
		},
	}
	tests := []struct {
		name, query string
		headers     []string
		wantStatus  int
		wantScope   string
	}{
		{"route scopes satisfied by static only", "", []string{"Bearer good"}, http.StatusTeapot, ""},
		{"route needs admin: all scopes, deduplicated", "tool=delete", []string{"Bearer good"}, 403, "read admin"},
		{"no token on the admin route", "tool=delete", nil, 401, "read admin"},
		{"no token on a plain route", "", nil, 401, "read"},
		{"token without any scope", "", []string{"Bearer noscope"}, 403, "read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := edgeDo(t, edgeFakeVerifier(nil), opts, tt.headers, tt.query)
			if res.status != tt.wantStatus {
				t.Fatalf("status %d, want %d", res.status, tt.wantStatus)
			}
			if got := res.challenge["scope"]; got != tt.wantScope {
				t.Errorf("scope = %q, want %q", got, tt.wantScope)
			}
		})
	}
}

// TestMiddlewareNeverLeaksToken sends a canary token through every outcome,
// with a verifier that (wrongly) puts the token in its error text, and
// checks the canary appears in no response header, body or log line.
func TestMiddlewareNeverLeaksToken(t *testing.T) {
	t.Parallel()
	const canary = "CANARY-9f8e7d6c5b4a.secret_token-value"
	kinds := []struct {
		name string
		err  error
	}{
		{"invalid", invalid("bad signature")},
		{"expired", &tokenError{kind: ErrExpired, cause: "exp passed"}},
		{"unavailable", unavailable("jwks down", nil)},
		{"unknown", errors.New("boom")},
		{"insufficient", ErrInsufficientScope},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			log, buf := edgeLogger()
			v := VerifierFunc(func(_ context.Context, tok string) (*TokenInfo, error) {
				return nil, fmt.Errorf("verifying %q: %w", tok, k.err)
			})
			res := edgeDo(t, v, Options{Logger: log, ResourceMetadataURL: edgeRM, Scopes: []string{"s"}},
				[]string{"Bearer " + canary}, "")
			if res.reached {
				t.Fatal("reached next")
			}
			logs := buf.String()
			if logs == "" {
				t.Fatal("no log line for a rejection")
			}
			if strings.Contains(logs, canary) {
				t.Errorf("token in logs: %s", logs)
			}
			if !strings.Contains(logs, "[REDACTED]") {
				t.Errorf("cause not logged with the token redacted: %s", logs)
			}
			if strings.Contains(res.body, canary) || strings.Contains(fmt.Sprint(res.header), canary) {
				t.Errorf("token in response")
			}
			for _, leak := range []string{"bad signature", "jwks down", "boom", "verifying"} {
				if strings.Contains(res.body, leak) || strings.Contains(fmt.Sprint(res.header), leak) {
					t.Errorf("cause %q in response", leak)
				}
			}
		})
	}
	t.Run("insufficient scope and bad requests", func(t *testing.T) {
		t.Parallel()
		log, buf := edgeLogger()
		v := VerifierFunc(func(context.Context, string) (*TokenInfo, error) {
			return &TokenInfo{Subject: "s"}, nil
		})
		opts := Options{Logger: log, Scopes: []string{"admin"}}
		for _, c := range []struct {
			headers []string
			query   string
		}{
			{[]string{"Bearer " + canary}, ""},
			{[]string{"Bearer " + canary, "Bearer " + canary}, ""},
			{[]string{"Bearer " + canary}, "access_token=" + canary},
			{[]string{"Bearer " + canary + ", Bearer x"}, ""},
		} {
			res := edgeDo(t, v, opts, c.headers, c.query)
			if strings.Contains(res.body, canary) || strings.Contains(fmt.Sprint(res.header), canary) {
				t.Errorf("token in response %d", res.status)
			}
		}
		if strings.Contains(buf.String(), canary) {
			t.Errorf("token in logs: %s", buf.String())
		}
	})
}

func TestMiddlewareLogLevels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		token string
		level string
		cause string
	}{
		{"invalid", "INFO", "signature mismatch"},
		{"expired", "INFO", "exp passed"},
		{"unavailable", "WARN", "jwks fetch failed"},
		{"weird", "WARN", "database on fire"},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			t.Parallel()
			log, buf := edgeLogger()
			edgeDo(t, edgeFakeVerifier(nil), Options{Logger: log}, []string{"Bearer " + tt.token}, "")
			var rec map[string]any
			if err := json.Unmarshal([]byte(strings.TrimSpace(buf.String())), &rec); err != nil {
				t.Fatalf("want exactly one JSON log line, got %q", buf.String())
			}
			if rec["level"] != tt.level {
				t.Errorf("level = %v, want %s", rec["level"], tt.level)
			}
			if cause, _ := rec["cause"].(string); !strings.Contains(cause, tt.cause) {
				t.Errorf("cause = %q, want it to contain %q", cause, tt.cause)
			}
		})
	}
}

func TestMiddlewareNilVerifierPanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("Middleware(nil, …) did not panic")
		}
	}()
	Middleware(nil, Options{})
}

// TestMiddlewareStaticPathAllocations guards the "built once" design: the
// rejection path for a request without a token allocates only for headers.
func TestMiddlewareStaticPathAllocations(t *testing.T) {
	h := Middleware(edgeFakeVerifier(nil), Options{ResourceMetadataURL: edgeRM, Scopes: []string{"a"}})(http.NotFoundHandler())
	r := httptest.NewRequest(http.MethodGet, "/mcp", nil)
	w := &edgeDiscardWriter{h: http.Header{}}
	allocs := testing.AllocsPerRun(100, func() {
		clear(w.h)
		h.ServeHTTP(w, r)
	})
	if allocs > 8 {
		t.Errorf("no-token rejection allocates %v times; challenges should be prepared once", allocs)
	}
}

type edgeDiscardWriter struct{ h http.Header }

func (w *edgeDiscardWriter) Header() http.Header         { return w.h }
func (w *edgeDiscardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *edgeDiscardWriter) WriteHeader(int)             {}

// TestMiddlewareWithVerifier runs the middleware over real HTTP with the
// real Verifier against the fake IdP: JWTs, opaque tokens by introspection,
// and outages.
func TestMiddlewareWithVerifier(t *testing.T) {
	t.Parallel()
	const resource = "https://mcp.example.com/mcp"
	idp := idptest.NewServer(t, idptest.Config{Audience: []string{resource}})
	log, logs := edgeLogger()
	newServer := func(t *testing.T) *httptest.Server {
		v, err := NewVerifier(Config{
			Issuer:        idp.Issuer(),
			Audience:      []string{resource},
			HTTPClient:    idp.Client(),
			Logger:        log,
			Introspection: &IntrospectionConfig{URL: idp.IntrospectionURL()},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = v.Close() })
		h := Middleware(v, Options{ResourceMetadataURL: edgeRM, Scopes: []string{"tools:call"}, Logger: log})(
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				info, ok := FromContext(r.Context())
				if !ok || info.Token() == "" {
					http.Error(w, "no identity", 500)
					return
				}
				_, _ = io.WriteString(w, info.Subject)
			}))
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv
	}
	call := func(t *testing.T, srv *httptest.Server, tok string) (*http.Response, string, map[string]string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var ch map[string]string
		if v := resp.Header.Get("WWW-Authenticate"); v != "" {
			ch = edgeChallengeParams(t, v)
		}
		return resp, string(b), ch
	}

	srv := newServer(t)
	var tokens []string
	mint := func(claims map[string]any) string {
		tok := idp.Token(claims)
		tokens = append(tokens, tok)
		return tok
	}
	opaque := func(claims map[string]any) string {
		tok := idp.OpaqueToken(claims)
		tokens = append(tokens, tok)
		return tok
	}
	tests := []struct {
		name       string
		token      string
		wantStatus int
		wantError  string
		wantScope  string
		wantBody   string
	}{
		{"valid JWT", mint(map[string]any{"sub": "alice", "scope": "tools:call"}), 200, "", "", "alice"},
		{"valid opaque token", opaque(map[string]any{"sub": "bob", "scope": "tools:call other"}), 200, "", "", "bob"},
		{"wrong audience", mint(map[string]any{"aud": "https://other.example.com", "scope": "tools:call"}), 401, "invalid_token", "", ""},
		{"expired", mint(map[string]any{"exp": time.Now().Add(-time.Hour).Unix(), "scope": "tools:call"}), 401, "invalid_token", "", ""},
		{"wrong issuer", mint(map[string]any{"iss": "https://evil.example.com", "scope": "tools:call"}), 401, "invalid_token", "", ""},
		{"tampered signature", edgeTamper(mint(map[string]any{"scope": "tools:call"})), 401, "invalid_token", "", ""},
		{"inactive opaque", "unknown-opaque-token", 401, "invalid_token", "", ""},
		{"missing scope", mint(map[string]any{"sub": "carol", "scope": "other"}), 403, "insufficient_scope", "tools:call", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body, ch := call(t, srv, tt.token)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, body)
			}
			if ch["error"] != tt.wantError || ch["scope"] != tt.wantScope {
				t.Errorf("challenge %v", ch)
			}
			if tt.wantStatus != 200 && ch["resource_metadata"] != edgeRM {
				t.Errorf("challenge without resource_metadata: %v", ch)
			}
			if tt.wantBody != "" && body != tt.wantBody {
				t.Errorf("body %q, want %q", body, tt.wantBody)
			}
		})
	}

	t.Run("two Authorization lines and a query token over the wire", func(t *testing.T) {
		good := mint(map[string]any{"scope": "tools:call"})
		for name, edit := range map[string]func(*http.Request){
			"two lines": func(r *http.Request) { r.Header["Authorization"] = []string{"Bearer " + good, "Bearer " + good} },
			"query token": func(r *http.Request) {
				r.Header.Set("Authorization", "Bearer "+good)
				r.URL.RawQuery = "access_token=" + good
			},
			"query only": func(r *http.Request) { r.URL.RawQuery = "access_token=" + good },
		} {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", nil)
			edit(req)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_request"`) {
				t.Errorf("%s: status %d, challenge %q", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}
	})
	t.Run("JWKS unavailable on first use is 503", func(t *testing.T) {
		idp2 := idptest.NewServer(t, idptest.Config{Audience: []string{resource}})
		idp2.SetFault(idptest.EndpointJWKS, idptest.Fault{Status: 500})
		v, err := NewVerifier(Config{Issuer: idp2.Issuer(), Audience: []string{resource}, HTTPClient: idp2.Client(), Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = v.Close() })
		tok := idp2.Token(nil)
		tokens = append(tokens, tok)
		res := edgeDo(t, v, Options{Logger: log}, []string{"Bearer " + tok}, "")
		if res.status != 503 || res.header.Get("Retry-After") == "" || res.challenge != nil {
			t.Errorf("status %d, Retry-After %q, challenge %v", res.status, res.header.Get("Retry-After"), res.challenge)
		}
	})
	t.Run("introspection unavailable is 503", func(t *testing.T) {
		srv := newServer(t)
		tok := opaque(map[string]any{"scope": "tools:call"})
		idp.SetFault(idptest.EndpointIntrospection, idptest.Fault{Status: 500})
		defer idp.SetFault(idptest.EndpointIntrospection, idptest.Fault{})
		resp, _, _ := call(t, srv, tok)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "30" {
			t.Errorf("status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	})

	all := logs.String()
	if all == "" {
		t.Error("no rejection was logged")
	}
	for _, tok := range tokens {
		if strings.Contains(all, tok) {
			t.Errorf("a token appears in the logs")
		}
	}
}

// edgeTamper flips one character in the middle of a JWS signature.
func edgeTamper(tok string) string {
	i := strings.LastIndexByte(tok, '.') + 10
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

// BenchmarkMiddleware measures the middleware's own cost around a verifier
// that answers at once: a successful request, a request without a token,
// a rejected token, and a request needing per-route scopes.
func BenchmarkMiddleware(b *testing.B) {
	info := &TokenInfo{Subject: "alice", Scopes: []string{"read", "write"}}
	v := VerifierFunc(func(_ context.Context, tok string) (*TokenInfo, error) {
		if tok == "good" {
			return info, nil
		}
		return nil, ErrInvalidToken
	})
	quiet := slog.New(slog.DiscardHandler)
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	cases := []struct {
		name string
		opts Options
		auth string
	}{
		{"success", Options{Scopes: []string{"read"}, Logger: quiet}, "Bearer good"},
		{"no-token", Options{ResourceMetadataURL: edgeRM, Scopes: []string{"read"}, Logger: quiet}, ""},
		{"invalid", Options{ResourceMetadataURL: edgeRM, Logger: quiet}, "Bearer bad"},
		{"scopes-for", Options{Scopes: []string{"read"}, Logger: quiet,
			ScopesFor: func(*http.Request) []string { return []string{"write"} }}, "Bearer good"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h := Middleware(v, c.opts)(next)
			r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			w := &edgeDiscardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
		})
	}
}

func BenchmarkChallengeString(b *testing.B) {
	c := Challenge{Error: "insufficient_scope", ErrorDescription: descInsufficientScope,
		Scopes: []string{"files:read", "files:write"}, ResourceMetadata: edgeRM}
	b.ReportAllocs()
	for b.Loop() {
		_ = c.String()
	}
}
