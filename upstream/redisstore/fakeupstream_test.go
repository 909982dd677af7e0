package redisstore_test

// A copy of upstream/transport_fake_test.go (test files cannot be shared
// across modules).

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

// fakeUpstream is an upstream provider's token endpoint and API: refresh
// tokens rotate on every use, and presenting a refresh token that was
// already used revokes the whole grant (as GitHub, Google and OAuth 2.1
// §4.3.1 public clients do). The API accepts only the current access token
// of a live grant.
type fakeUpstream struct {
	srv *httptest.Server

	refreshes atomic.Int64 // refresh requests that reached the token endpoint
	apiCalls  atomic.Int64

	mu     sync.Mutex
	grants map[string]*fakeGrant // by grant ID
	byRT   map[string]*fakeGrant // every refresh token ever issued
	byAT   map[string]*fakeGrant // current access tokens

	// Knobs (set before use).
	omitRefreshToken bool          // answer a refresh without a new refresh_token
	status           atomic.Int64  // non-zero: the token endpoint answers this status
	delay            time.Duration // token endpoint latency
	expiresIn        int           // expires_in of issued tokens; 0 means 3600
	onRefresh        func()        // called after a rotation, before the answer is sent
}

type fakeGrant struct {
	id      string
	current string // current refresh token
	access  string
	revoked bool
	gen     int
}

func newFakeUpstream(t testing.TB) *fakeUpstream {
	f := &fakeUpstream{grants: map[string]*fakeGrant{}, byRT: map[string]*fakeGrant{}, byAT: map[string]*fakeGrant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("/api/", f.api)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeUpstream) TokenURL() string { return f.srv.URL + "/token" }
func (f *fakeUpstream) APIURL() string   { return f.srv.URL + "/api/me" }

// grant starts a grant and returns its first access and refresh tokens.
func (f *fakeUpstream) grant() (id, access, refresh string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := &fakeGrant{id: rand.Text()}
	g.access, g.current = "at-"+rand.Text(), "rt-"+rand.Text()
	f.grants[g.id], f.byRT[g.current], f.byAT[g.access] = g, g, g
	return g.id, g.access, g.current
}

// state returns a grant's current tokens and whether it is revoked.
func (f *fakeUpstream) state(id string) (access, refresh string, revoked bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.grants[id]
	return g.access, g.current, g.revoked
}

func (f *fakeUpstream) token(w http.ResponseWriter, r *http.Request) {
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if s := f.status.Load(); s != 0 {
		w.WriteHeader(int(s))
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "refresh_token" {
		oauthError(w, "unsupported_grant_type")
		return
	}
	f.refreshes.Add(1)
	rt := r.PostForm.Get("refresh_token")
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.byRT[rt]
	switch {
	case g == nil || g.revoked:
		oauthError(w, "invalid_grant")
		return
	case rt != g.current:
		// Reuse of a rotated refresh token: revoke the grant.
		g.revoked = true
		delete(f.byAT, g.access)
		oauthError(w, "invalid_grant")
		return
	}
	g.gen++
	delete(f.byAT, g.access)
	g.access = "at-" + rand.Text()
	f.byAT[g.access] = g
	resp := map[string]any{"access_token": g.access, "token_type": "bearer", "expires_in": f.expires()}
	if !f.omitRefreshToken {
		g.current = "rt-" + rand.Text()
		f.byRT[g.current] = g
		resp["refresh_token"] = g.current
	}
	if f.onRefresh != nil {
		f.onRefresh()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (f *fakeUpstream) expires() int {
	if f.expiresIn == 0 {
		return 3600
	}
	return f.expiresIn
}

func oauthError(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

// api answers 200 with the caller's grant ID for a current access token of
// a live grant, 401 otherwise.
func (f *fakeUpstream) api(w http.ResponseWriter, r *http.Request) {
	f.apiCalls.Add(1)
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
