package middleware_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/prm"
)

func TestChainOrder(t *testing.T) {
	t.Parallel()
	var trace []string
	mw := func(name string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				trace = append(trace, name+">")
				next.ServeHTTP(w, r)
				trace = append(trace, "<"+name)
			})
		}
	}
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { trace = append(trace, "h") })

	tests := []struct {
		name string
		mws  []func(http.Handler) http.Handler
		want []string
	}{
		{"none", nil, []string{"h"}},
		{"one", []func(http.Handler) http.Handler{mw("a")}, []string{"a>", "h", "<a"}},
		{"first is outermost", []func(http.Handler) http.Handler{mw("a"), mw("b"), mw("c")},
			[]string{"a>", "b>", "c>", "h", "<c", "<b", "<a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			trace = nil
			middleware.Chain(tc.mws...)(h).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
			if !slices.Equal(trace, tc.want) {
				t.Errorf("order = %q, want %q", trace, tc.want)
			}
		})
	}
}

func TestChainCopiesArguments(t *testing.T) {
	t.Parallel()
	var got string
	mark := func(s string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got += s; next.ServeHTTP(w, r) })
		}
	}
	mws := []func(http.Handler) http.Handler{mark("a")}
	chain := middleware.Chain(mws...)
	mws[0] = mark("z") // must not affect the chain already built
	chain(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if got != "a" {
		t.Errorf("chain ran %q, want a", got)
	}
}

func TestChainNilPanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "middleware 1 is nil") {
			t.Errorf("recover() = %v, want a panic naming middleware 1", r)
		}
	}()
	middleware.Chain(func(h http.Handler) http.Handler { return h }, nil)
}

// fixture is a protected server with recording fakes.
type fixture struct {
	url      string
	verified atomic.Int32 // Verify calls

	mu    sync.Mutex
	trace []string // "authz:<sub>" and "next:<sub>" ("-" when no identity)
}

func (f *fixture) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trace = append(f.trace, s)
}

func (f *fixture) events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.trace)
}

func subject(r *http.Request) string {
	if info, ok := authn.FromContext(r.Context()); ok {
		return info.Subject
	}
	return "-"
}

// authorizerFunc adapts a function to middleware.Authorizer.
type authorizerFunc func(http.Handler) http.Handler

func (f authorizerFunc) Middleware(next http.Handler) http.Handler { return f(next) }

const (
	resource  = "https://mcp.example.com/mcp"
	prmPath   = "/.well-known/oauth-protected-resource/mcp"
	prmURL    = "https://mcp.example.com" + prmPath
	goodToken = "good-token"
)

var testMetadata = prm.Metadata{
	Resource:             resource,
	AuthorizationServers: []string{"https://as.example.com"},
	ScopesSupported:      []string{"mcp:tools"},
}

