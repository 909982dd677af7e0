package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"

	"github.com/mcpauth-go/mcpauth/prm"
	"github.com/mcpauth-go/mcpauth/upstream"
)

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

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestEndToEnd runs the example as a user would and drives it like an MCP
// client: probe, 401, PRM, AS metadata, DCR, PKCE authorization, consent,
// upstream login, token, tools/call of whoami and of upstream_profile, which
// calls the dev provider's userinfo endpoint (it answers only the
// provider's own access tokens) as the user.
func TestEndToEnd(t *testing.T) {
	t.Run("dynamic registration", func(t *testing.T) { endToEnd(t, false) })
	t.Run("pre-registered client", func(t *testing.T) { endToEnd(t, true) })
}

func endToEnd(t *testing.T, static bool) {
	var args []string
	if static {
		// Registered on another port: loopback redirects match on any port.
		args = []string{"-client-id", "conformance-client", "-client-redirect", "http://127.0.0.1:1/callback"}
	}
	l := login(t, args, nil, static)
	a := l.a
	var usage bytes.Buffer
	a.printUsage(&usage)
	for _, want := range []string{a.resource, a.issuer + "/callback", "upstream_profile", a.backendURL, "in memory"} {
		if !strings.Contains(usage.String(), want) {
			t.Fatalf("usage does not say %q:\n%s", want, usage.String())
		}
	}
	var id identity
	l.callTool(t, "whoami", &id)
	if id.Subject != "dev:alice" || id.ClientID != l.conf.ClientID || id.Issuer != a.issuer || id.Upstream != "dev" || !id.UpstreamToken {
		t.Fatalf("whoami = %+v", id)
	}
	// The dev provider's userinfo endpoint answered: it saw the user's
	// upstream access token (it refuses anything else with 401).
	var p profile
	l.callTool(t, "upstream_profile", &p)
	if p.Backend != a.dev.URL()+"/userinfo" || p.Status != 200 || p.User["sub"] != "alice" {
		t.Fatalf("upstream_profile = %+v", p)
	}
	if n := a.dev.RefreshRequests(); n != 0 {
		t.Fatalf("%d refreshes of a fresh upstream token", n)
	}
	for _, secret := range l.secrets {
		if strings.Contains(l.logs.String(), secret) {
			t.Fatal("a token, code or verifier was logged")
		}
	}
	if !strings.Contains(l.logs.String(), "development signing key") {
		t.Fatal("the development key warning is missing")
	}
}

// TestBackendGetsUpstreamTokenOnly puts a recording backend between the
// tool and the dev provider's userinfo endpoint (-backend): each request
// carries the session's upstream access token, and the MCP access token
// appears nowhere in it.
func TestBackendGetsUpstreamTokenOnly(t *testing.T) {
	rec := newRecorder(t)
	l := login(t, []string{"-backend", rec.srv.URL + "/api/me"}, nil, false)
	rec.setUpstream(l.a.dev.URL() + "/userinfo")
	var p profile
	for range 3 {
		l.callTool(t, "upstream_profile", &p)
	}
	if p.Backend != rec.srv.URL+"/api/me" || p.User["sub"] != "alice" {
		t.Fatalf("upstream_profile = %+v", p)
	}
	s := l.session(t)
	seen := rec.requests()
	if len(seen) != 3 {
		t.Fatalf("backend saw %d requests, want 3", len(seen))
	}
	for _, r := range seen {
		if r.authorization != "Bearer "+s.AccessToken {
			t.Fatal("the backend did not get the user's upstream access token")
		}
		if strings.Contains(r.dump, l.tok.AccessToken) || strings.Contains(r.dump, l.tok.RefreshToken) ||
			strings.Contains(r.dump, s.RefreshToken) {
			t.Fatal("the backend saw the MCP access token or a refresh token")
		}
	}
}

