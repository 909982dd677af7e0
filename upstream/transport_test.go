package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/upstream"
)

const inboundToken = "inbound-mcp-access-token-0123456789"

// withIdentity returns ctx carrying a verified caller whose access token
// names session tsid.
func withIdentity(ctx context.Context, tsid string) context.Context {
	claims := map[string]any{"sub": "fake|42"}
	if tsid != "" {
		claims["tsid"] = tsid
	}
	info := (&authn.TokenInfo{Subject: "fake|42", Claims: claims}).WithToken(inboundToken)
	return authn.NewContext(ctx, info)
}

type fixture struct {
	up      *fakeUpstream
	store   upstream.Store
	tr      *upstream.Transport
	tsid    string
	grantID string
}

// newFixture stores a session for a fresh upstream grant whose access token
// expires at expiry, and builds a Transport over store.
func newFixture(t testing.TB, store upstream.Store, expiry time.Time, mod func(*upstream.TransportConfig)) *fixture {
	t.Helper()
	f := &fixture{up: newFakeUpstream(t), store: store, tsid: "tsid-" + t.Name()}
	var at, rt string
	f.grantID, at, rt = f.up.grant()
	err := store.PutSession(context.Background(), &upstream.Session{
		TSID: f.tsid, Upstream: "fake", Subject: "fake|42",
		AccessToken: at, RefreshToken: rt, TokenType: "bearer", Expiry: expiry,
	}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.tr = f.transport(t, store, mod)
	return f
}

func (f *fixture) transport(t testing.TB, store upstream.Store, mod func(*upstream.TransportConfig)) *upstream.Transport {
	t.Helper()
	cfg := upstream.TransportConfig{
		Store: store,
		Upstreams: map[string]*oauth2.Config{"fake": {
			ClientID: "mcp-server", ClientSecret: "s3cret",
			Endpoint: oauth2.Endpoint{TokenURL: f.up.TokenURL(), AuthStyle: oauth2.AuthStyleInParams},
		}},
	}
	if mod != nil {
		mod(&cfg)
	}
	tr, err := upstream.NewTransport(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// call sends GET /api/me through rt for the caller of tsid.
func call(ctx context.Context, rt http.RoundTripper, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return rt.RoundTrip(req)
}

func expectGrant(t testing.TB, resp *http.Response, err error, grantID string) {
	t.Helper()
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(b) != grantID {
		t.Fatalf("backend answered %d %q, want 200 with the grant", resp.StatusCode, b)
	}
}

func TestTransportSendsUpstreamToken(t *testing.T) {
	f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(time.Hour), nil)
	ctx := withIdentity(context.Background(), f.tsid)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.up.APIURL(), nil)
	// A handler that copied the inbound Authorization: it is replaced.
	req.Header.Set("Authorization", "Bearer "+inboundToken)
	resp, err := f.tr.RoundTrip(req)
	expectGrant(t, resp, err, f.grantID)
	if got := req.Header.Get("Authorization"); got != "Bearer "+inboundToken {
		t.Fatalf("caller's request was modified: Authorization %q", got)
	}
	if n := f.up.refreshes.Load(); n != 0 {
		t.Fatalf("%d refreshes for a fresh token", n)
	}
}

type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

// TestTransportRefuses: nothing reaches the backend without a verified
// identity, without a session, with the inbound token elsewhere on the
// request, or to a refused destination; the body is closed every time.
func TestTransportRefuses(t *testing.T) {
	f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(time.Hour), func(c *upstream.TransportConfig) {})
	pinned := f.transport(t, f.store, func(c *upstream.TransportConfig) { c.Hosts = []string{"api.example.com"} })
	for _, tc := range []struct {
		name string
		tr   *upstream.Transport
		ctx  context.Context
		url  string
		mod  func(*http.Request)
		want error
	}{
		{"no identity", f.tr, context.Background(), f.up.APIURL(), nil, upstream.ErrNoIdentity},
		{"no tsid claim", f.tr, withIdentity(context.Background(), ""), f.up.APIURL(), nil, upstream.ErrReauthenticate},
		{"unknown session", f.tr, withIdentity(context.Background(), "nope"), f.up.APIURL(), nil, upstream.ErrReauthenticate},
		{"another subject's session", f.tr, authn.NewContext(context.Background(),
			(&authn.TokenInfo{Subject: "other|7", Claims: map[string]any{"tsid": f.tsid}}).WithToken(inboundToken)),
			f.up.APIURL(), nil, upstream.ErrReauthenticate},
		{"inbound token in another header", f.tr, withIdentity(context.Background(), f.tsid), f.up.APIURL(),
			func(r *http.Request) { r.Header.Set("X-Forwarded-Token", inboundToken) }, upstream.ErrPassthrough},
		{"inbound token in the query", f.tr, withIdentity(context.Background(), f.tsid), f.up.APIURL() + "?t=" + inboundToken, nil, upstream.ErrPassthrough},
		{"inbound token in a cookie", f.tr, withIdentity(context.Background(), f.tsid), f.up.APIURL(),
			func(r *http.Request) { r.Header.Set("Cookie", "a=b; s="+inboundToken) }, upstream.ErrPassthrough},
		{"plain http off loopback", f.tr, withIdentity(context.Background(), f.tsid), "http://api.example.com/x", nil, upstream.ErrDestinationNotAllowed},
		{"host not pinned", pinned, withIdentity(context.Background(), f.tsid), f.up.APIURL(), nil, upstream.ErrDestinationNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.up.apiCalls.Load()
			body := &closeRecorder{Reader: strings.NewReader("x")}
			req, _ := http.NewRequestWithContext(tc.ctx, http.MethodPost, tc.url, body)
			if tc.mod != nil {
				tc.mod(req)
			}
			resp, err := tc.tr.RoundTrip(req)
			if resp != nil || !errors.Is(err, tc.want) {
				t.Fatalf("RoundTrip = %v, %v; want error %v", resp, err, tc.want)
			}
			if strings.Contains(err.Error(), inboundToken) {
				t.Fatalf("error quotes the inbound token: %v", err)
			}
			if !body.closed.Load() {
				t.Error("request body not closed")
			}
			if f.up.apiCalls.Load() != before {
				t.Error("the request reached the backend")
			}
		})
	}
}

