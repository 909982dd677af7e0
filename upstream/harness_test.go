package upstream_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/upstream"
	"github.com/mcpauth-go/mcpauth/upstream/upstreamtest"
)

const resource = "https://mcp.example.com/mcp"

// env is an authorization server on loopback with a fake upstream and a
// browser (cookie jar, redirects not followed).
type env struct {
	t       *testing.T
	idp     *upstreamtest.Provider
	as      *upstream.Server
	srv     *httptest.Server
	issuer  string
	browser *http.Client
	store   upstream.Store
	logs    *syncBuffer
	clock   *clock
	// cfg is the Server's Config; restart builds a new Server from it.
	cfg  upstream.Config
	swap func(http.Handler)
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
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type clock struct {
	mu     sync.Mutex
	d      time.Duration
	frozen time.Time // zero: the clock follows real time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.frozen.IsZero() {
		return c.frozen.Add(c.d)
	}
	return time.Now().Add(c.d)
}

// freeze stops the clock at the current time: from then on only Advance
// moves it, for tests whose assertions a busy machine's real time would
// change (a rate limiter refilling while the test runs).
func (c *clock) freeze() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frozen = time.Now()
}
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.d += d
	c.mu.Unlock()
}

func newEnv(t *testing.T, mod func(e *env, c *upstream.Config)) *env {
	t.Helper()
	e := &env{t: t, logs: &syncBuffer{}, clock: &clock{}}
	var h http.Handler = http.NotFoundHandler()
	var mu sync.RWMutex
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.RLock()
		hh := h
		mu.RUnlock()
		hh.ServeHTTP(w, r)
	}))
	e.issuer = "http://" + e.srv.Listener.Addr().String()
	e.idp = upstreamtest.NewProvider(t, upstreamtest.Config{})
	e.store = &upstream.MemoryStore{Now: e.clock.Now}
	cfg := upstream.Config{
		Issuer:          e.issuer,
		Resources:       []string{resource},
		Upstreams:       []upstream.Provider{e.idp.OIDC("corp")},
		ScopesSupported: []string{"mcp:tools", "mcp:admin", "files:read"},
		DefaultScopes:   []string{"mcp:tools"},
		Store:           e.store,
		Logger:          slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:             e.clock.Now,
	}
	if mod != nil {
		mod(e, &cfg)
	}
	e.cfg = cfg
	e.swap = func(nh http.Handler) {
		mu.Lock()
		h = nh
		mu.Unlock()
	}
	e.restart(nil)
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	e.browser = newBrowser()
	return e
}

// restart replaces the Server with a new one on the same issuer, store and
// upstream, its Config changed by mod (an operator's reconfiguration).
func (e *env) restart(mod func(c *upstream.Config)) {
	e.t.Helper()
	if mod != nil {
		mod(&e.cfg)
	}
	as, err := upstream.NewServer(e.cfg)
	if err != nil {
		e.t.Fatalf("NewServer: %v", err)
	}
	e.as = as
	e.swap(as)
}

func newBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// pkce returns a verifier and its S256 challenge.
func pkce() (string, string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(v))
	return v, base64.RawURLEncoding.EncodeToString(sum[:])
}