// TestUpstreamTokenRefreshedOnce expires the session's upstream token and
// calls upstream_profile concurrently: the Transport refreshes it at the dev
// provider exactly once, every call succeeds with the new token, and the
// stored session keeps a (rotated) refresh token.
func TestUpstreamTokenRefreshedOnce(t *testing.T) {
	rec := newRecorder(t)
	l := login(t, []string{"-backend", rec.srv.URL + "/api/me"}, nil, false)
	rec.setUpstream(l.a.dev.URL() + "/userinfo")
	old := l.expire(t)
	before := l.a.dev.RefreshRequests()
	const calls = 8
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Go(func() {
			res, err := l.mcp.CallTool(t.Context(), &mcp.CallToolParams{Name: "upstream_profile", Arguments: map[string]any{}})
			if err == nil && res.IsError {
				err = errors.New("tool error")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("upstream_profile with an expired upstream token: %v", err)
		}
	}
	if n := l.a.dev.RefreshRequests() - before; n != 1 {
		t.Fatalf("%d refreshes at the upstream, want exactly 1", n)
	}
	s := l.session(t)
	if s.AccessToken == old.AccessToken || s.RefreshToken == "" || s.RefreshToken == old.RefreshToken || !s.Expiry.After(time.Now()) {
		t.Fatal("the stored session was not replaced by the refreshed pair")
	}
	for _, r := range rec.requests() {
		if r.authorization != "Bearer "+s.AccessToken {
			t.Fatal("a backend call did not carry the refreshed upstream token")
		}
	}
}

// TestUpstreamGrantRevoked revokes the user's grant at the upstream and
// expires the upstream token: the refresh fails with invalid_grant, and the
// MCP request gets 401 invalid_token telling the client to log in again
// (HandleErrors), not a 200 with a failed tool result. Tools that do not
// call the backend keep working.
func TestUpstreamGrantRevoked(t *testing.T) {
	l := login(t, nil, nil, false)
	l.a.dev.RevokeGrants()
	l.expire(t)
	before := l.a.dev.RefreshRequests()
	resp, body := l.post(t, "upstream_profile")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401: %s", resp.StatusCode, body)
	}
	md, _ := prm.MetadataURL(l.a.resource)
	chal := resp.Header.Get("WWW-Authenticate")
	for _, want := range []string{`error="invalid_token"`, `error_description="` + upstream.DescReauthenticate + `"`, `resource_metadata="` + md + `"`} {
		if !strings.Contains(chal, want) {
			t.Fatalf("WWW-Authenticate %q lacks %s", chal, want)
		}
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error != "invalid_token" || e.Description != upstream.DescReauthenticate {
		t.Fatalf("body %s", body)
	}
	if n := l.a.dev.RefreshRequests() - before; n != 1 {
		t.Fatalf("%d refresh attempts, want 1", n)
	}
	if resp, body := l.post(t, "whoami"); resp.StatusCode != 200 {
		t.Fatalf("whoami after the upstream revocation: %d %s", resp.StatusCode, body)
	}
}

// TestRedisStore runs the example on Redis (-redis-addr; an in-process
// miniredis here): login, a backend call, a refresh under the store's lock,
// nothing readable in Redis, and 503 with Retry-After — never 401 — while
// Redis fails.
func TestRedisStore(t *testing.T) {
	m := miniredis.RunT(t)
	keyFile := filepath.Join(t.TempDir(), "signing.pem")
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	env := func(k string) string {
		if k == redisKeyEnv {
			return base64.StdEncoding.EncodeToString(secret)
		}
		return ""
	}
	l := login(t, []string{"-redis-addr", m.Addr(), "-signing-key", keyFile}, env, false)
	var usage bytes.Buffer
	l.a.printUsage(&usage)
	if !strings.Contains(usage.String(), "Redis at "+m.Addr()) {
		t.Fatalf("usage does not name the store:\n%s", usage.String())
	}
	var p profile
	l.callTool(t, "upstream_profile", &p)
	if p.User["sub"] != "alice" {
		t.Fatalf("upstream_profile = %+v", p)
	}
	old := l.expire(t)
	before := l.a.dev.RefreshRequests()
	l.callTool(t, "upstream_profile", &p)
	s := l.session(t)
	if n := l.a.dev.RefreshRequests() - before; n != 1 || s.AccessToken == old.AccessToken || p.User["sub"] != "alice" {
		t.Fatalf("refresh through Redis: %d refreshes, profile %+v", n, p)
	}
	sessions := 0
	for _, k := range m.Keys() {
		sessions += strings.Count(k, "mcpauth:session:")
		v, _ := m.Get(k)
		for _, secret := range append(l.secrets, s.AccessToken, s.RefreshToken, s.TSID) {
			if strings.Contains(k, secret) || strings.Contains(v, secret) {
				t.Fatalf("Redis key %s holds a token or ID in the clear", k)
			}
		}
	}
	if sessions != 1 {
		t.Fatalf("%d sessions in Redis, want 1", sessions)
	}

	m.SetError("LOADING Redis is loading the dataset in memory")
	resp, body := l.post(t, "upstream_profile")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || resp.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("Redis failing: %d Retry-After=%q WWW-Authenticate=%q %s", resp.StatusCode,
			resp.Header.Get("Retry-After"), resp.Header.Get("WWW-Authenticate"), body)
	}
	m.SetError("")
	l.callTool(t, "upstream_profile", &p)
	if p.User["sub"] != "alice" {
		t.Fatalf("after Redis recovered: %+v", p)
	}
}

