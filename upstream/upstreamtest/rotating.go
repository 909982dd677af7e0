package upstreamtest

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// RotatingUpstream is an upstream provider's token endpoint and API, for
// testing what holds upstream tokens (upstream.Transport and the stores):
// refresh tokens rotate on every use, and presenting a refresh token that
// was already used revokes the whole grant (as GitHub, Google and OAuth 2.1
// §4.3.1 public clients do). The API accepts only the current access token
// of a live grant.
//
// Its counters and Status may be used at any time; the other knobs must be
// set before the first request.
type RotatingUpstream struct {
	srv *httptest.Server

	// Refreshes counts the refresh requests that reached the token endpoint.
	Refreshes atomic.Int64
	// APICalls counts the requests to the API.
	APICalls atomic.Int64
	// Status, if non-zero, is the status the token endpoint answers with
	// (and nothing else). Zero means the endpoint works.
	Status atomic.Int64

	// OmitRefreshToken makes a refresh answer without a new refresh_token
	// (the old one stays current). False means every refresh rotates it.
	OmitRefreshToken bool
	// Delay is the token endpoint's latency. Zero means none.
	Delay time.Duration
	// ExpiresIn is the expires_in of issued access tokens, in seconds. Zero
	// means 3600.
	ExpiresIn int
	// OnRefresh, if not nil, is called after a rotation, before the answer
	// is sent. Nil means nothing is called.
	OnRefresh func()

	mu     sync.Mutex
	grants map[string]*rotatingGrant // by grant ID
	byRT   map[string]*rotatingGrant // every refresh token ever issued
	byAT   map[string]*rotatingGrant // current access tokens
}

type rotatingGrant struct {
	id      string
	current string // current refresh token
	access  string
	revoked bool
}

// NewRotatingUpstream starts a RotatingUpstream on a loopback address; it
// is closed when the test ends.
func NewRotatingUpstream(t testing.TB) *RotatingUpstream {
	f := &RotatingUpstream{grants: map[string]*rotatingGrant{}, byRT: map[string]*rotatingGrant{}, byAT: map[string]*rotatingGrant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("/api/", f.api)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the base URL of the server, http://127.0.0.1:port.
func (f *RotatingUpstream) URL() string { return f.srv.URL }

// Close stops the server, for tests of an unreachable upstream; the test's
// cleanup would close it anyway, and a second Close is harmless.
func (f *RotatingUpstream) Close() { f.srv.Close() }

// TokenURL is the token endpoint's URL; it accepts only the refresh_token
// grant.
func (f *RotatingUpstream) TokenURL() string { return f.srv.URL + "/token" }

// APIURL is an API URL: it answers 200 with the caller's grant ID for a
// current access token of a live grant, 401 otherwise.
func (f *RotatingUpstream) APIURL() string { return f.srv.URL + "/api/me" }

// Grant starts a grant and returns its ID and its first access and refresh
// tokens.
func (f *RotatingUpstream) Grant() (id, access, refresh string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := &rotatingGrant{id: rand.Text()}
	g.access, g.current = "at-"+rand.Text(), "rt-"+rand.Text()
	f.grants[g.id], f.byRT[g.current], f.byAT[g.access] = g, g, g
	return g.id, g.access, g.current
}

// State returns the current tokens of the grant with the given ID (from
// Grant) and whether it is revoked.
func (f *RotatingUpstream) State(id string) (access, refresh string, revoked bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.grants[id]
	return g.access, g.current, g.revoked
}

// Revoke revokes the grant with the given ID (from Grant), as a user
// revoking the app's access at the provider would: its tokens stop working.
func (f *RotatingUpstream) Revoke(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.grants[id].revoked = true
}

func (f *RotatingUpstream) token(w http.ResponseWriter, r *http.Request) {
	if f.Delay > 0 {
		time.Sleep(f.Delay)
	}
	if s := f.Status.Load(); s != 0 {
		w.WriteHeader(int(s))
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "refresh_token" {
		rotatingError(w, "unsupported_grant_type")
		return
	}
	f.Refreshes.Add(1)
	rt := r.PostForm.Get("refresh_token")
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.byRT[rt]
	switch {
	case g == nil || g.revoked:
		rotatingError(w, "invalid_grant")
		return
	case rt != g.current:
		// Reuse of a rotated refresh token: revoke the grant.
		g.revoked = true
		delete(f.byAT, g.access)
		rotatingError(w, "invalid_grant")
		return
	}
	delete(f.byAT, g.access)
	g.access = "at-" + rand.Text()
	f.byAT[g.access] = g
	resp := map[string]any{"access_token": g.access, "token_type": "bearer", "expires_in": f.expires()}
	if !f.OmitRefreshToken {
		g.current = "rt-" + rand.Text()
		f.byRT[g.current] = g
		resp["refresh_token"] = g.current
	}
	if f.OnRefresh != nil {
		f.OnRefresh()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (f *RotatingUpstream) expires() int {
	if f.ExpiresIn == 0 {
		return 3600
	}
	return f.ExpiresIn
}

func rotatingError(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

func (f *RotatingUpstream) api(w http.ResponseWriter, r *http.Request) {
	f.APICalls.Add(1)
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	g := f.byAT[tok]
	f.mu.Unlock()
	if !ok || g == nil || g.revoked {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	_, _ = w.Write([]byte(g.id))
}
