package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/upstream"
)

// TestMemoryStorePrintsNoRecords: a MemoryStore printed (logged by
// mistake, or in a %+v of a struct holding it) while in use shows no
// record keys (session IDs, code hashes) and does not read its maps
// behind its lock (a data race, and a fatal concurrent map access).
func TestMemoryStorePrintsNoRecords(t *testing.T) {
	s := upstream.NewMemoryStore()
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = s.PutSession(ctx, &upstream.Session{TSID: fmt.Sprint("SECRETTSID-", i%50)}, time.Minute)
		}
	}()
	var out string
	for range 200 {
		out = fmt.Sprintf("%v %+v %#v", s, s, s)
	}
	close(stop)
	wg.Wait()
	if strings.Contains(out, "SECRETTSID") {
		t.Fatalf("printed MemoryStore shows record keys: %.300s", out)
	}
}

// TestMemoryStoreLockSession: one holder per session; an unlock releases
// only its own lock (a second call, or one after another holder took the
// lock, changes nothing); a done context is ErrUnavailable.
func TestMemoryStoreLockSession(t *testing.T) {
	s := upstream.NewMemoryStore()
	ctx := context.Background()
	unlock, err := s.LockSession(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LockSession(ctx, "a"); !errors.Is(err, upstream.ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	other, err := s.LockSession(ctx, "b")
	if err != nil {
		t.Fatalf("another session's lock: %v", err)
	}
	defer other()
	unlock()
	unlock2, err := s.LockSession(ctx, "a")
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock() // stale: must not release unlock2's lock
	if _, err := s.LockSession(ctx, "a"); !errors.Is(err, upstream.ErrLocked) {
		t.Fatalf("a stale unlock released the current holder's lock: %v", err)
	}
	unlock2()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.LockSession(cctx, "c"); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("done context: %v", err)
	}
	if s.LockTTL() <= 0 {
		t.Fatal("no lock lifetime")
	}
}