// register performs RFC 7591 registration and returns the response.
func (e *env) register(md map[string]any) (int, map[string]any) {
	e.t.Helper()
	b, _ := json.Marshal(md)
	resp, err := http.Post(e.issuer+"/register", "application/json", bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// publicClient registers a public client with one redirect URI.
func (e *env) publicClient(redirect string) string {
	e.t.Helper()
	st, m := e.register(map[string]any{"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "client_name": "Test Client"})
	if st != http.StatusCreated {
		e.t.Fatalf("register: %d %v", st, m)
	}
	return m["client_id"].(string)
}

func (e *env) get(c *http.Client, u string) *http.Response {
	e.t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// consentForm extracts the approve form's hidden fields from a consent page.
func consentForm(t *testing.T, page string) url.Values {
	t.Helper()
	i := strings.Index(page, `<form id="consent"`)
	j := strings.Index(page, `<form id="deny"`)
	if i < 0 || j < i {
		t.Fatalf("no consent form in page:\n%s", page)
	}
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page[i:j], -1) {
		v.Set(m[1], htmlUnescape(m[2]))
	}
	return v
}

func htmlUnescape(s string) string {
	r := strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">")
	return r.Replace(s)
}

// authorizeURL builds an authorization request.
func (e *env) authorizeURL(clientID, redirect, challenge string, extra url.Values) string {
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"st-123"}, "resource": {resource}}
	for k, v := range extra {
		if len(v) == 0 {
			q.Del(k)
		} else {
			q[k] = v
		}
	}
	return e.issuer + "/authorize?" + q.Encode()
}

// follow runs the browser through redirects within the AS and upstream
// until one leaves for the client's redirect URI (returned), handling the
// consent page by approving with the first upstream.
func (e *env) follow(b *http.Client, start, redirectPrefix string) *url.URL {
	e.t.Helper()
	next := start
	for range 10 {
		if strings.HasPrefix(next, redirectPrefix) {
			u, err := url.Parse(next)
			if err != nil {
				e.t.Fatal(err)
			}
			return u
		}
		resp := e.get(b, next)
		body := readBody(e.t, resp)
		switch {
		case resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther:
			loc, err := resp.Location()
			if err != nil {
				e.t.Fatal(err)
			}
			next = loc.String()
		case resp.StatusCode == http.StatusOK && strings.Contains(body, `<form id="consent"`):
			form := consentForm(e.t, body)
			m := regexp.MustCompile(`name="upstream" value="([^"]+)"`).FindStringSubmatch(body)
			if m != nil {
				form.Set("upstream", m[1])
			}
			req, _ := http.NewRequest(http.MethodPost, e.issuer+"/consent", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", e.issuer)
			pr, err := b.Do(req)
			if err != nil {
				e.t.Fatal(err)
			}
			pbody := readBody(e.t, pr)
			loc, err := pr.Location()
			if err != nil {
				e.t.Fatalf("consent POST: %d %s", pr.StatusCode, pbody)
			}
			next = loc.String()
		default:
			e.t.Fatalf("GET %s: %d %s", next, resp.StatusCode, body)
		}
	}
	e.t.Fatal("too many redirects")
	return nil
}

// login runs a full authorization and returns the code.
func (e *env) login(clientID, redirect, challenge string, extra url.Values) string {
	e.t.Helper()
	u := e.follow(e.browser, e.authorizeURL(clientID, redirect, challenge, extra), redirect)
	q := u.Query()
	if q.Get("iss") != e.issuer || q.Get("state") != "st-123" {
		e.t.Fatalf("authorization response %v: want iss and state", redactQuery(q))
	}
	if q.Get("error") != "" {
		e.t.Fatalf("authorization error %s: %s", q.Get("error"), q.Get("error_description"))
	}
	return q.Get("code")
}

func redactQuery(q url.Values) url.Values {
	c := url.Values{}
	for k, v := range q {
		if k == "code" {
			v = []string{"[code]"}
		}
		c[k] = v
	}
	return c
}

// token posts to the token endpoint.
func (e *env) token(form url.Values, basic ...string) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, resp.Header
}

func (e *env) verifier() *authn.Verifier {
	e.t.Helper()
	v, err := authn.NewVerifier(authn.Config{Issuer: e.issuer, Audience: []string{resource}, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// exchange redeems a code and fails the test on error.
func (e *env) exchange(clientID, redirect, code, verifier string) map[string]any {
	e.t.Helper()
	st, m, h := e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {verifier}, "resource": {resource}})
	if st != http.StatusOK {
		e.t.Fatalf("token: %d %v", st, m)
	}
	if h.Get("Cache-Control") != "no-store" {
		e.t.Fatalf("token response Cache-Control = %q, want no-store", h.Get("Cache-Control"))
	}
	return m
}

func wantOAuthError(t *testing.T, what string, st int, m map[string]any, status int, code string) {
	t.Helper()
	if st != status || m["error"] != code {
		// Only the error fields: a wrongly successful response holds tokens.
		t.Fatalf("%s: %d error=%v (%v), want %d %s", what, st, m["error"], m["error_description"], status, code)
	}
	if _, ok := m["error_description"].(string); !ok {
		t.Fatalf("%s: no error_description: %v", what, m)
	}
}

var _ = context.Background

func newSecondProvider(t *testing.T) *upstreamtest.Provider {
	return upstreamtest.NewProvider(t, upstreamtest.Config{Subject: "bob", ClientID: "gh-client", ClientSecret: "gh-secret"})
}