// TestTransportRefreshOnce: 200 concurrent calls for one session with an
// expired token cause exactly one refresh; every call carries the new token
// (the fake API accepts only the grant's current access token) and the
// grant survives.
func TestTransportRefreshOnce(t *testing.T) {
	f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(-time.Minute), nil)
	f.up.delay = 20 * time.Millisecond // keep the refresh in flight while callers pile up
	oldAT, oldRT, _ := f.up.state(f.grantID)
	ctx := withIdentity(context.Background(), f.tsid)
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := call(ctx, f.tr, f.up.APIURL())
			expectGrant(t, resp, err, f.grantID)
		}()
	}
	wg.Wait()
	if n := f.up.refreshes.Load(); n != 1 {
		t.Fatalf("%d refreshes reached the upstream, want exactly 1", n)
	}
	newAT, newRT, revoked := f.up.state(f.grantID)
	if revoked || newAT == oldAT || newRT == oldRT {
		t.Fatalf("grant revoked=%v, rotated=%v", revoked, newRT != oldRT)
	}
	s, err := f.store.GetSession(context.Background(), f.tsid)
	if err != nil || s.AccessToken != newAT || s.RefreshToken != newRT || s.Version != 2 {
		t.Fatalf("stored session: %v, %v", s, err)
	}
}

func TestTransportRefreshWithinSkew(t *testing.T) {
	f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(90*time.Second), func(c *upstream.TransportConfig) {
		c.RefreshSkew = 2 * time.Minute
	})
	resp, err := call(withIdentity(context.Background(), f.tsid), f.tr, f.up.APIURL())
	if err == nil {
		resp.Body.Close()
	}
	if n := f.up.refreshes.Load(); n != 1 || err != nil {
		t.Fatalf("token within the skew: %d refreshes, err %v", n, err)
	}
	g := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(90*time.Second), nil) // default skew 30s
	resp, err = call(withIdentity(context.Background(), g.tsid), g.tr, g.up.APIURL())
	expectGrant(t, resp, err, g.grantID)
	if n := g.up.refreshes.Load(); n != 0 {
		t.Fatalf("token outside the default skew refreshed %d times", n)
	}
}

