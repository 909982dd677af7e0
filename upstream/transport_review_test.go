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

// tokenEndpoint is an upstream token endpoint that answers every request
// with handler, and a backend that counts its calls.
type tokenEndpoint struct {
	token    *httptest.Server
	backend  *httptest.Server
	refresh  atomic.Int64
	backends atomic.Int64
}

func newTokenEndpoint(t *testing.T, handler http.HandlerFunc) *tokenEndpoint {
	t.Helper()
	e := &tokenEndpoint{}
	e.token = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.refresh.Add(1)
		handler(w, r)
	}))
	t.Cleanup(e.token.Close)
	e.backend = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.backends.Add(1)
	}))
	t.Cleanup(e.backend.Close)
	return e
}

// expiredSession stores a session whose access token expired, and returns a
// Transport refreshing it at e.
func (e *tokenEndpoint) expiredSession(t *testing.T, store upstream.Store, mod func(*upstream.TransportConfig)) *upstream.Transport {
	t.Helper()
	err := store.PutSession(context.Background(), &upstream.Session{
		TSID: "tsid-review", Upstream: "fake", Subject: "fake|42",
		AccessToken: "at-expired", RefreshToken: "rt-current", TokenType: "bearer",
		Expiry: time.Now().Add(-time.Minute),
	}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg := upstream.TransportConfig{
		Issuer: testIssuer,
		Store:  store,
		Upstreams: map[string]*oauth2.Config{"fake": {
			ClientID: "mcp-server", ClientSecret: "s3cret",
			Endpoint: oauth2.Endpoint{TokenURL: e.token.URL, AuthStyle: oauth2.AuthStyleInParams},
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

// TestRefreshErrorClassification: only an answer saying the grant itself is
// gone (invalid_grant; GitHub's bad_refresh_token, which GitHub sends with
// status 200) asks the user to log in again. Any other failure of the token
// endpoint (a misconfigured client, a proxy's error page, 429, 5xx, a
// timeout) is temporary: 503, the session kept, never a 401 that sends
// every user through a new login.
func TestRefreshErrorClassification(t *testing.T) {
	jsonAnswer := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}
	}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		reauth  bool
	}{
		{"400 invalid_grant", jsonAnswer(400, `{"error":"invalid_grant"}`), true},
		{"GitHub 200 bad_refresh_token", jsonAnswer(200, `{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired."}`), true},
		{"401 invalid_client", jsonAnswer(401, `{"error":"invalid_client"}`), false},
		{"GitHub 200 incorrect_client_credentials", jsonAnswer(200, `{"error":"incorrect_client_credentials"}`), false},
		{"400 proxy error page", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(400)
			_, _ = io.WriteString(w, "<html>Bad Request</html>")
		}, false},
		{"403 WAF", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(403) }, false},
		{"429", jsonAnswer(429, `{"error":"slow_down"}`), false},
		{"500", jsonAnswer(500, `{"error":"server_error"}`), false},
		{"502", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) }, false},
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Second):
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTokenEndpoint(t, tc.handler)
			store := upstream.NewMemoryStore()
			// Only the timeout case has a short RefreshTimeout: every other
			// answer must arrive to be classified, even on a busy machine
			// (the default is 10 s).
			var refreshTimeout time.Duration
			if tc.name == "timeout" {
				refreshTimeout = 300 * time.Millisecond
			}
			tr := e.expiredSession(t, store, func(c *upstream.TransportConfig) { c.RefreshTimeout = refreshTimeout })
			_, err := call(withIdentity(context.Background(), "tsid-review"), tr, e.backend.URL)
			if err == nil {
				t.Fatal("call succeeded")
			}
			if tc.reauth {
				if !errors.Is(err, upstream.ErrReauthenticate) || errors.Is(err, upstream.ErrUnavailable) {
					t.Fatalf("got %v, want ErrReauthenticate only", err)
				}
			} else {
				checkUnavailable(t, tc.name, err)
			}
			if e.refresh.Load() != 1 || e.backends.Load() != 0 {
				t.Fatalf("%d refreshes, %d backend calls", e.refresh.Load(), e.backends.Load())
			}
			s, gerr := store.GetSession(context.Background(), "tsid-review")
			if gerr != nil || s.RefreshToken != "rt-current" {
				t.Fatalf("session after a failed refresh: %v, %v", s, gerr)
			}
		})
	}
}

// TestIdentityWithoutRawTokenRefused: an identity put in the context
// without its raw token (a custom middleware that did not use
// TokenInfo.WithToken) leaves the passthrough guard nothing to look for;
// the Transport must refuse rather than send blind, as tokenexchange does.
func TestIdentityWithoutRawTokenRefused(t *testing.T) {
	f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(time.Hour), nil)
	info := &authn.TokenInfo{Issuer: testIssuer, Subject: "fake|42", Claims: map[string]any{"sub": "fake|42", "tsid": f.tsid}}
	ctx := authn.NewContext(context.Background(), info)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.up.APIURL(), nil)
	req.Header.Set("X-Forwarded-Access-Token", inboundToken) // the handler forwards the inbound token
	resp, err := f.tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, upstream.ErrNoIdentity) || f.up.APICalls.Load() != 0 {
		t.Fatalf("identity without raw token: err %v, %d backend calls", err, f.up.APICalls.Load())
	}
	if _, err := f.tr.TokenSource(ctx).Token(); err != nil {
		t.Fatalf("TokenSource needs no raw token (it sends nothing): %v", err)
	}
}

