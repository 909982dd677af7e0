package upstream_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/observe"
	"github.com/mcpauth-go/mcpauth/upstream"
)

// refreshRecorder keeps the Refresh events of an Observer.
type refreshRecorder struct {
	mu     sync.Mutex
	events []observe.Refresh
}

func (r *refreshRecorder) observer() *observe.Observer {
	return &observe.Observer{Refresh: func(_ context.Context, e observe.Refresh) {
		r.mu.Lock()
		r.events = append(r.events, e)
		r.mu.Unlock()
	}}
}

func (r *refreshRecorder) outcomes() []observe.Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []observe.Outcome
	for _, e := range r.events {
		out = append(out, e.Outcome)
	}
	return out
}

// TestObserverRefresh: concurrent callers of an expired session make one
// refresh and one timed OK event; a revoked grant is Failed; an unreachable
// upstream is Unavailable.
func TestObserverRefresh(t *testing.T) {
	t.Run("once", func(t *testing.T) {
		rec := &refreshRecorder{}
		f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(-time.Minute), func(c *upstream.TransportConfig) { c.Observer = rec.observer() })
		f.up.Delay = 20 * time.Millisecond
		ctx := withIdentity(context.Background(), f.tsid)
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				resp, err := call(ctx, f.tr, f.up.APIURL())
				expectGrant(t, resp, err, f.grantID)
			})
		}
		wg.Wait()
		if got := rec.outcomes(); len(got) != 1 || got[0] != observe.OK {
			t.Fatalf("refresh events %v, want one ok", got)
		}
		if e := rec.events[0]; e.Start.IsZero() || e.Duration < 20*time.Millisecond {
			t.Fatalf("refresh not timed: %+v", e)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		rec := &refreshRecorder{}
		f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(-time.Second), func(c *upstream.TransportConfig) { c.Observer = rec.observer() })
		f.up.Revoke(f.grantID)
		if _, err := call(withIdentity(context.Background(), f.tsid), f.tr, f.up.APIURL()); err == nil {
			t.Fatal("revoked grant: request sent")
		}
		if got := rec.outcomes(); len(got) != 1 || got[0] != observe.Failed {
			t.Fatalf("refresh events %v, want one failed", got)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		rec := &refreshRecorder{}
		f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(-time.Second), func(c *upstream.TransportConfig) { c.Observer = rec.observer() })
		f.up.Close()
		if _, err := call(withIdentity(context.Background(), f.tsid), f.tr, f.up.APIURL()); err == nil {
			t.Fatal("request sent with the upstream down")
		}
		if got := rec.outcomes(); len(got) != 1 || got[0] != observe.Unavailable {
			t.Fatalf("refresh events %v, want one unavailable", got)
		}
	})
}