// ttlStore records the ttl of every UpdateSession.
type ttlStore struct {
	upstream.Store
	mu   sync.Mutex
	ttls []time.Duration
}

func (s *ttlStore) UpdateSession(ctx context.Context, sess *upstream.Session, ttl time.Duration) error {
	s.mu.Lock()
	s.ttls = append(s.ttls, ttl)
	s.mu.Unlock()
	return s.Store.UpdateSession(ctx, sess, ttl)
}

// TestTransportKeepsRefreshToken: an upstream that rotates nothing (no
// refresh_token in the answer) leaves the old refresh token stored, and the
// session keeps the refresh token's lifetime, not the access token's.
func TestTransportKeepsRefreshToken(t *testing.T) {
	store := &ttlStore{Store: upstream.NewMemoryStore()}
	f := newFixture(t, store, time.Now().Add(-time.Second), func(c *upstream.TransportConfig) {
		c.SessionTTL = 72 * time.Hour
	})
	f.up.omitRefreshToken = true
	f.up.expiresIn = 60
	_, rt, _ := f.up.state(f.grantID)
	resp, err := call(withIdentity(context.Background(), f.tsid), f.tr, f.up.APIURL())
	expectGrant(t, resp, err, f.grantID)
	s, err := store.GetSession(context.Background(), f.tsid)
	if err != nil || s.RefreshToken != rt {
		t.Fatalf("refresh token not kept: %v", err)
	}
	if time.Until(s.Expiry) > 61*time.Second {
		t.Fatalf("access token expiry %v", s.Expiry)
	}
	if len(store.ttls) != 1 || store.ttls[0] != 72*time.Hour {
		t.Fatalf("session written with ttl %v, want the refresh lifetime 72h", store.ttls)
	}
}

// TestTransportRevokedGrant: a refresh the upstream refuses (the grant was
// revoked) is ErrReauthenticate, answered 401 invalid_token telling the
// client to log in again; nothing reaches the backend.
func TestTransportRevokedGrant(t *testing.T) {
	f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(-time.Second), nil)
	f.up.mu.Lock()
	f.up.grants[f.grantID].revoked = true
	f.up.mu.Unlock()
	_, err := call(withIdentity(context.Background(), f.tsid), f.tr, f.up.APIURL())
	if !errors.Is(err, upstream.ErrReauthenticate) || errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("revoked grant: %v", err)
	}
	if f.up.apiCalls.Load() != 0 {
		t.Fatal("backend called")
	}
	w := httptest.NewRecorder()
	if !upstream.WriteError(w, err, upstream.ErrorOptions{ResourceMetadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"}) {
		t.Fatal("WriteError did not handle ErrReauthenticate")
	}
	ch := w.Header().Get("WWW-Authenticate")
	if w.Code != http.StatusUnauthorized || !strings.Contains(ch, `error="invalid_token"`) ||
		!strings.Contains(ch, "log in again") || !strings.Contains(ch, `resource_metadata="https://mcp.example.com/`) {
		t.Fatalf("answer %d, WWW-Authenticate %q", w.Code, ch)
	}
	for _, secret := range []string{"rt-", "at-", inboundToken} {
		if strings.Contains(err.Error(), secret) || strings.Contains(w.Body.String(), secret) {
			t.Fatalf("a token leaked into the error or response")
		}
	}
}

// downSessionStore fails every call with ErrUnavailable while down is set.
type downSessionStore struct {
	upstream.Store
	down atomic.Bool
}

func (s *downSessionStore) GetSession(ctx context.Context, tsid string) (*upstream.Session, error) {
	if s.down.Load() {
		return nil, fmt.Errorf("test: %w: connection refused", upstream.ErrUnavailable)
	}
	return s.Store.GetSession(ctx, tsid)
}