// TestSessionWithoutSubjectRefused: the Transport documents that a session
// is served only to a caller whose sub equals the session's Subject; a
// session stored without a Subject must not be served to any caller that
// names its tsid, nor a caller without a sub.
func TestSessionWithoutSubjectRefused(t *testing.T) {
	store := upstream.NewMemoryStore()
	f := newFixture(t, store, time.Now().Add(time.Hour), nil)
	s, err := store.GetSession(context.Background(), f.tsid)
	if err != nil {
		t.Fatal(err)
	}
	s.Subject = ""
	if err := store.PutSession(context.Background(), s, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"attacker|1", ""} {
		info := (&authn.TokenInfo{Issuer: testIssuer, Subject: sub, Claims: map[string]any{"tsid": f.tsid}}).WithToken(inboundToken)
		_, err := call(authn.NewContext(context.Background(), info), f.tr, f.up.APIURL())
		if !errors.Is(err, upstream.ErrReauthenticate) || f.up.APICalls.Load() != 0 {
			t.Fatalf("sub %q got a session without Subject: err %v, %d backend calls", sub, err, f.up.APICalls.Load())
		}
	}
}

// TestForeignIssuerRefused: without a Server the Transport still knows
// whose tokens carry a meaningful tsid: a token of another issuer the
// verifier trusts (another authorization server minting tsid claims, with
// the victim's sub) gets nothing. A Transport that cannot tell is refused
// at construction.
func TestForeignIssuerRefused(t *testing.T) {
	f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(time.Hour), nil)
	for _, iss := range []string{"https://other-as.example.com", "", testIssuer + "/"} {
		info := (&authn.TokenInfo{Issuer: iss, Subject: "fake|42", Claims: map[string]any{"tsid": f.tsid}}).WithToken(inboundToken)
		_, err := call(authn.NewContext(context.Background(), info), f.tr, f.up.APIURL())
		if !errors.Is(err, upstream.ErrReauthenticate) || f.up.APICalls.Load() != 0 {
			t.Fatalf("issuer %q: err %v, %d backend calls", iss, err, f.up.APICalls.Load())
		}
	}
	resp, err := call(withIdentity(context.Background(), f.tsid), f.tr, f.up.APIURL())
	expectGrant(t, resp, err, f.grantID)
	_, err = upstream.NewTransport(upstream.TransportConfig{
		Store:     upstream.NewMemoryStore(),
		Upstreams: map[string]*oauth2.Config{"fake": {Endpoint: oauth2.Endpoint{TokenURL: "https://idp.example.com/token"}}},
	}, nil)
	if err == nil {
		t.Fatal("NewTransport without Issuer or Server accepted")
	}
}

// TestTwoTransportsOneMemoryStore: an application that builds more than one
// Transport over the same in-memory store (one per handler, say) still
// refreshes each session once: the single flight is per Transport, so the
// store itself must serialise refreshes, or two Transports spend the same
// rotating refresh token and the upstream revokes the grant.
func TestTwoTransportsOneMemoryStore(t *testing.T) {
	f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(-time.Minute), nil)
	f.up.Delay = 50 * time.Millisecond
	second := f.transport(t, f.store, nil)
	ctx := withIdentity(context.Background(), f.tsid)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := f.tr
			if i%2 == 1 {
				tr = second
			}
			resp, err := call(ctx, tr, f.up.APIURL())
			expectGrant(t, resp, err, f.grantID)
		}()
	}
	wg.Wait()
	if _, _, revoked := f.up.State(f.grantID); revoked || f.up.Refreshes.Load() != 1 {
		t.Fatalf("%d refreshes, grant revoked %v", f.up.Refreshes.Load(), revoked)
	}
}

// TestRefreshDoesNotFollowRedirects: a token endpoint answering the
// refresh with a 307/308 to another host (an open redirect, a hijacked
// route) must not make the Transport re-send the form, which carries the
// refresh token and the client secret, to that host.
func TestRefreshDoesNotFollowRedirects(t *testing.T) {
	var stolen atomic.Int64
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.PostForm.Get("refresh_token") != "" || r.PostForm.Get("client_secret") != "" {
			stolen.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"stolen-at","token_type":"bearer","expires_in":3600}`)
	}))
	t.Cleanup(thief.Close)
	thiefURL := strings.Replace(thief.URL, "127.0.0.1", "localhost", 1)
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		e := newTokenEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, thiefURL+"/token", status)
		})
		tr := e.expiredSession(t, upstream.NewMemoryStore(), nil)
		_, err := call(withIdentity(context.Background(), "tsid-review"), tr, e.backend.URL)
		if stolen.Load() != 0 {
			t.Fatalf("%d: the refresh form was re-sent to the redirect target", status)
		}
		checkUnavailable(t, fmt.Sprint(status), err)
	}
}

// TestShortLivedTokensNotRefreshedPerCall: an upstream whose access tokens
// live less than RefreshSkew (10s tokens, 30s default skew) must not cost a
// refresh on every backend call: a token the Transport just obtained is
// used for (at least) half its lifetime.
func TestShortLivedTokensNotRefreshedPerCall(t *testing.T) {
	f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(-time.Minute), nil)
	f.up.ExpiresIn = 10
	ctx := withIdentity(context.Background(), f.tsid)
	for range 5 {
		resp, err := call(ctx, f.tr, f.up.APIURL())
		expectGrant(t, resp, err, f.grantID)
	}
	if n := f.up.Refreshes.Load(); n != 1 {
		t.Fatalf("%d refreshes for 5 calls within a 10s token's lifetime, want 1", n)
	}
}