// newFixture protects a handler that answers "hello <sub>". Tokens:
// goodToken is alice; "mallory" is a valid token the authorizer denies;
// anything else is invalid. mod may change the config.
func newFixture(t *testing.T, withAuthz bool, mod func(*middleware.Config)) *fixture {
	t.Helper()
	f := &fixture{}
	cfg := middleware.Config{
		Metadata: testMetadata,
		Authn:    authn.Options{Logger: slog.New(slog.DiscardHandler)},
		Verifier: authn.VerifierFunc(func(ctx context.Context, tok string) (*authn.TokenInfo, error) {
			f.verified.Add(1)
			switch tok {
			case goodToken:
				return &authn.TokenInfo{Subject: "alice", Scopes: []string{"mcp:tools"}}, nil
			case "mallory":
				return &authn.TokenInfo{Subject: "mallory", Scopes: []string{"mcp:tools"}}, nil
			}
			return nil, fmt.Errorf("%w: unknown test token", authn.ErrInvalidToken)
		}),
	}
	if withAuthz {
		cfg.Authorizer = authorizerFunc(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sub := subject(r)
				f.record("authz:" + sub)
				if sub != "alice" {
					http.Error(w, "denied", http.StatusForbidden)
					return
				}
				next.ServeHTTP(w, r)
			})
		})
	}
	if mod != nil {
		mod(&cfg)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.record("next:" + subject(r))
		fmt.Fprintf(w, "hello %s", subject(r))
	})
	h, err := middleware.Protect(next, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

type response struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) do(t *testing.T, method, path string, hdr map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, f.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Set the raw request-target so the client sends the path as written
	// (no cleaning, no re-encoding).
	req.URL.Opaque = path
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func TestProtectServesMetadataWithoutAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true, nil)
	want, _ := json.Marshal(testMetadata)

	get := f.do(t, "GET", prmPath, nil)
	if get.status != http.StatusOK || get.body != string(want) {
		t.Errorf("GET %s = %d %q, want 200 %s", prmPath, get.status, get.body, want)
	}
	if get.header.Get("Access-Control-Allow-Origin") != "*" || get.header.Get("WWW-Authenticate") != "" {
		t.Errorf("GET headers = %v", get.header)
	}
	// Sending a token (even a bad one) to the metadata path changes nothing.
	if r := f.do(t, "GET", prmPath, bearer("bogus")); r.status != http.StatusOK || r.body != string(want) {
		t.Errorf("GET with a bad token = %d %q", r.status, r.body)
	}
	if r := f.do(t, "HEAD", prmPath, nil); r.status != http.StatusOK || r.body != "" {
		t.Errorf("HEAD = %d %q", r.status, r.body)
	}
	pre := f.do(t, "OPTIONS", prmPath, map[string]string{
		"Origin": "https://app.example", "Access-Control-Request-Method": "GET",
		"Access-Control-Request-Headers": "mcp-protocol-version",
	})
	if pre.status != http.StatusNoContent || pre.header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(pre.header.Get("Access-Control-Allow-Headers"), "MCP-Protocol-Version") {
		t.Errorf("OPTIONS = %d %v", pre.status, pre.header)
	}
	if r := f.do(t, "POST", prmPath, nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d, want 405", r.status)
	}
	if n := f.verified.Load(); n != 0 {
		t.Errorf("the verifier ran %d times for the metadata path, want 0", n)
	}
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("authorizer/handler reached from the metadata path: %q", ev)
	}
}

// Only the exact well-known path bypasses authentication.
func TestProtectNoPrefixBypass(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true, nil)
	for _, path := range []string{
		"/mcp",
		"/",
		"/.well-known/oauth-protected-resource", // the root form: not this resource's document
		prmPath + "/",
		prmPath + "x",
		prmPath + "/tools",
		prmPath + "/../../../mcp",
		prmPath + "/.",
		"/.well-known/oauth-protected-resource/m%63p", // decodes to the PRM path
		"/.well-known/oauth-protected-resource//mcp",
		"/.well-known/oauth-protected-resource/MCP",
		"/.WELL-KNOWN/oauth-protected-resource/mcp",
		"//.well-known/oauth-protected-resource/mcp",
		"/mcp/.well-known/oauth-protected-resource",
		"/.well-known/oauth-protected-resource%2Fmcp",
	} {
		t.Run(path, func(t *testing.T) {
			r := f.do(t, "GET", path, nil)
			if strings.Contains(r.body, `"authorization_servers"`) {
				t.Errorf("GET %s served the metadata document", path)
			}
			if r.status != http.StatusUnauthorized {
				t.Errorf("GET %s without a token = %d, want 401", path, r.status)
			}
		})
	}
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("requests without a token reached the authorizer or handler: %q", ev)
	}
}

func TestProtectOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		withAuthz bool
		token     string
		status    int
		body      string
		events    []string
	}{
		{"authn then authz then handler", true, goodToken, http.StatusOK, "hello alice", []string{"authz:alice", "next:alice"}},
		{"authz denies after authn", true, "mallory", http.StatusForbidden, "denied\n", []string{"authz:mallory"}},
		{"invalid token stops at authn", true, "bogus", http.StatusUnauthorized, "", nil},
		{"no token stops at authn", true, "", http.StatusUnauthorized, "", nil},
		{"no authorizer", false, goodToken, http.StatusOK, "hello alice", []string{"next:alice"}},
		{"no authorizer, invalid token", false, "bogus", http.StatusUnauthorized, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tc.withAuthz, nil)
			var hdr map[string]string
			if tc.token != "" {
				hdr = bearer(tc.token)
			}
			r := f.do(t, "POST", "/mcp", hdr)
			if r.status != tc.status {
				t.Errorf("status = %d, want %d", r.status, tc.status)
			}
			if tc.body != "" && r.body != tc.body {
				t.Errorf("body = %q, want %q", r.body, tc.body)
			}
			if ev := f.events(); !slices.Equal(ev, tc.events) {
				t.Errorf("events = %q, want %q", ev, tc.events)
			}
		})
	}
}

// The 401 challenge points at the document Protect serves, derived from the
// configured resource only: a spoofed Host or forwarding header changes
// neither the challenge nor the document.
func TestProtectChallengeAndSpoofedHost(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true, nil)
	want, _ := json.Marshal(testMetadata)
	for _, hdr := range []map[string]string{
		nil,
		{"Host": "evil.example"},
		{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http", "Forwarded": "host=evil.example"},
	} {
		r := f.do(t, "GET", "/mcp", hdr)
		wa := r.header.Get("WWW-Authenticate")
		if r.status != http.StatusUnauthorized || !strings.Contains(wa, `resource_metadata="`+prmURL+`"`) {
			t.Errorf("with %v: %d WWW-Authenticate %q, want 401 with resource_metadata=%q", hdr, r.status, wa, prmURL)
		}
		if strings.Contains(wa, "evil") {
			t.Errorf("with %v: challenge reflects the request: %q", hdr, wa)
		}
		m := f.do(t, "GET", prmPath, hdr)
		if m.status != http.StatusOK || m.body != string(want) {
			t.Errorf("with %v: metadata = %d %s, want %s", hdr, m.status, m.body, want)
		}
	}
}

func TestProtectExplicitAuthnOptions(t *testing.T) {
	t.Parallel()
	const custom = "https://mcp.example.com/.well-known/oauth-protected-resource"
	f := newFixture(t, false, func(c *middleware.Config) {
		c.Authn.ResourceMetadataURL = custom
		c.Authn.Scopes = []string{"mcp:admin"}
		c.PRM.CacheControl = "no-store"
	})
	r := f.do(t, "GET", "/mcp", nil)
	wa := r.header.Get("WWW-Authenticate")
	if !strings.Contains(wa, `resource_metadata="`+custom+`"`) || !strings.Contains(wa, `scope="mcp:admin"`) {
		t.Errorf("WWW-Authenticate = %q, want the configured resource_metadata and scope", wa)
	}
	// alice lacks mcp:admin: authn's scope check runs before the handler.
	if r := f.do(t, "GET", "/mcp", bearer(goodToken)); r.status != http.StatusForbidden {
		t.Errorf("token without the required scope = %d, want 403", r.status)
	}
	if m := f.do(t, "GET", prmPath, nil); m.header.Get("Cache-Control") != "no-store" {
		t.Errorf("metadata Cache-Control = %q, want no-store", m.header.Get("Cache-Control"))
	}
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("handler reached: %q", ev)
	}
}

// A resource identifier with percent-encoding: the bypass is the escaped
// path exactly as prm.WellKnownPath returns it.
func TestProtectEncodedResourcePath(t *testing.T) {
	t.Parallel()
	md := testMetadata
	md.Resource = "https://mcp.example.com/a%2Fb"
	f := newFixture(t, false, func(c *middleware.Config) { c.Metadata = md })
	if r := f.do(t, "GET", "/.well-known/oauth-protected-resource/a%2Fb", nil); r.status != http.StatusOK {
		t.Errorf("encoded metadata path = %d, want 200", r.status)
	}
	if r := f.do(t, "GET", "/.well-known/oauth-protected-resource/a/b", nil); r.status != http.StatusUnauthorized {
		t.Errorf("decoded look-alike path = %d, want 401", r.status)
	}
}

type nilAuthorizer struct{}

