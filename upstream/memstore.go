package upstream

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryStore is the in-memory Store: the default of a Server, right for a
// single replica and for tests. Everything is lost on restart. Expired
// records are never returned and are swept periodically. The zero value is
// ready to use; it is safe for concurrent use.
type MemoryStore struct {
	// Now is the clock deciding expiry. If nil, time.Now.
	Now func() time.Time

	mu     sync.Mutex
	writes int
	recs   map[memKey]*memEntry
	lastGC time.Time
	locks  map[string]*memLock // session refresh locks, by tsid
}

// memLock is a held session refresh lock.
type memLock struct{ expires time.Time }

// memLockTTL bounds a refresh lock whose holder never unlocks it.
const memLockTTL = 30 * time.Second

type memKind uint8

const (
	kindClient memKind = iota
	kindPending
	kindCode
	kindFamily
	kindSession
	kindConsent
	kindOnce // ReplayGuard keys: the entry's val is nil
)

type memKey struct {
	kind memKind
	key  string
}

type memEntry struct {
	val      any // *Client, *Pending, *Code, *Family, *Session, *Consent (owned copies); nil for kindOnce
	expires  time.Time
	consumed bool
}

var (
	_ Store         = (*MemoryStore)(nil)
	_ SessionLocker = (*MemoryStore)(nil)
	_ ReplayGuard   = (*MemoryStore)(nil)
)

// String describes the store without its records. A MemoryStore never
// prints its internals: they hold session IDs and change under concurrent
// use.
func (m *MemoryStore) String() string {
	m.mu.Lock()
	n := len(m.recs)
	m.mu.Unlock()
	return fmt.Sprintf("upstream.MemoryStore{records:%d}", n)
}

// GoString is String.
func (m *MemoryStore) GoString() string { return m.String() }

// Format prints String for every verb.
func (m *MemoryStore) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, m.String()) }

// NewMemoryStore returns an empty MemoryStore using time.Now.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

func (m *MemoryStore) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// lock checks ctx, takes the lock and returns the current time.
func (m *MemoryStore) lock(ctx context.Context) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, fmt.Errorf("upstream: memory store: %w: %w", ErrUnavailable, err)
	}
	m.mu.Lock()
	if m.recs == nil {
		m.recs = make(map[memKey]*memEntry)
	}
	return m.now(), nil
}

func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

func (e *memEntry) live(now time.Time) bool {
	return e.expires.IsZero() || now.Before(e.expires)
}

// get returns the live entry (caller holds the lock).
func (m *MemoryStore) get(now time.Time, k memKey) *memEntry {
	e, ok := m.recs[k]
	if !ok {
		return nil
	}
	if !e.live(now) {
		delete(m.recs, k)
		return nil
	}
	return e
}

// put stores v (already copied) and sweeps expired records now and then
// (caller holds the lock).
func (m *MemoryStore) put(now time.Time, k memKey, v any, ttl time.Duration) {
	m.recs[k] = &memEntry{val: v, expires: expiry(now, ttl)}
	m.writes++
	if m.writes%1024 == 0 || now.Sub(m.lastGC) > time.Minute {
		m.lastGC = now
		for k, e := range m.recs {
			if !e.live(now) {
				delete(m.recs, k)
			}
		}
	}
}

func notFound(what string) error { return fmt.Errorf("upstream: %s: %w", what, ErrNotFound) }

// store stores v (already copied) under k.
func (m *MemoryStore) store(ctx context.Context, k memKey, v any, ttl time.Duration) error {
	now, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.put(now, k, v, ttl)
	return nil
}

// load returns a copy, made by clone under the lock, of the live record
// under k, or ErrNotFound naming what.
func load[T any](ctx context.Context, m *MemoryStore, k memKey, what string, clone func(*T) *T) (*T, error) {
	now, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	e := m.get(now, k)
	if e == nil {
		return nil, notFound(what)
	}
	return clone(e.val.(*T)), nil
}

func cloneClient(c *Client) *Client {
	d := *c
	d.RedirectURIs = slices.Clone(c.RedirectURIs)
	d.GrantTypes = slices.Clone(c.GrantTypes)
	d.JWKS = slices.Clone(c.JWKS)
	return &d
}

func clonePtr[T any](v *T) *T { d := *v; return &d }

// PutClient implements Store.
func (m *MemoryStore) PutClient(ctx context.Context, c *Client, ttl time.Duration) error {
	return m.store(ctx, memKey{kindClient, c.ID}, cloneClient(c), ttl)
}

// GetClient implements Store.
func (m *MemoryStore) GetClient(ctx context.Context, id string) (*Client, error) {
	return load(ctx, m, memKey{kindClient, id}, "client", cloneClient)
}

// PutPending implements Store.
func (m *MemoryStore) PutPending(ctx context.Context, id string, p *Pending, ttl time.Duration) error {
	return m.store(ctx, memKey{kindPending, id}, clonePtr(p), ttl)
}

// GetPending implements Store.
func (m *MemoryStore) GetPending(ctx context.Context, id string) (*Pending, error) {
	return load(ctx, m, memKey{kindPending, id}, "pending authorization", clonePtr[Pending])
}

// ConsumePending implements Store.
func (m *MemoryStore) ConsumePending(ctx context.Context, id string) (*Pending, error) {
	now, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	k := memKey{kindPending, id}
	e := m.get(now, k)
	if e == nil {
		return nil, notFound("pending authorization")
	}
	delete(m.recs, k)
	return e.val.(*Pending), nil
}

