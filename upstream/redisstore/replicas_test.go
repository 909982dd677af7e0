package redisstore_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/upstream"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore/internal/redistest"
	"github.com/mcpauth-go/mcpauth/upstream/upstreamtest"
)

const inboundToken = "inbound-mcp-access-token-0123456789"

// testIssuer is the issuer of the test identities' access tokens.
const testIssuer = "https://as.example.com"

func withIdentity(ctx context.Context, tsid string) context.Context {
	info := (&authn.TokenInfo{Issuer: testIssuer, Subject: "fake|42", Claims: map[string]any{"tsid": tsid}}).WithToken(inboundToken)
	return authn.NewContext(ctx, info)
}

// replica is one MCP server process: its own Redis client (connection
// pool), its own Store and its own Transport (its own single flight).
type replica struct {
	store *redisstore.Store
	tr    *upstream.Transport
}

func newReplica(t testing.TB, addr string, key redisstore.Key, up *upstreamtest.RotatingUpstream) *replica {
	t.Helper()
	s, err := redisstore.New(redisstore.Config{Client: newClient(t, addr), Keys: []redisstore.Key{key}, LockTTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := upstream.NewTransport(upstream.TransportConfig{
		Issuer: testIssuer,
		Store:  s,
		Upstreams: map[string]*oauth2.Config{"fake": {
			ClientID: "mcp-server", ClientSecret: "s3cret",
			Endpoint: oauth2.Endpoint{TokenURL: up.TokenURL(), AuthStyle: oauth2.AuthStyleInParams},
		}},
		SessionTTL:     24 * time.Hour,
		RefreshTimeout: 4 * time.Second, // below the 5s LockTTL
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &replica{store: s, tr: tr}
}

// putSession stores a session for a fresh grant of up, its access token
// expiring at expiry, and returns the tsid and grant ID.
func putSession(t testing.TB, s upstream.Store, up *upstreamtest.RotatingUpstream, expiry time.Time) (tsid, grantID string) {
	t.Helper()
	grantID, at, rt := up.Grant()
	tsid = "tsid-" + grantID
	err := s.PutSession(context.Background(), &upstream.Session{
		TSID: tsid, Upstream: "fake", Subject: "fake|42",
		AccessToken: at, RefreshToken: rt, TokenType: "bearer", Expiry: expiry,
	}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tsid, grantID
}

// backendCall sends one backend request for tsid through rt and returns
// the backend's status and body, or the transport error.
func backendCall(ctx context.Context, rt http.RoundTripper, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestReplicasRefreshOnce: 200 concurrent backend calls for one session,
// spread over two replicas sharing one real Redis, with the upstream token
// expired: exactly one refresh reaches the upstream token endpoint (which
// revokes the grant on any reuse of a rotated refresh token), every call
// carries the new token, and the grant survives.
func TestReplicasRefreshOnce(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	up := upstreamtest.NewRotatingUpstream(t)
	up.Delay = 30 * time.Millisecond // the refresh is in flight while both replicas pile up
	key := newKey("k1")
	replicas := []*replica{newReplica(t, srv.Addr(), key, up), newReplica(t, srv.Addr(), key, up)}
	tsid, grantID := putSession(t, replicas[0].store, up, time.Now().Add(-time.Minute))

	ctx := withIdentity(context.Background(), tsid)
	var wg sync.WaitGroup
	start := make(chan struct{})
	var ok atomic.Int64
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			status, body, err := backendCall(ctx, replicas[i%2].tr, up.APIURL())
			if err != nil || status != http.StatusOK || body != grantID {
				t.Errorf("call %d: %d %q %v", i, status, body, err)
				return
			}
			ok.Add(1)
		}()
	}
	close(start)
	wg.Wait()
	if n := up.Refreshes.Load(); n != 1 {
		t.Fatalf("%d refreshes reached the upstream token endpoint, want exactly 1", n)
	}
	if ok.Load() != 200 {
		t.Fatalf("%d of 200 calls carried a valid token", ok.Load())
	}
	at, rt, revoked := up.State(grantID)
	if revoked {
		t.Fatal("the upstream grant was revoked")
	}
	for i, r := range replicas {
		s, err := r.store.GetSession(context.Background(), tsid)
		if err != nil || s.AccessToken != at || s.RefreshToken != rt || s.Version != 2 {
			t.Fatalf("replica %d reads session %v, %v", i, s, err)
		}
	}
}

// mcpServer is an inbound server of one replica: it marks each request as
// coming from the verified caller of tsid (what authn's middleware does),
// and its handler calls the backend through the replica's Transport and
// answers 200 with the backend's body, or a tool error with 200 as an MCP
// SDK does; HandleErrors turns lost sessions into 401 and outages into 503.
func mcpServer(t testing.TB, r *replica, tsid, backend string) *httptest.Server {
	client := &http.Client{Transport: r.tr}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		breq, _ := http.NewRequestWithContext(req.Context(), http.MethodGet, backend, nil)
		resp, err := client.Do(breq)
		if err != nil {
			_, _ = io.WriteString(w, "tool error")
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			_, _ = io.WriteString(w, "backend refused")
			return
		}
		_, _ = io.Copy(w, resp.Body)
	})
	wrapped := upstream.HandleErrors(upstream.ErrorOptions{RetryAfter: 2 * time.Second})(h)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		wrapped.ServeHTTP(w, req.WithContext(withIdentity(req.Context(), tsid)))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestRedisKilledMidTraffic: while Redis is down every inbound request gets
// a clear 503 with Retry-After (never a 401, never a tool result, never a
// backend call without a valid token); after a restart with persistence
// every session is still there and traffic flows again.
func TestRedisKilledMidTraffic(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Persist: true})
	up := upstreamtest.NewRotatingUpstream(t)
	key := newKey("k1")
	replicas := []*replica{newReplica(t, srv.Addr(), key, up), newReplica(t, srv.Addr(), key, up)}
	// Ten sessions; traffic on the first, a few already-expired ones to
	// force refreshes around the outage.
	type sess struct{ tsid, grant string }
	var sessions []sess
	for i := range 10 {
		exp := time.Now().Add(time.Hour)
		if i%3 == 0 {
			exp = time.Now().Add(-time.Minute)
		}
		tsid, g := putSession(t, replicas[0].store, up, exp)
		sessions = append(sessions, sess{tsid, g})
	}
	servers := make([][]*httptest.Server, len(sessions))
	for i, s := range sessions {
		for _, r := range replicas {
			servers[i] = append(servers[i], mcpServer(t, r, s.tsid, up.APIURL()))
		}
	}

	var down atomic.Bool
	var ok200, got503, other atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				i := (w + n) % len(sessions)
				wasDown := down.Load()
				resp, err := client.Post(servers[i][n%2].URL, "application/json", nil)
				if err != nil {
					t.Errorf("inbound request failed: %v", err)
					other.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusOK && string(b) == sessions[i].grant:
					if wasDown && down.Load() {
						t.Errorf("a request succeeded while Redis was down")
					}
					ok200.Add(1)
				case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "2":
					got503.Add(1)
				default:
					t.Errorf("answer %d %q", resp.StatusCode, b)
					other.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	srv.Kill()
	down.Store(true) // from here on, a request that starts cannot succeed until the restart
	time.Sleep(500 * time.Millisecond)
	down.Store(false)
	srv.Restart()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("200: %d, 503: %d, other: %d", ok200.Load(), got503.Load(), other.Load())
	if got503.Load() == 0 || ok200.Load() == 0 || other.Load() != 0 {
		t.Fatalf("200: %d, 503: %d, other: %d", ok200.Load(), got503.Load(), other.Load())
	}
	// No session lost, no grant revoked; every session serves again.
	for _, s := range sessions {
		if _, err := replicas[1].store.GetSession(context.Background(), s.tsid); err != nil {
			t.Errorf("session lost across the restart: %v", err)
		}
		if _, _, revoked := up.State(s.grant); revoked {
			t.Errorf("grant %s revoked", s.grant)
		}
		status, body, err := backendCall(withIdentity(context.Background(), s.tsid), replicas[0].tr, up.APIURL())
		if err != nil || status != http.StatusOK || body != s.grant {
			t.Errorf("after restart: %d %q %v", status, body, err)
		}
	}
}

// TestRefreshSurvivesRedisDeathBeforeWrite: Redis dies after the upstream
// rotated the refresh token but before the new pair is stored. The request
// gets 503; the pair is kept and stored once Redis is back, so the next
// request uses it without a second refresh (which, with the spent refresh
// token still in Redis, would revoke the grant).
func TestRefreshSurvivesRedisDeathBeforeWrite(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Persist: true})
	up := upstreamtest.NewRotatingUpstream(t)
	r := newReplica(t, srv.Addr(), newKey("k1"), up)
	tsid, grantID := putSession(t, r.store, up, time.Now().Add(-time.Minute))
	var once sync.Once
	up.OnRefresh = func() { once.Do(srv.Kill) }
	ctx := withIdentity(context.Background(), tsid)
	_, _, err := backendCall(ctx, r.tr, up.APIURL())
	if !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("refresh with Redis dying: %v, want ErrUnavailable", err)
	}
	srv.Restart()
	// The refresh lock this replica could not release while Redis was
	// down is released at once, not left to expire (LockTTL is 5s here).
	t0 := time.Now()
	status, body, err := backendCall(ctx, r.tr, up.APIURL())
	if el := time.Since(t0); el > 2*time.Second {
		t.Errorf("the call after the restart took %v: it waited for its own stale lock", el)
	}
	if err != nil || status != http.StatusOK || body != grantID {
		t.Fatalf("after restart: %d %q %v", status, body, err)
	}
	if n := up.Refreshes.Load(); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	at, rt, revoked := up.State(grantID)
	s, err := r.store.GetSession(context.Background(), tsid)
	if revoked || err != nil || s.AccessToken != at || s.RefreshToken != rt {
		t.Fatalf("revoked=%v, stored session %v, %v", revoked, s, err)
	}
}

