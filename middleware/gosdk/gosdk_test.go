package gosdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/middleware/gosdk"
	"github.com/mcpauth-go/mcpauth/prm"
)

// seen is what the whoami tool observed for one call.
type seen struct {
	ContextSubject string `json:"context_subject"` // authn.FromContext(ctx) in the tool
	UserID         string `json:"user_id"`         // req.Extra.TokenInfo.UserID
	RequestSubject string `json:"request_subject"` // gosdk.FromTokenInfo(req.Extra.TokenInfo)
}

// sdkHandler is a stateful (or stateless) official SDK server with one tool
// reporting who it thinks the caller is.
func sdkHandler(stateless bool) http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "gosdk-test", Version: "v0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "whoami"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, seen, error) {
		var s seen
		if info, ok := authn.FromContext(ctx); ok {
			s.ContextSubject = info.Subject
		}
		if ti := req.Extra.TokenInfo; ti != nil {
			s.UserID = ti.UserID
			if info, ok := gosdk.FromTokenInfo(ti); ok {
				s.RequestSubject = info.Subject
			}
		}
		return nil, s, nil
	})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{Stateless: stateless, JSONResponse: true})
}

// env is an SDK server behind mcpauth, trusting one or more development IdPs.
type env struct {
	url  string
	idps []*idptest.Server
}

// wrapper returns the middleware to put around the SDK handler in e.
type wrapper func(t *testing.T, e *env) func(http.Handler) http.Handler

// use is the wrapper that always returns mw.
func use(mw func(http.Handler) http.Handler) wrapper {
	return func(*testing.T, *env) func(http.Handler) http.Handler { return mw }
}

// newEnv starts the SDK handler, wrapped by wrap's middleware (nil: no
// adapter), behind middleware.Protect trusting nIssuers IdPs.
func newEnv(t *testing.T, nIssuers int, stateless bool, wrap wrapper) *env {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	resource := srv.URL + "/mcp"
	e := &env{url: resource}
	verifiers := map[string]authn.TokenVerifier{}
	var issuers []string
	for range nIssuers {
		idp := idptest.NewServer(t, idptest.Config{Audience: []string{resource}})
		v, err := authn.NewVerifier(authn.Config{Issuer: idp.Issuer(), Audience: []string{resource}})
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
	h := sdkHandler(stateless)
	if wrap != nil {
		h = wrap(t, e)(h)
	}
	protected, err := middleware.Protect(h, middleware.Config{
		Metadata: prm.Metadata{Resource: resource, AuthorizationServers: issuers},
		Verifier: mv,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = protected
	return e
}

// tokenSwitch sets the bearer token of every request to the current token.
type tokenSwitch struct {
	mu    sync.Mutex
	token string
}

func (ts *tokenSwitch) RoundTrip(r *http.Request) (*http.Response, error) {
	ts.mu.Lock()
	tok := ts.token
	ts.mu.Unlock()
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return http.DefaultTransport.RoundTrip(r)
}

// connect opens a session with the official SDK client as the holder of token.
func connect(t *testing.T, url, token string) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "v0"}, nil)
	session, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint: url, HTTPClient: &http.Client{Transport: &tokenSwitch{token: token}},
		DisableStandaloneSSE: true, MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { session.Close() })
	return session
}

