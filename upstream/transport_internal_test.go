package upstream

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpauth-go/mcpauth/authn"
)

// refusingUpdates fails UpdateSession while refuse is set.
type refusingUpdates struct {
	Store
	refuse atomic.Bool
}

func (s *refusingUpdates) UpdateSession(ctx context.Context, sess *Session, ttl time.Duration) error {
	if s.refuse.Load() {
		return fmt.Errorf("test: %w: write refused", ErrUnavailable)
	}
	return s.Store.UpdateSession(ctx, sess, ttl)
}

func unsavedCount(t *Transport) int {
	n := 0
	t.unsaved.Range(func(any, any) bool { n++; return true })
	return n
}

// TestTransportHoldsNothingPerSession: many sessions refreshed through one
// Transport leave no per-session state behind (no goroutine, no single
// flight entry); a rotated pair kept in memory because the store refused
// it is dropped once its session is gone, and never outlives the session
// ttl, so a store outage cannot make the Transport hold every user's
// tokens forever.
func TestTransportHoldsNothingPerSession(t *testing.T) {
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + rand.Text(), "refresh_token": "rt-" + rand.Text(),
			"token_type": "bearer", "expires_in": 3600})
	}))
	defer tokenSrv.Close()
	backend := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer backend.Close()
	now := time.Now()
	var offset atomic.Int64
	clock := func() time.Time { return now.Add(time.Duration(offset.Load())) }
	store := &refusingUpdates{Store: &MemoryStore{Now: clock}}
	tr, err := NewTransport(TransportConfig{
		Issuer:     "https://as.example.com",
		Store:      store,
		Upstreams:  map[string]*oauth2.Config{"fake": {Endpoint: oauth2.Endpoint{TokenURL: tokenSrv.URL}}},
		SessionTTL: time.Hour,
		Now:        clock,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	call := func(tsid string) error {
		info := (&authn.TokenInfo{Issuer: "https://as.example.com", Subject: "fake|1", Claims: map[string]any{"tsid": tsid}}).WithToken("inbound-token-0123456789abcdef")
		req, _ := http.NewRequestWithContext(authn.NewContext(context.Background(), info), http.MethodGet, backend.URL, nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	put := func(tsid string) {
		err := store.PutSession(context.Background(), &Session{TSID: tsid, Upstream: "fake", Subject: "fake|1",
			AccessToken: "old", RefreshToken: "rt-old", Expiry: clock().Add(-time.Minute)}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
	}
	goroutines := runtime.NumGoroutine()
	const n = 300
	for i := range n {
		put(fmt.Sprint("ok-", i))
		if err := call(fmt.Sprint("ok-", i)); err != nil {
			t.Fatal(err)
		}
	}
	if c := unsavedCount(tr); c != 0 {
		t.Fatalf("%d pairs held after successful refreshes", c)
	}
	// singleflight.Group keeps its calls in an unexported map, nil until
	// the first call: every key must be gone once its refresh returned.
	if m := reflect.ValueOf(&tr.flight).Elem().FieldByName("m"); m.Len() != 0 {
		t.Fatalf("%d single-flight keys left after %d refreshes", m.Len(), n)
	}

	// The store refuses the rotated pairs: they are held in memory...
	store.refuse.Store(true)
	for i := range 6 {
		put(fmt.Sprint("down-", i))
		if err := call(fmt.Sprint("down-", i)); err == nil {
			t.Fatal("refresh reported success while the store refused it")
		}
	}
	if c := unsavedCount(tr); c != 6 {
		t.Fatalf("%d pairs held, want 6", c)
	}
	// ...until the session is gone (logout, revocation)...
	for i := range 3 {
		_ = store.DeleteSession(context.Background(), fmt.Sprint("down-", i))
		_ = call(fmt.Sprint("down-", i))
	}
	if c := unsavedCount(tr); c != 3 {
		t.Fatalf("%d pairs held after 3 of their sessions ended, want 3", c)
	}
	// ...or the session ttl has passed (the stored session expired with it).
	offset.Store(int64(2 * time.Hour))
	put("late")
	_ = call("late")
	if c := unsavedCount(tr); c != 1 {
		t.Fatalf("%d pairs held after the session ttl passed, want only the newest", c)
	}
	// Pooled connections (a few goroutines each) are not per session.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	time.Sleep(50 * time.Millisecond)
	if g := runtime.NumGoroutine(); g > goroutines+10 {
		t.Fatalf("%d goroutines after %d sessions, %d before", g, n, goroutines)
	}
}

// lockingRefusingStore is a MemoryStore (with its session locks) whose
// UpdateSession fails while refuse is set.
type lockingRefusingStore struct {
	*MemoryStore
	refuse atomic.Bool
}

func (s *lockingRefusingStore) UpdateSession(ctx context.Context, sess *Session, ttl time.Duration) error {
	if s.refuse.Load() {
		return fmt.Errorf("test: %w: write refused", ErrUnavailable)
	}
	return s.MemoryStore.UpdateSession(ctx, sess, ttl)
}

// TestUnsavedPairStoredWithoutRequests: when the store refuses the pair an
// upstream just rotated and then comes back while the refresh lock is still
// kept, the Transport stores the pair on its own, with no further request
// for the session: otherwise, once the lock expired, another replica would
// refresh with the spent refresh token and a rotating upstream would revoke
// the grant. The upstream is called once; the lock is released; a second
// replica then gets the stored token without refreshing.
func TestUnsavedPairStoredWithoutRequests(t *testing.T) {
	var refreshes atomic.Int32
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := refreshes.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprint("at-", n), "refresh_token": fmt.Sprint("rt-", n),
			"token_type": "bearer", "expires_in": 3600})
	}))
	defer tokenSrv.Close()
	var seen []string
	var seenMu sync.Mutex
	backend := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seenMu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		seenMu.Unlock()
	}))
	defer backend.Close()
	store := &lockingRefusingStore{MemoryStore: &MemoryStore{}}
	newReplica := func() *Transport {
		tr, err := NewTransport(TransportConfig{
			Issuer:    "https://as.example.com",
			Store:     store,
			Upstreams: map[string]*oauth2.Config{"fake": {Endpoint: oauth2.Endpoint{TokenURL: tokenSrv.URL}}},
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	a, b := newReplica(), newReplica()
	call := func(tr *Transport) error {
		info := (&authn.TokenInfo{Issuer: "https://as.example.com", Subject: "fake|1", Claims: map[string]any{"tsid": "s1"}}).WithToken("inbound-token-0123456789abcdef")
		req, _ := http.NewRequestWithContext(authn.NewContext(context.Background(), info), http.MethodGet, backend.URL, nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	ctx := context.Background()
	if err := store.PutSession(ctx, &Session{TSID: "s1", Upstream: "fake", Subject: "fake|1",
		AccessToken: "old", RefreshToken: "rt-old", Expiry: time.Now().Add(-time.Minute)}, time.Hour); err != nil {
		t.Fatal(err)
	}
	store.refuse.Store(true)
	if err := call(a); err == nil {
		t.Fatal("the refresh reported success while the store refused the rotated pair")
	}
	if unsavedCount(a) != 1 {
		t.Fatal("the rotated pair the store refused is not kept")
	}
	store.refuse.Store(false) // the store is back; no request follows
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := store.GetSession(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		if s.RefreshToken == "rt-1" && s.AccessToken == "at-1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the kept pair was not stored within 10s of the store's return (refresh token in the store: %s)",
				map[bool]string{true: "the spent one", false: "another"}[s.RefreshToken == "rt-old"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	for unsavedCount(a) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if unsavedCount(a) != 0 {
		t.Fatal("the pair is still held in memory after it was stored")
	}
	// The lock is released: replica b takes the session without waiting
	// and without calling the upstream again.
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	unlock, err := store.LockSession(lctx, "s1")
	if err != nil {
		t.Fatalf("the refresh lock is still held after the pair was stored: %v", err)
	}
	unlock()
	if err := call(b); err != nil {
		t.Fatal(err)
	}
	if n := refreshes.Load(); n != 1 {
		t.Fatalf("the upstream was asked %d times for a refresh, want 1", n)
	}
	seenMu.Lock()
	defer seenMu.Unlock()
	if len(seen) != 1 || seen[0] != "Bearer at-1" {
		t.Fatalf("the backend got %d requests (want 1, with the stored token)", len(seen))
	}
}