// TestSlowStorage: with Redis not answering (SIGSTOP), requests return at
// their own deadline with ErrUnavailable, on the cached path and on the
// refresh path alike.
func TestSlowStorage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	up := upstreamtest.NewRotatingUpstream(t)
	r := newReplica(t, srv.Addr(), newKey("k1"), up)
	fresh, _ := putSession(t, r.store, up, time.Now().Add(time.Hour))
	expired, _ := putSession(t, r.store, up, time.Now().Add(-time.Minute))
	srv.Pause()
	defer srv.Resume()
	for _, tsid := range []string{fresh, expired} {
		ctx, cancel := context.WithTimeout(withIdentity(context.Background(), tsid), 150*time.Millisecond)
		start := time.Now()
		_, _, err := backendCall(ctx, r.tr, up.APIURL())
		el := time.Since(start)
		cancel()
		if !errors.Is(err, upstream.ErrUnavailable) {
			t.Errorf("slow storage: %v, want ErrUnavailable", err)
		}
		// go-redis's own ReadTimeout here is 2s: only the request's
		// deadline ends the wait earlier.
		if el > 1200*time.Millisecond {
			t.Errorf("request took %v past its 150ms deadline", el)
		}
	}
	if up.APICalls.Load() != 0 {
		t.Fatal("backend called without a token")
	}
}