// PutCode implements Store.
func (m *MemoryStore) PutCode(ctx context.Context, key string, c *Code, ttl time.Duration) error {
	return m.store(ctx, memKey{kindCode, key}, clonePtr(c), ttl)
}

// ConsumeCode implements Store.
func (m *MemoryStore) ConsumeCode(ctx context.Context, key string) (*Code, error) {
	now, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	e := m.get(now, memKey{kindCode, key})
	if e == nil {
		return nil, notFound("code")
	}
	c := clonePtr(e.val.(*Code))
	if e.consumed {
		return c, fmt.Errorf("upstream: code: %w", ErrConsumed)
	}
	e.consumed = true
	return c, nil
}

// PutFamily implements Store.
func (m *MemoryStore) PutFamily(ctx context.Context, f *Family, ttl time.Duration) error {
	return m.store(ctx, memKey{kindFamily, f.ID}, clonePtr(f), ttl)
}

// GetFamily implements Store.
func (m *MemoryStore) GetFamily(ctx context.Context, id string) (*Family, error) {
	return load(ctx, m, memKey{kindFamily, id}, "refresh family", clonePtr[Family])
}

// RotateFamily implements Store.
func (m *MemoryStore) RotateFamily(ctx context.Context, id, oldHash, newHash string, ttl time.Duration) (*Family, error) {
	now, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	e := m.get(now, memKey{kindFamily, id})
	if e == nil {
		return nil, notFound("refresh family")
	}
	f := e.val.(*Family)
	if f.Current != oldHash {
		return nil, fmt.Errorf("upstream: refresh family: %w", ErrConflict)
	}
	f.Current = newHash
	f.Generation++
	e.expires = expiry(now, ttl)
	return clonePtr(f), nil
}

// DeleteFamily implements Store.
func (m *MemoryStore) DeleteFamily(ctx context.Context, id string) error {
	if _, err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	delete(m.recs, memKey{kindFamily, id})
	return nil
}

// PutSession implements Store.
func (m *MemoryStore) PutSession(ctx context.Context, s *Session, ttl time.Duration) error {
	now, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer m.mu.Unlock()
	c := clonePtr(s)
	c.Version = 1
	m.put(now, memKey{kindSession, s.TSID}, c, ttl)
	s.Version = 1
	return nil
}

// GetSession implements Store.
func (m *MemoryStore) GetSession(ctx context.Context, tsid string) (*Session, error) {
	return load(ctx, m, memKey{kindSession, tsid}, "session", clonePtr[Session])
}

// UpdateSession implements Store.
func (m *MemoryStore) UpdateSession(ctx context.Context, s *Session, ttl time.Duration) error {
	now, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer m.mu.Unlock()
	k := memKey{kindSession, s.TSID}
	e := m.get(now, k)
	if e == nil {
		return notFound("session")
	}
	if e.val.(*Session).Version != s.Version {
		return fmt.Errorf("upstream: session: %w", ErrConflict)
	}
	c := clonePtr(s)
	c.Version++
	m.put(now, k, c, ttl)
	s.Version = c.Version
	return nil
}

// DeleteSession implements Store.
func (m *MemoryStore) DeleteSession(ctx context.Context, tsid string) error {
	if _, err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	delete(m.recs, memKey{kindSession, tsid})
	return nil
}

// PutConsent implements Store.
func (m *MemoryStore) PutConsent(ctx context.Context, key string, c *Consent, ttl time.Duration) error {
	return m.store(ctx, memKey{kindConsent, key}, clonePtr(c), ttl)
}

// GetConsent implements Store.
func (m *MemoryStore) GetConsent(ctx context.Context, key string) (*Consent, error) {
	return load(ctx, m, memKey{kindConsent, key}, "consent", clonePtr[Consent])
}

// LockSession implements [SessionLocker] within this process, so that
// several Transports sharing one MemoryStore (one per handler, say)
// refresh a session once, as replicas sharing a Redis do. The lock expires
// after 30 seconds (wall clock, whatever Now says) if never released.
func (m *MemoryStore) LockSession(ctx context.Context, tsid string) (func(), error) {
	if _, err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	now := time.Now()
	if l := m.locks[tsid]; l != nil && now.Before(l.expires) {
		return nil, fmt.Errorf("upstream: memory store: %w", ErrLocked)
	}
	if m.locks == nil {
		m.locks = make(map[string]*memLock)
	}
	l := &memLock{expires: now.Add(memLockTTL)}
	m.locks[tsid] = l
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.locks[tsid] == l {
			delete(m.locks, tsid)
		}
	}, nil
}

// LockTTL returns the lifetime of a lock taken with LockSession (30
// seconds); NewTransport keeps refreshes shorter.
func (m *MemoryStore) LockTTL() time.Duration { return memLockTTL }

// UseOnce implements [ReplayGuard] within this process: several Servers
// sharing one MemoryStore accept a client assertion once between them.
// Expiry follows Now, like the records'.
func (m *MemoryStore) UseOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("upstream: memory store: use once: ttl %v is not positive", ttl)
	}
	now, err := m.lock(ctx)
	if err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	k := memKey{kindOnce, key}
	if m.get(now, k) != nil {
		return false, nil
	}
	m.put(now, k, nil, ttl)
	return true, nil
}