// loggedIn is a running example and an MCP client logged in to it.
type loggedIn struct {
	a       *app
	logs    *syncBuffer
	conf    *oauth2.Config
	tok     *oauth2.Token
	mcp     *mcp.ClientSession
	secrets []string // token, code, verifier: never in a log
}

// login starts the example with args and getenv (nil: empty environment)
// and logs in like an MCP client: probe, 401, PRM, AS metadata, DCR (or
// the pre-registered client), PKCE authorization through consent and the
// upstream login, token, initialize.
func login(t *testing.T, args []string, getenv func(string) string, static bool) *loggedIn {
	t.Helper()
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	logs := &syncBuffer{}
	o, err := parseFlags(append([]string{"-addr", "127.0.0.1:0"}, args...), getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := start(o, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)

	// 1. Probe: 401 with the metadata URL.
	resp, err := http.Post(a.resource, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	chal := resp.Header.Get("WWW-Authenticate")
	m := regexp.MustCompile(`resource_metadata="([^"]+)"`).FindStringSubmatch(chal)
	if resp.StatusCode != 401 || m == nil {
		t.Fatalf("probe: %d %q", resp.StatusCode, chal)
	}
	// 2. PRM names the embedded authorization server.
	var prmDoc struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	getJSON(t, m[1], &prmDoc)
	if prmDoc.Resource != a.resource || len(prmDoc.AuthorizationServers) != 1 {
		t.Fatalf("PRM: %+v", prmDoc)
	}
	issuer := prmDoc.AuthorizationServers[0]
	// 3. AS metadata.
	var md map[string]any
	getJSON(t, issuer+"/.well-known/oauth-authorization-server", &md)
	if md["issuer"] != issuer {
		t.Fatalf("issuer %v", md["issuer"])
	}
	// 4. Dynamic registration of a public client (or the pre-registered one).
	redirect := "http://127.0.0.1:33418/callback"
	clientID, clientName := "conformance-client", "conformance-client"
	if !static {
		body, _ := json.Marshal(map[string]any{"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none",
			"grant_types": []string{"authorization_code", "refresh_token"}, "client_name": "e2e client"})
		resp, err = http.Post(md["registration_endpoint"].(string), "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var reg map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&reg)
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("register: %d %v", resp.StatusCode, reg)
		}
		clientID, clientName = reg["client_id"].(string), "e2e client"
	}
	conf := &oauth2.Config{ClientID: clientID, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: md["authorization_endpoint"].(string), TokenURL: md["token_endpoint"].(string),
			AuthStyle: oauth2.AuthStyleInParams}}
	// 5. Authorization with PKCE, through consent and the upstream login.
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", a.resource))
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	next, consented := authURL, false
	var final *url.URL
	for range 10 {
		if strings.HasPrefix(next, redirect) {
			final, _ = url.Parse(next)
			break
		}
		resp, err := browser.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && strings.Contains(string(page), `<form id="consent"`) {
			if !strings.Contains(string(page), clientName) || !strings.Contains(string(page), "127.0.0.1:33418") {
				t.Fatal("consent page does not name the client and redirect host")
			}
			form := url.Values{}
			consent := string(page)[strings.Index(string(page), `<form id="consent"`):strings.Index(string(page), `<form id="deny"`)]
			for _, f := range regexp.MustCompile(`name="([a-z_]+)" value="([^"]*)"`).FindAllStringSubmatch(consent, -1) {
				form.Set(f[1], f[2])
			}
			resp, err = browser.PostForm(issuer+"/consent", form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			consented = true
		}
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("GET %s: %d, no redirect", next, resp.StatusCode)
		}
		next = loc.String()
	}
	if final == nil || !consented {
		t.Fatal("the flow did not come back to the client through the consent page")
	}
	q := final.Query()
	if q.Get("iss") != issuer || q.Get("state") != "state-1" || q.Get("code") == "" {
		t.Fatalf("authorization response lacks iss/state/code: error=%q", q.Get("error"))
	}
	// 6. Token.
	tok, err := conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", a.resource))
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	// 7. initialize with the official Go SDK client.
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "v0"}, nil)
	session, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint: a.resource, HTTPClient: conf.Client(t.Context(), tok), DisableStandaloneSSE: true, MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	t.Cleanup(func() { session.Close() })
	return &loggedIn{a: a, logs: logs, conf: conf, tok: tok, mcp: session,
		secrets: []string{tok.AccessToken, tok.RefreshToken, q.Get("code"), verifier}}
}