// TestTransportUnavailable: storage down, or the upstream token endpoint
// failing with 5xx, is ErrUnavailable (503 with Retry-After), never 401.
func TestTransportUnavailable(t *testing.T) {
	store := &downSessionStore{Store: upstream.NewMemoryStore()}
	f := newFixture(t, store, time.Now().Add(-time.Second), nil)
	ctx := withIdentity(context.Background(), f.tsid)

	store.down.Store(true)
	_, err := call(ctx, f.tr, f.up.APIURL())
	checkUnavailable(t, "storage down", err)
	store.down.Store(false)

	f.up.status.Store(http.StatusBadGateway)
	_, err = call(ctx, f.tr, f.up.APIURL())
	checkUnavailable(t, "token endpoint 502", err)
	f.up.status.Store(0)

	// The grant is intact afterwards.
	resp, err := call(ctx, f.tr, f.up.APIURL())
	expectGrant(t, resp, err, f.grantID)
	if f.up.apiCalls.Load() != 1 {
		t.Fatalf("backend reached %d times, want only the last call", f.up.apiCalls.Load())
	}
}

func checkUnavailable(t *testing.T, name string, err error) {
	t.Helper()
	if !errors.Is(err, upstream.ErrUnavailable) || errors.Is(err, upstream.ErrReauthenticate) {
		t.Fatalf("%s: %v, want ErrUnavailable", name, err)
	}
	w := httptest.NewRecorder()
	if !upstream.WriteError(w, err, upstream.ErrorOptions{}) || w.Code != http.StatusServiceUnavailable ||
		w.Header().Get("Retry-After") != "5" || w.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("%s: answered %d, Retry-After %q", name, w.Code, w.Header().Get("Retry-After"))
	}
}

// TestTransportWaiterDeadline: a caller waiting for a slow refresh returns
// at its own deadline, while the refresh completes for the others.
func TestTransportWaiterDeadline(t *testing.T) {
	f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(-time.Second), nil)
	f.up.delay = 2 * time.Second
	ctx, cancel := context.WithTimeout(withIdentity(context.Background(), f.tsid), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := call(ctx, f.tr, f.up.APIURL())
	if el := time.Since(start); el > time.Second {
		t.Fatalf("returned after %v, past its 50ms deadline", el)
	}
	checkUnavailable(t, "deadline", err)
	// The refresh went on without the impatient caller.
	resp, err := call(withIdentity(context.Background(), f.tsid), f.tr, f.up.APIURL())
	expectGrant(t, resp, err, f.grantID)
	if n := f.up.refreshes.Load(); n != 1 {
		t.Fatalf("%d refreshes", n)
	}
}

// TestHandleErrors: a handler that turns a failed backend call into a 200
// (as an MCP SDK does with a tool error) is overridden with 401 or 503.
func TestHandleErrors(t *testing.T) {
	f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(-time.Second), nil)
	client := &http.Client{Transport: f.tr}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, f.up.APIURL(), nil)
		resp, err := client.Do(req)
		if err != nil {
			_, _ = io.WriteString(w, `{"result":{"isError":true}}`)
			return
		}
		resp.Body.Close()
		_, _ = io.WriteString(w, `{"result":{}}`)
	})
	h := upstream.HandleErrors(upstream.ErrorOptions{})(handler)
	serve := func(tsid string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil).WithContext(withIdentity(context.Background(), tsid))
		h.ServeHTTP(w, r)
		return w
	}
	if w := serve(f.tsid); w.Code != http.StatusOK || w.Body.String() != `{"result":{}}` {
		t.Fatalf("success passed as %d %q", w.Code, w.Body)
	}
	if w := serve("gone"); w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_token") ||
		strings.Contains(w.Body.String(), "isError") {
		t.Fatalf("lost session answered %d %q", w.Code, w.Body)
	}
	f.up.status.Store(http.StatusServiceUnavailable)
	_ = f.store.UpdateSession(context.Background(), &upstream.Session{TSID: f.tsid, Upstream: "fake", RefreshToken: "x", Version: 2}, time.Hour)
	if w := serve(f.tsid); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("outage answered %d %q", w.Code, w.Body)
	}
}