// callAs posts a whoami tools/call on session sessionID with token, as an
// attacker holding someone else's session id would, and returns the HTTP
// status, the response body and what the tool saw (if it ran).
func callAs(t *testing.T, url, token, sessionID, protocolVersion string) (int, string, *seen) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sessionID)
	req.Header.Set("Mcp-Protocol-Version", protocolVersion)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, string(raw), nil
	}
	var msg struct {
		Result struct {
			StructuredContent *seen `json:"structuredContent"`
		} `json:"result"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return resp.StatusCode, string(raw), msg.Result.StructuredContent
}

func whoami(t *testing.T, s *mcp.ClientSession) seen {
	t.Helper()
	res, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(res.StructuredContent)
	var out seen
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSessionHijackWithoutAdapter shows the hole the adapter closes: with
// mcpauth alone in front of a stateful SDK server, user B's valid token on
// user A's session id reaches the tool, which runs in A's session context
// and so sees A.
func TestSessionHijackWithoutAdapter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1, false, nil)
	alice := connect(t, e.url, e.idps[0].Token(map[string]any{"sub": "alice"}))
	bobToken := e.idps[0].Token(map[string]any{"sub": "bob"})

	status, body, got := callAs(t, e.url, bobToken, alice.ID(), alice.InitializeResult().ProtocolVersion)
	if status != http.StatusOK || got == nil {
		t.Fatalf("without the adapter, bob on alice's session: status %d, body %s; want the tool to run", status, body)
	}
	if got.ContextSubject != "alice" || got.UserID != "" {
		t.Fatalf("without the adapter the tool saw %+v; want alice's context and no SDK user id", *got)
	}
}

func TestSessionHijackRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		wrap wrapper
	}{
		{"Middleware", use(gosdk.Middleware)},
		{"Verifier", func(t *testing.T, e *env) func(http.Handler) http.Handler {
			// The SDK's own bearer middleware, verifying with mcpauth, behind
			// Protect (whose verification it repeats).
			v, err := authn.NewVerifier(authn.Config{Issuer: e.idps[0].Issuer(), Audience: []string{e.url}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { v.Close() })
			return auth.RequireBearerToken(gosdk.Verifier(v), &auth.RequireBearerTokenOptions{ClockSkew: time.Minute})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, 1, false, tc.wrap)
			idp := e.idps[0]
			alice := connect(t, e.url, idp.Token(map[string]any{"sub": "alice"}))
			version := alice.InitializeResult().ProtocolVersion

			status, body, _ := callAs(t, e.url, idp.Token(map[string]any{"sub": "bob"}), alice.ID(), version)
			if status != http.StatusForbidden || !strings.Contains(body, "session user mismatch") {
				t.Fatalf("bob on alice's session: status %d, body %q; want 403 session user mismatch", status, body)
			}
			// Alice's own session still works, and a tool sees the caller.
			want := seen{ContextSubject: "alice", UserID: idp.Issuer() + "#alice", RequestSubject: "alice"}
			if got := whoami(t, alice); got != want {
				t.Fatalf("alice on her session: tool saw %+v, want %+v", got, want)
			}
			// A fresh token of alice's (same user) is accepted on her session.
			status, body, got := callAs(t, e.url, idp.Token(map[string]any{"sub": "alice", "jti": "second"}), alice.ID(), version)
			if status != http.StatusOK || got == nil || got.RequestSubject != "alice" {
				t.Fatalf("alice's second token on her session: status %d, body %s", status, body)
			}
		})
	}
}

// TestSameSubjectOtherIssuer: "alice" at issuer B is not "alice" at issuer A.
func TestSameSubjectOtherIssuer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2, false, use(gosdk.Middleware))
	alice := connect(t, e.url, e.idps[0].Token(map[string]any{"sub": "alice"}))
	status, body, _ := callAs(t, e.url, e.idps[1].Token(map[string]any{"sub": "alice"}), alice.ID(), alice.InitializeResult().ProtocolVersion)
	if status != http.StatusForbidden {
		t.Fatalf("issuer B's alice on issuer A's alice's session: status %d, body %q; want 403", status, body)
	}
}

// TestStatelessPerRequest: in stateless mode every request carries its own
// identity, and the adapter passes it along.
func TestStatelessPerRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1, true, use(gosdk.Middleware))
	idp := e.idps[0]
	for _, sub := range []string{"alice", "bob"} {
		s := connect(t, e.url, idp.Token(map[string]any{"sub": sub}))
		want := seen{ContextSubject: sub, UserID: idp.Issuer() + "#" + sub, RequestSubject: sub}
		if got := whoami(t, s); got != want {
			t.Errorf("stateless whoami as %s: %+v, want %+v", sub, got, want)
		}
	}
}

func TestMiddlewareWithoutIdentity(t *testing.T) {
	t.Parallel()
	reached := false
	h := gosdk.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	for name, ctx := range map[string]context.Context{
		"none":       context.Background(),
		"no subject": authn.NewContext(context.Background(), &authn.TokenInfo{Issuer: "https://idp.example"}),
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/mcp", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer x")
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusInternalServerError || reached {
			t.Errorf("%s: status %d, reached %v; want 500 and not reached", name, rec.Code, reached)
		}
	}
}

func TestUserID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		iss, sub, want string
	}{
		{"https://idp.example", "u1", "https://idp.example#u1"},
		{"https://idp.example/tenant", "a#b", "https://idp.example/tenant#a#b"},
		{"", "u1", ""},
		{"https://idp.example", "", ""},
		{"https://idp.example#x", "u1", ""},
	} {
		got, err := gosdk.UserID(&authn.TokenInfo{Issuer: tc.iss, Subject: tc.sub})
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("UserID(%q, %q) = %q, %v; want %q", tc.iss, tc.sub, got, err, tc.want)
		}
	}
	if _, err := gosdk.UserID(nil); err == nil {
		t.Error("UserID(nil) succeeded")
	}
}

func TestTokenInfo(t *testing.T) {
	t.Parallel()
	exp := time.Unix(1_900_000_000, 0)
	info := (&authn.TokenInfo{
		Issuer: "https://idp.example", Subject: "u1", ClientID: "c1",
		Audience: []string{"https://mcp.example/mcp"}, Scopes: []string{"read", "write"}, Expiry: exp,
	}).WithToken("secret-token")
	ti, err := gosdk.TokenInfo(info)
	if err != nil {
		t.Fatal(err)
	}
	if ti.UserID != "https://idp.example#u1" || !ti.Expiration.Equal(exp) ||
		strings.Join(ti.Scopes, " ") != "read write" {
		t.Errorf("TokenInfo = %+v", ti)
	}
	if ti.Extra[gosdk.ExtraIssuer] != "https://idp.example" || ti.Extra[gosdk.ExtraSubject] != "u1" ||
		ti.Extra[gosdk.ExtraClientID] != "c1" {
		t.Errorf("Extra = %v", ti.Extra)
	}
	if aud, _ := ti.Extra[gosdk.ExtraAudience].([]string); len(aud) != 1 || aud[0] != "https://mcp.example/mcp" {
		t.Errorf("Extra[aud] = %v", ti.Extra[gosdk.ExtraAudience])
	}
	back, ok := gosdk.FromTokenInfo(ti)
	if !ok || back != info || back.Token() != "secret-token" {
		t.Errorf("FromTokenInfo = %v, %v", back, ok)
	}
	// The copies are the adapter's own.
	ti.Scopes[0] = "admin"
	if info.Scopes[0] != "read" {
		t.Error("TokenInfo shares its Scopes with the identity")
	}
	// Extra never prints the token.
	raw, err := json.Marshal(ti.Extra)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("secret-token")) {
		t.Errorf("Extra marshals the token: %s", raw)
	}
	if _, ok := gosdk.FromTokenInfo(&auth.TokenInfo{UserID: "x"}); ok {
		t.Error("FromTokenInfo found an identity in a foreign TokenInfo")
	}
	if _, ok := gosdk.FromTokenInfo(nil); ok {
		t.Error("FromTokenInfo(nil) found an identity")
	}
}

// TestVerifierErrors: the SDK puts a verifier's error text in the body, so
// the causes must stay out of it, and an outage must not look like a bad
// token.
func TestVerifierErrors(t *testing.T) {
	t.Parallel()
	cause := errors.New("aud got https://evil.example want https://mcp.example")
	for _, tc := range []struct {
		name   string
		err    error
		info   *authn.TokenInfo
		status int
	}{
		{"invalid", errors.Join(authn.ErrInvalidToken, cause), nil, http.StatusUnauthorized},
		{"expired", errors.Join(authn.ErrExpired, authn.ErrInvalidToken, cause), nil, http.StatusUnauthorized},
		{"unavailable", errors.Join(authn.ErrUnavailable, cause), nil, http.StatusInternalServerError},
		{"no subject", nil, &authn.TokenInfo{Issuer: "https://idp.example", Expiry: time.Now().Add(time.Hour)}, http.StatusUnauthorized},
		{"ok", nil, &authn.TokenInfo{Issuer: "https://idp.example", Subject: "u1", Expiry: time.Now().Add(time.Hour)}, http.StatusOK},
	} {
		v := authn.VerifierFunc(func(context.Context, string) (*authn.TokenInfo, error) { return tc.info, tc.err })
		var got *auth.TokenInfo
		h := auth.RequireBearerToken(gosdk.Verifier(v), nil)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			got = auth.TokenInfoFromContext(r.Context())
		}))
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		req.Header.Set("Authorization", "Bearer tok")
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, rec.Code, tc.status)
		}
		if strings.Contains(rec.Body.String(), "evil") {
			t.Errorf("%s: body reveals the cause: %q", tc.name, rec.Body.String())
		}
		if tc.status == http.StatusOK && (got == nil || got.UserID != "https://idp.example#u1") {
			t.Errorf("%s: SDK TokenInfo %+v", tc.name, got)
		}
	}
}