// callTool calls the tool name and decodes its structured result into v.
func (l *loggedIn) callTool(t *testing.T, name string, v any) {
	t.Helper()
	res, err := l.mcp.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: map[string]any{}})
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	if res.IsError {
		b, _ := json.Marshal(res.Content)
		t.Fatalf("tools/call %s: tool error %s", name, b)
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// post sends tools/call of name as a raw HTTP request (the server is
// stateless), to see the HTTP status and headers an SDK client hides.
func (l *loggedIn) post(t *testing.T, name string) (*http.Response, []byte) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + name + `","arguments":{}}}`
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, l.a.resource, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+l.tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// session returns the upstream session the client's access token names
// (its tsid claim).
func (l *loggedIn) session(t *testing.T) *upstream.Session {
	t.Helper()
	parts := strings.Split(l.tok.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatal("the access token is not a JWT")
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		TSID string `json:"tsid"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.TSID == "" {
		t.Fatal("the access token has no tsid claim")
	}
	s, err := l.a.store.GetSession(t.Context(), claims.TSID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// expire marks the stored upstream access token expired, as time would,
// and returns the session as it was.
func (l *loggedIn) expire(t *testing.T) upstream.Session {
	t.Helper()
	s := l.session(t)
	old := *s
	s.Expiry = time.Now().Add(-time.Minute)
	if err := l.a.store.UpdateSession(t.Context(), s, time.Hour); err != nil {
		t.Fatal(err)
	}
	return old
}

// recorder is a backend that records what it receives and answers by
// forwarding the Authorization header to the dev provider's userinfo
// endpoint.
type recorder struct {
	srv      *httptest.Server
	mu       sync.Mutex
	upstream string
	seen     []seenRequest
}

type seenRequest struct {
	authorization string
	dump          string // the whole request: line, headers, body
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dump, _ := httputil.DumpRequest(r, true)
		rec.mu.Lock()
		rec.seen = append(rec.seen, seenRequest{authorization: r.Header.Get("Authorization"), dump: string(dump)})
		target := rec.upstream
		rec.mu.Unlock()
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, target, nil)
		req.Header.Set("Authorization", r.Header.Get("Authorization"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, "userinfo unreachable", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) setUpstream(u string) {
	rec.mu.Lock()
	rec.upstream = u
	rec.mu.Unlock()
}

func (rec *recorder) requests() []seenRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.seen)
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-upstream", "nope"}, {"-upstream", "oidc"}, {"-upstream", "github"}, {"-cimd-allow", "x"}, {"extra"}, {"-client-id", "x"},
		{"-redis-addr", "127.0.0.1:6379"}, {"-redis-addr", "127.0.0.1:6379", "-signing-key", "k.pem"}} {
		if _, err := parseFlags(args, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	// The Redis encryption key: 32 bytes of base64, never quoted in an error.
	redis := []string{"-redis-addr", "127.0.0.1:6379", "-signing-key", "k.pem"}
	for _, key := range []string{"c2hvcnQ=", "not base64 at all!", base64.StdEncoding.EncodeToString(make([]byte, 33))} {
		_, err := parseFlags(redis, func(string) string { return key }, io.Discard)
		if err == nil || strings.Contains(err.Error(), key) {
			t.Errorf("key %q: %v", key, err)
		}
	}
	key := make([]byte, 32)
	key[0] = 0xfb // '+' / '-' in the two alphabets
	for _, enc := range []string{base64.StdEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key)} {
		o, err := parseFlags(redis, func(string) string { return enc }, io.Discard)
		if err != nil || !bytes.Equal(o.redisKey.Secret, key) {
			t.Errorf("key %q: %v", enc, err)
		}
	}
	if _, err := start(options{addr: "127.0.0.1:0", upstream: "dev", backend: "/relative"}, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a relative -backend accepted")
	}
	o, err := parseFlags([]string{"-upstream", "github", "-upstream-client-id", "x"}, func(k string) string {
		if k == secretEnv {
			return "s3cret"
		}
		return ""
	}, io.Discard)
	if err != nil || o.upstreamSecret != "s3cret" {
		t.Fatalf("secret from the environment: %v", err)
	}
}