// TestKeptPairStoredWithoutRequests: Redis dies after the upstream rotated
// the refresh token but before replica A stored the new pair, and comes
// back; the user's next request goes to replica B, not A. A stores the
// pair it kept on its own while its refresh lock holds, so B finds it and
// does not refresh with the spent refresh token (which the upstream would
// answer by revoking the grant).
func TestKeptPairStoredWithoutRequests(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Persist: true})
	up := upstreamtest.NewRotatingUpstream(t)
	key := newKey("k1")
	// A 10 s lock and 2 s refreshes: A may store under its lock for 8 s.
	storeA, trA, err := lockReplica(t, srv.Addr(), key, up, 10*time.Second, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	storeB, trB, err := lockReplica(t, srv.Addr(), key, up, 10*time.Second, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tsid, grantID := putSession(t, storeA, up, time.Now().Add(-time.Minute))
	var once sync.Once
	up.OnRefresh = func() { once.Do(srv.Kill) }
	ctx := withIdentity(context.Background(), tsid)
	if _, _, err := backendCall(ctx, trA, up.APIURL()); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("refresh with Redis dying: %v, want ErrUnavailable", err)
	}
	srv.Restart()
	at, rt, _ := up.State(grantID)
	deadline := time.Now().Add(8 * time.Second)
	for {
		s, err := storeB.GetSession(context.Background(), tsid)
		if err == nil && s.RefreshToken == rt && s.AccessToken == at {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A did not store the pair it kept within 8s of Redis's return (last read: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	status, body, err := backendCall(ctx, trB, up.APIURL())
	if err != nil || status != http.StatusOK || body != grantID {
		t.Fatalf("B after the outage: %d %q %v", status, body, err)
	}
	if _, _, revoked := up.State(grantID); revoked || up.Refreshes.Load() != 1 {
		t.Fatalf("%d refreshes, grant revoked %v; want 1 refresh and the grant alive", up.Refreshes.Load(), revoked)
	}
}