func TestTokenSource(t *testing.T) {
	f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(-time.Second), nil)
	ctx := withIdentity(context.Background(), f.tsid)
	tok, err := f.tr.TokenSource(ctx).Token()
	if err != nil {
		t.Fatal(err)
	}
	at, _, _ := f.up.state(f.grantID)
	if tok.AccessToken != at || tok.RefreshToken != "" || tok.Type() != "Bearer" {
		t.Fatalf("token %q type %q refresh set %v", tok.AccessToken, tok.Type(), tok.RefreshToken != "")
	}
	// Through oauth2.NewClient, as an SDK would use it.
	resp, err := oauth2.NewClient(ctx, f.tr.TokenSource(ctx)).Get(f.up.APIURL())
	expectGrant(t, resp, err, f.grantID)
	if _, err := f.tr.TokenSource(context.Background()).Token(); !errors.Is(err, upstream.ErrNoIdentity) {
		t.Fatalf("no identity: %v", err)
	}
}

func TestNewTransportValidates(t *testing.T) {
	good := map[string]*oauth2.Config{"": {Endpoint: oauth2.Endpoint{TokenURL: "https://idp.example.com/token"}}}
	for name, cfg := range map[string]upstream.TransportConfig{
		"no store":        {Upstreams: good},
		"no upstreams":    {Store: upstream.NewMemoryStore()},
		"no token URL":    {Store: upstream.NewMemoryStore(), Upstreams: map[string]*oauth2.Config{"": {}}},
		"negative skew":   {Store: upstream.NewMemoryStore(), Upstreams: good, RefreshSkew: -time.Second},
		"bad hosts entry": {Store: upstream.NewMemoryStore(), Upstreams: good, Hosts: []string{"https://x"}},
	} {
		if _, err := upstream.NewTransport(cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "upstream: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestTransportWithServer: a Transport built from the Server alone (its
// store, its provider's discovered token endpoint and credentials)
// forwards the logged-in user's upstream token and refreshes it.
func TestTransportWithServer(t *testing.T) {
	e := newEnv(t, nil)
	redirect := "http://127.0.0.1:9/cb"
	clientID := e.publicClient(redirect)
	verifier, challenge := pkce()
	tok := e.exchange(clientID, redirect, e.login(clientID, redirect, challenge, nil), verifier)
	info, err := e.verifier().Verify(context.Background(), tok["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := upstream.NewTransport(upstream.TransportConfig{Server: e.as, Now: func() time.Time { return e.clock.Now() }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := authn.NewContext(context.Background(), info)
	for i, advance := range []time.Duration{0, 2 * time.Hour} {
		e.clock.Advance(advance)
		resp, err := call(ctx, tr, e.idp.URL()+"/userinfo")
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: upstream userinfo answered %d", i, resp.StatusCode)
		}
	}
	if n := e.idp.RefreshRequests(); n != 1 {
		t.Fatalf("%d upstream refreshes, want 1 (after the expiry only)", n)
	}
	// A token of another issuer naming the same tsid gets nothing.
	foreign := info.WithToken("foreign-token-0123456789")
	foreign.Issuer = "https://other-idp.example.com"
	if _, err := call(authn.NewContext(context.Background(), foreign), tr, e.idp.URL()+"/userinfo"); !errors.Is(err, upstream.ErrReauthenticate) {
		t.Fatalf("foreign issuer: %v", err)
	}
}

// TestHandleErrorsAfterWrite: a response the handler already started is
// left alone (its status was sent); a handler that writes nothing after a
// failure gets the failure's answer.
func TestHandleErrorsAfterWrite(t *testing.T) {
	f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(time.Hour), nil)
	client := &http.Client{Transport: f.tr}
	started := upstream.HandleErrors(upstream.ErrorOptions{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, f.up.APIURL(), nil)
		if _, err := client.Do(req); err == nil {
			t.Error("call for a lost session succeeded")
		}
		_, _ = io.WriteString(w, "partial")
	}))
	silent := upstream.HandleErrors(upstream.ErrorOptions{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Mcp-Session-Id", "s-1")
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, f.up.APIURL(), nil)
		_, _ = client.Do(req)
	}))
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil).WithContext(withIdentity(context.Background(), "gone"))
	w := httptest.NewRecorder()
	started.ServeHTTP(w, r)
	if w.Code != http.StatusAccepted || w.Body.String() != "partial" {
		t.Fatalf("started response changed to %d %q", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	silent.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized || w.Header().Get("Mcp-Session-Id") != "" {
		t.Fatalf("silent handler: %d, headers %v", w.Code, w.Header())
	}
}
