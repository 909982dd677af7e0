package storetest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/upstream"
	"github.com/mcpauth-go/mcpauth/upstream/storetest"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestMemoryStoreFakeClock(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1700000000, 0)}
	storetest.RunWith(t, func(*testing.T) upstream.Store { return &upstream.MemoryStore{Now: clock.Now} },
		storetest.Options{Advance: clock.Advance, TTL: time.Minute})
}

func TestMemoryStoreRealClock(t *testing.T) {
	storetest.RunWith(t, func(*testing.T) upstream.Store { return upstream.NewMemoryStore() },
		storetest.Options{TTL: 20 * time.Millisecond})
}

// downStore is a store whose backend is down.
type downStore struct{}

var errDown = fmt.Errorf("fake: %w: connection refused", upstream.ErrUnavailable)

func (downStore) PutClient(context.Context, *upstream.Client, time.Duration) error { return errDown }
func (downStore) GetClient(context.Context, string) (*upstream.Client, error)      { return nil, errDown }
func (downStore) PutPending(context.Context, string, *upstream.Pending, time.Duration) error {
	return errDown
}
func (downStore) GetPending(context.Context, string) (*upstream.Pending, error) { return nil, errDown }
func (downStore) ConsumePending(context.Context, string) (*upstream.Pending, error) {
	return nil, errDown
}
func (downStore) PutCode(context.Context, string, *upstream.Code, time.Duration) error {
	return errDown
}
func (downStore) ConsumeCode(context.Context, string) (*upstream.Code, error) { return nil, errDown }
func (downStore) PutFamily(context.Context, *upstream.Family, time.Duration) error {
	return errDown
}
func (downStore) GetFamily(context.Context, string) (*upstream.Family, error) { return nil, errDown }
func (downStore) RotateFamily(context.Context, string, string, string, time.Duration) (*upstream.Family, error) {
	return nil, errDown
}
func (downStore) DeleteFamily(context.Context, string) error { return errDown }
func (downStore) PutSession(context.Context, *upstream.Session, time.Duration) error {
	return errDown
}
func (downStore) GetSession(context.Context, string) (*upstream.Session, error) { return nil, errDown }
func (downStore) UpdateSession(context.Context, *upstream.Session, time.Duration) error {
	return errDown
}
func (downStore) DeleteSession(context.Context, string) error { return errDown }
func (downStore) PutConsent(context.Context, string, *upstream.Consent, time.Duration) error {
	return errDown
}
func (downStore) GetConsent(context.Context, string) (*upstream.Consent, error) { return nil, errDown }

func (downStore) UseOnce(context.Context, string, time.Duration) (bool, error) { return false, errDown }

func TestRunUnavailable(t *testing.T) {
	storetest.RunUnavailable(t, func(*testing.T) upstream.Store { return downStore{} })
}
