package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpauth-go/mcpauth/upstream"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore/internal/redistest"
	"github.com/mcpauth-go/mcpauth/upstream/upstreamtest"
)

// lockReplica is one replica whose Store has lockTTL and whose Transport
// has refreshTimeout.
func lockReplica(t *testing.T, addr string, key redisstore.Key, up *upstreamtest.RotatingUpstream, lockTTL, refreshTimeout time.Duration) (*redisstore.Store, *upstream.Transport, error) {
	t.Helper()
	s, err := redisstore.New(redisstore.Config{Client: newClient(t, addr), Keys: []redisstore.Key{key}, LockTTL: lockTTL})
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
		RefreshTimeout: refreshTimeout,
	}, nil)
	return s, tr, err
}

// TestLockOutlivesRefresh: the refresh lock must outlive the locked
// section, or a second replica takes the expired lock while the first is
// still waiting for the upstream, and refreshes with the same (already
// spent) refresh token: the upstream then revokes the grant and the user is
// logged out. NewTransport must refuse a RefreshTimeout that is not below
// the Store's LockTTL, and by default bound refreshes below it.
func TestLockOutlivesRefresh(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	key := newKey("k1")
	up := upstreamtest.NewRotatingUpstream(t)
	// Long enough that the default RefreshTimeout (half the lock's
	// lifetime) leaves the other half for the Redis round trips around the
	// refresh under -race on a busy machine.
	up.Delay = 1500 * time.Millisecond
	const lockTTL = time.Second

	storeA, trA, errA := lockReplica(t, srv.Addr(), key, up, lockTTL, 3*time.Second)
	_, trB, errB := lockReplica(t, srv.Addr(), key, up, lockTTL, 3*time.Second)
	if errA == nil && errB == nil {
		// Show the damage the accepted configuration does.
		tsid, grantID := putSession(t, storeA, up, time.Now().Add(-time.Minute))
		ctx := withIdentity(context.Background(), tsid)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _ = backendCall(ctx, trA, up.APIURL())
		}()
		time.Sleep(1250 * time.Millisecond) // A's lock has expired, its refresh is in flight
		_, _, _ = backendCall(ctx, trB, up.APIURL())
		wg.Wait()
		_, _, revoked := up.State(grantID)
		t.Fatalf("NewTransport accepted RefreshTimeout 3s over a 1s LockTTL: %d refreshes reached the upstream, grant revoked: %v",
			up.Refreshes.Load(), revoked)
	}

	// The default RefreshTimeout stays below the lock's lifetime: a refresh
	// that hangs gives up while its lock still holds.
	storeC, trC, err := lockReplica(t, srv.Addr(), key, up, lockTTL, 0)
	if err != nil {
		t.Fatalf("default RefreshTimeout refused: %v", err)
	}
	tsid, _ := putSession(t, storeC, up, time.Now().Add(-time.Minute))
	start := time.Now()
	_, _, err = backendCall(withIdentity(context.Background(), tsid), trC, up.APIURL())
	if el := time.Since(start); err == nil || el >= lockTTL {
		t.Fatalf("a refresh hanging for %v returned after %v (err %v); the %v lock had expired under it", up.Delay, el, err, lockTTL)
	}
}

// refusingStore is a replica's Store whose UpdateSession fails while
// refuse is set (Redis refusing writes: OOM, a failover's read-only
// replica), everything else passing through, locks included.
type refusingStore struct {
	*redisstore.Store
	refuse atomic.Bool
}

func (s *refusingStore) UpdateSession(ctx context.Context, sess *upstream.Session, ttl time.Duration) error {
	if s.refuse.Load() {
		return fmt.Errorf("test: %w: OOM command not allowed", upstream.ErrUnavailable)
	}
	return s.Store.UpdateSession(ctx, sess, ttl)
}

// TestUnsavedPairKeepsTheLock: replica A refreshed (the upstream rotated
// the refresh token) but could not store the new pair. The refresh token
// in Redis is spent: replica B must not refresh with it (the upstream
// would revoke the grant). A keeps the session's lock while it holds the
// unsaved pair, so B waits, and A stores the pair on its next request.
func TestUnsavedPairKeepsTheLock(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	key := newKey("k1")
	up := upstreamtest.NewRotatingUpstream(t)
	a := &refusingStore{}
	var err error
	if a.Store, err = redisstore.New(redisstore.Config{Client: newClient(t, srv.Addr()), Keys: []redisstore.Key{key}, LockTTL: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	cfg := func(s upstream.Store) upstream.TransportConfig {
		return upstream.TransportConfig{
			Issuer: testIssuer,
			Store:  s,
			Upstreams: map[string]*oauth2.Config{"fake": {
				ClientID: "mcp-server", ClientSecret: "s3cret",
				Endpoint: oauth2.Endpoint{TokenURL: up.TokenURL(), AuthStyle: oauth2.AuthStyleInParams},
			}},
			RefreshTimeout: 2 * time.Second,
		}
	}
	trA, err := upstream.NewTransport(cfg(a), nil)
	if err != nil {
		t.Fatal(err)
	}
	storeB, trB, err := lockReplica(t, srv.Addr(), key, up, 5*time.Second, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tsid, grantID := putSession(t, storeB, up, time.Now().Add(-time.Minute))
	ctx := withIdentity(context.Background(), tsid)

	a.refuse.Store(true)
	if _, _, err := backendCall(ctx, trA, up.APIURL()); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("A with writes refused: %v", err)
	}
	a.refuse.Store(false)
	// B comes first after the outage: it must not spend the stale token.
	bctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, _, errB := backendCall(bctx, trB, up.APIURL())
	if _, _, revoked := up.State(grantID); revoked || up.Refreshes.Load() != 1 {
		t.Fatalf("B refreshed with the spent refresh token (err %v): %d refreshes, grant revoked %v", errB, up.Refreshes.Load(), revoked)
	}
	// A's next request stores its pair; then B reads it.
	if status, body, err := backendCall(ctx, trA, up.APIURL()); err != nil || status != http.StatusOK || body != grantID {
		t.Fatalf("A after the outage: %d %q %v", status, body, err)
	}
	if status, body, err := backendCall(ctx, trB, up.APIURL()); err != nil || status != http.StatusOK || body != grantID {
		t.Fatalf("B after A stored the pair: %d %q %v", status, body, err)
	}
	if _, _, revoked := up.State(grantID); revoked || up.Refreshes.Load() != 1 {
		t.Fatalf("%d refreshes, grant revoked %v", up.Refreshes.Load(), revoked)
	}
}