func (*nilAuthorizer) Middleware(http.Handler) http.Handler { return nil }

func TestProtectConfigErrors(t *testing.T) {
	t.Parallel()
	okVerifier := authn.VerifierFunc(func(context.Context, string) (*authn.TokenInfo, error) { return nil, authn.ErrInvalidToken })
	ok := func() middleware.Config { return middleware.Config{Metadata: testMetadata, Verifier: okVerifier} }
	handler := http.NotFoundHandler()
	tests := []struct {
		name    string
		next    http.Handler
		cfg     middleware.Config
		want    string
		prmErr  bool
		wantNil bool
	}{
		{name: "nil next", next: nil, cfg: ok(), want: "next handler is nil"},
		{name: "nil HandlerFunc", next: http.HandlerFunc(nil), cfg: ok(), want: "next handler is nil"},
		{name: "nil verifier", next: handler, cfg: func() middleware.Config { c := ok(); c.Verifier = nil; return c }(), want: "Config.Verifier is required"},
		{name: "typed nil verifier", next: handler, cfg: func() middleware.Config { c := ok(); c.Verifier = (*authn.Verifier)(nil); return c }(), want: "Config.Verifier is required"},
		{name: "nil VerifierFunc", next: handler, cfg: func() middleware.Config { c := ok(); c.Verifier = authn.VerifierFunc(nil); return c }(), want: "Config.Verifier is required"},
		{name: "typed nil authorizer", next: handler, cfg: func() middleware.Config { c := ok(); c.Authorizer = (*nilAuthorizer)(nil); return c }(), want: "Config.Authorizer is a nil"},
		{name: "authorizer returns nil", next: handler, cfg: func() middleware.Config { c := ok(); c.Authorizer = &nilAuthorizer{}; return c }(), want: "returned a nil handler"},
		{name: "missing metadata", next: handler, cfg: func() middleware.Config { c := ok(); c.Metadata = prm.Metadata{}; return c }(), want: "Config.Metadata: prm: resource: required", prmErr: true},
		{name: "http resource", next: handler, cfg: func() middleware.Config {
			c := ok()
			c.Metadata.Resource = "http://mcp.example.com/mcp"
			return c
		}(), want: "http is allowed only on loopback", prmErr: true},
		{name: "no authorization servers", next: handler, cfg: func() middleware.Config {
			c := ok()
			c.Metadata.AuthorizationServers = nil
			return c
		}(), want: "authorization_servers", prmErr: true},
		{name: "bad cache control", next: handler, cfg: func() middleware.Config { c := ok(); c.PRM.CacheControl = "x\ny"; return c }(), want: "CacheControl", prmErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := middleware.Protect(tc.next, tc.cfg)
			if err == nil {
				t.Fatalf("Protect = %v, nil; want error %q", h, tc.want)
			}
			if h != nil {
				t.Errorf("Protect returned a handler with error %v", err)
			}
			if !strings.HasPrefix(err.Error(), "middleware: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q, want prefix \"middleware: \" and %q", err, tc.want)
			}
			if got := errors.Is(err, prm.ErrInvalidMetadata); got != tc.prmErr {
				t.Errorf("errors.Is(err, prm.ErrInvalidMetadata) = %v, want %v", got, tc.prmErr)
			}
		})
	}
}

func BenchmarkProtect(b *testing.B) {
	v := authn.VerifierFunc(func(context.Context, string) (*authn.TokenInfo, error) {
		return &authn.TokenInfo{Subject: "alice"}, nil
	})
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	h, err := middleware.Protect(next, middleware.Config{Metadata: testMetadata, Verifier: v})
	if err != nil {
		b.Fatal(err)
	}
	w := &discardWriter{h: make(http.Header)}
	for _, bc := range []struct {
		name string
		path string
		tok  string
	}{
		{"metadata", prmPath, ""},
		{"authenticated", "/mcp", goodToken},
	} {
		req := httptest.NewRequest("GET", bc.path, nil)
		if bc.tok != "" {
			req.Header.Set("Authorization", "Bearer "+bc.tok)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
