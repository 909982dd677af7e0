package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpauth-go/mcpauth/upstream"
)

// Config configures a [Store].
type Config struct {
	// Client is the Redis connection: a *redis.Client (standalone, with
	// TLSConfig for TLS), a *redis.ClusterClient, a *redis.FailoverClient
	// (Sentinel), or redis.NewUniversalClient's result. Dial, TLS, pool,
	// timeouts and retries are go-redis's own options. Required. The Store
	// does not close it.
	Client redis.UniversalClient

	// Prefix is prepended to every key, so several applications (or
	// several Servers) can share one Redis. Empty means "mcpauth:". Every
	// value is bound to its full key name, so changing Prefix abandons the
	// values stored under the old one (logins start over).
	Prefix string

	// Keys are the encryption keys of stored values. Required (at least
	// one). Keys[0] encrypts every new value; every key in the list
	// decrypts, and a record read under an older key is re-sealed under
	// Keys[0] (its TTL kept). To rotate, put the new key first and keep the
	// old one until every value written under it has expired (the longest
	// TTL, usually the refresh-token lifetime) or been read since; records
	// stored without a TTL (the Server's registered clients once a user
	// has logged in through them, when its ClientTTL is zero) leave the
	// old key only by being read.
	Keys []Key

	// LockTTL bounds how long a refresh lock taken with [Store.LockSession]
	// is held when its owner dies without unlocking; meanwhile other
	// replicas' requests for that session wait (up to their own
	// deadlines). It must exceed the Transport's RefreshTimeout (default
	// 10s), which bounds the locked section, so a slow refresh cannot
	// outlive its lock. Zero means 20 seconds.
	LockTTL time.Duration
}

// Store is an [upstream.Store] on Redis. Build one with [New]; it is safe
// for concurrent use and by any number of processes sharing the Redis.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	seal    *sealer
	lockTTL time.Duration

	// unreleased maps a lock key to our owner token when its release
	// failed; the next LockSession of that session releases it first.
	unreleased sync.Map
}

var (
	_ upstream.Store         = (*Store)(nil)
	_ upstream.SessionLocker = (*Store)(nil)
	_ upstream.ReplayGuard   = (*Store)(nil)
)

// New returns a Store on cfg.Client. It validates cfg but does not contact
// Redis, so an application can start before its Redis.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("redisstore: Config.Client is nil")
	}
	s, err := newSealer(cfg.Keys)
	if err != nil {
		return nil, err
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = "mcpauth:"
	}
	lockTTL := cfg.LockTTL
	if lockTTL <= 0 {
		lockTTL = 20 * time.Second
	}
	return &Store{rdb: cfg.Client, prefix: prefix, seal: s, lockTTL: lockTTL}, nil
}

// String describes the Store by its key prefix and lock lifetime. A Store
// never prints its internals (lock owner tokens, cipher state), which
// change under concurrent use.
func (s *Store) String() string {
	return fmt.Sprintf("redisstore.Store{Prefix:%q LockTTL:%s}", s.prefix, s.lockTTL)
}

// GoString is String.
func (s *Store) GoString() string { return s.String() }

// Format prints String for every verb.
func (s *Store) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, s.String()) }

// Record kinds, part of every key name.
const (
	kindClient  = "client:"
	kindPending = "pending:"
	kindCode    = "code:"
	kindFamily  = "family:"
	kindSession = "session:"
	kindConsent = "consent:"
	kindLock    = "lock:"
	kindOnce    = "once:"
)

// key returns the Redis key of a record. The ID is hashed: a key name is
// not encrypted, and some IDs (a pending authorization's, a session's) are
// bearer-like handles that a dump must not reveal.
func (s *Store) key(kind, id string) string {
	h := sha256.Sum256([]byte(id))
	return s.prefix + kind + base64.RawURLEncoding.EncodeToString(h[:])
}

// unavailable wraps a Redis or context error as upstream.ErrUnavailable.
func unavailable(op string, err error) error {
	return fmt.Errorf("redisstore: %s: %w: %w", op, upstream.ErrUnavailable, err)
}

// ttlMillis is the PX argument of a ttl: milliseconds, at least 1; 0 for no
// expiry.
func ttlMillis(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return max(ttl.Milliseconds(), 1)
}

func (s *Store) put(ctx context.Context, op, kind, id string, v encoding.BinaryMarshaler, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return unavailable(op, err)
	}
	pt, err := v.MarshalBinary()
	if err != nil {
		return fmt.Errorf("redisstore: %s: encode: %w", op, err)
	}
	k := s.key(kind, id)
	// A ttl of 0 is SET without expiry, which also clears an old one.
	if err := s.rdb.Set(ctx, k, s.seal.seal(k, pt), time.Duration(ttlMillis(ttl))*time.Millisecond).Err(); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// get reads and decrypts one record into v.
func (s *Store) get(ctx context.Context, op, kind, id string, v encoding.BinaryUnmarshaler) error {
	if err := ctx.Err(); err != nil {
		return unavailable(op, err)
	}
	k := s.key(kind, id)
	b, err := s.rdb.Get(ctx, k).Bytes()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("redisstore: %s: %w", op, upstream.ErrNotFound)
	}
	if err != nil {
		return unavailable(op, err)
	}
	if err := s.decode(op, k, b, v); err != nil {
		return err
	}
	s.reseal(ctx, k, b)
	return nil
}

// resealScript replaces KEYS[1] with ARGV[2], keeping its TTL, only if it
// still holds ARGV[1].
var resealScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0`)

// reseal rewrites a value read from k under the active key when it was
// sealed under an older one (a rotation is under way), keeping its TTL, so
// that records that never expire (a ttl of 0) leave the old key too. It is
// best effort: a failure leaves the value as it was, still readable while
// the old key is configured.
func (s *Store) reseal(ctx context.Context, k string, sealed []byte) {
	if !s.seal.stale(sealed) {
		return
	}
	pt, err := s.seal.open(k, sealed)
	if err != nil {
		return
	}
	_ = resealScript.Run(ctx, s.rdb, []string{k}, sealed, s.seal.seal(k, pt)).Err()
}

func (s *Store) decode(op, key string, sealed []byte, v encoding.BinaryUnmarshaler) error {
	pt, err := s.seal.open(key, sealed)
	if err != nil {
		return unavailable(op, err)
	}
	if err := v.UnmarshalBinary(pt); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// PutClient implements [upstream.Store].
func (s *Store) PutClient(ctx context.Context, c *upstream.Client, ttl time.Duration) error {
	return s.put(ctx, "put client", kindClient, c.ID, c, ttl)
}

// GetClient implements [upstream.Store].
func (s *Store) GetClient(ctx context.Context, clientID string) (*upstream.Client, error) {
	c := new(upstream.Client)
	if err := s.get(ctx, "get client", kindClient, clientID, c); err != nil {
		return nil, err
	}
	return c, nil
}

// PutPending implements [upstream.Store].
func (s *Store) PutPending(ctx context.Context, id string, p *upstream.Pending, ttl time.Duration) error {
	return s.put(ctx, "put pending", kindPending, id, p, ttl)
}

// GetPending implements [upstream.Store].
func (s *Store) GetPending(ctx context.Context, id string) (*upstream.Pending, error) {
	p := new(upstream.Pending)
	if err := s.get(ctx, "get pending", kindPending, id, p); err != nil {
		return nil, err
	}
	return p, nil
}

// ConsumePending implements [upstream.Store] with GETDEL (Redis 6.2+),
// which is atomic: one caller gets the record, the others nothing.
func (s *Store) ConsumePending(ctx context.Context, id string) (*upstream.Pending, error) {
	const op = "consume pending"
	if err := ctx.Err(); err != nil {
		return nil, unavailable(op, err)
	}
	k := s.key(kindPending, id)
	b, err := s.rdb.GetDel(ctx, k).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: %s: %w", op, upstream.ErrNotFound)
	}
	if err != nil {
		return nil, unavailable(op, err)
	}
	p := new(upstream.Pending)
	if err := s.decode(op, k, b, p); err != nil {
		return nil, err
	}
	return p, nil
}

// Codes are hashes {d: sealed record, u: consume count}: the count lives
// beside the record under one key (one Cluster slot) and expires with it.
var putCodeScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`)

var consumeCodeScript = redis.NewScript(`
local d = redis.call('HGET', KEYS[1], 'd')
if not d then return false end
local n = redis.call('HINCRBY', KEYS[1], 'u', 1)
return {n, d}`)

// PutCode implements [upstream.Store].
func (s *Store) PutCode(ctx context.Context, key string, c *upstream.Code, ttl time.Duration) error {
	const op = "put code"
	if err := ctx.Err(); err != nil {
		return unavailable(op, err)
	}
	pt, err := c.MarshalBinary()
	if err != nil {
		return fmt.Errorf("redisstore: %s: encode: %w", op, err)
	}
	k := s.key(kindCode, key)
	if err := putCodeScript.Run(ctx, s.rdb, []string{k}, s.seal.seal(k, pt), ttlMillis(ttl)).Err(); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// ConsumeCode implements [upstream.Store]: one Lua script reads the record
// and counts the consumption atomically.
func (s *Store) ConsumeCode(ctx context.Context, key string) (*upstream.Code, error) {
	const op = "consume code"
	if err := ctx.Err(); err != nil {
		return nil, unavailable(op, err)
	}
	k := s.key(kindCode, key)
	res, err := consumeCodeScript.Run(ctx, s.rdb, []string{k}).Slice()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: %s: %w", op, upstream.ErrNotFound)
	}
	if err != nil {
		return nil, unavailable(op, err)
	}
	if len(res) != 2 {
		return nil, unavailable(op, errors.New("unexpected script reply"))
	}
	n, ok1 := res[0].(int64)
	d, ok2 := res[1].(string)
	if !ok1 || !ok2 {
		return nil, unavailable(op, errors.New("unexpected script reply"))
	}
	c := new(upstream.Code)
	if err := s.decode(op, k, []byte(d), c); err != nil {
		return nil, err
	}
	if n > 1 {
		return c, fmt.Errorf("redisstore: %s: %w", op, upstream.ErrConsumed)
	}
	return c, nil
}

// swapScript replaces KEYS[1] with ARGV[2] only if it still holds exactly
// ARGV[1] (the sealed value the caller read and checked): a
// compare-and-swap on the whole ciphertext, so the decision made in Go on
// the decrypted record is the one applied. Returns 1 on success, 0 when
// the key is gone, -1 when it holds something else.
var swapScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if cur ~= ARGV[1] then return -1 end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1`)

// maxSwapRounds bounds the re-reads of a compare-and-swap whose ciphertext
// changed under it; each round re-checks the caller's condition, so a
// changed value that no longer matches gives ErrConflict at once.
const maxSwapRounds = 8

// update reads the sealed record at k, lets decide build the new record
// from the decrypted one (or return an error such as ErrConflict), and
// writes it back only if the stored ciphertext is unchanged.
func (s *Store) update(ctx context.Context, op, k string, ttl time.Duration, fresh func() encoding.BinaryUnmarshaler,
	decide func(cur encoding.BinaryUnmarshaler) (encoding.BinaryMarshaler, error)) error {
	for range maxSwapRounds {
		if err := ctx.Err(); err != nil {
			return unavailable(op, err)
		}
		old, err := s.rdb.Get(ctx, k).Bytes()
		if errors.Is(err, redis.Nil) {
			return fmt.Errorf("redisstore: %s: %w", op, upstream.ErrNotFound)
		}
		if err != nil {
			return unavailable(op, err)
		}
		cur := fresh()
		if err := s.decode(op, k, old, cur); err != nil {
			return err
		}
		next, err := decide(cur)
		if err != nil {
			return fmt.Errorf("redisstore: %s: %w", op, err)
		}
		pt, err := next.MarshalBinary()
		if err != nil {
			return fmt.Errorf("redisstore: %s: encode: %w", op, err)
		}
		n, err := swapScript.Run(ctx, s.rdb, []string{k}, old, s.seal.seal(k, pt), ttlMillis(ttl)).Int()
		if err != nil {
			return unavailable(op, err)
		}
		switch n {
		case 1:
			return nil
		case 0:
			return fmt.Errorf("redisstore: %s: %w", op, upstream.ErrNotFound)
		}
		// Changed between GET and swap: decide again on the new value.
	}
	return fmt.Errorf("redisstore: %s: %w", op, upstream.ErrConflict)
}

// PutFamily implements [upstream.Store].
func (s *Store) PutFamily(ctx context.Context, f *upstream.Family, ttl time.Duration) error {
	return s.put(ctx, "put family", kindFamily, f.ID, f, ttl)
}

// GetFamily implements [upstream.Store].
func (s *Store) GetFamily(ctx context.Context, id string) (*upstream.Family, error) {
	f := new(upstream.Family)
	if err := s.get(ctx, "get family", kindFamily, id, f); err != nil {
		return nil, err
	}
	return f, nil
}

// RotateFamily implements [upstream.Store] as a compare-and-swap (see
// update).
func (s *Store) RotateFamily(ctx context.Context, id, oldHash, newHash string, ttl time.Duration) (*upstream.Family, error) {
	var out *upstream.Family
	err := s.update(ctx, "rotate family", s.key(kindFamily, id), ttl,
		func() encoding.BinaryUnmarshaler { return new(upstream.Family) },
		func(cur encoding.BinaryUnmarshaler) (encoding.BinaryMarshaler, error) {
			f := cur.(*upstream.Family)
			if f.Current != oldHash {
				return nil, upstream.ErrConflict
			}
			f.Current = newHash
			f.Generation++
			out = f
			return f, nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteFamily implements [upstream.Store].
func (s *Store) DeleteFamily(ctx context.Context, id string) error {
	return s.del(ctx, "delete family", s.key(kindFamily, id))
}

func (s *Store) del(ctx context.Context, op, k string) error {
	if err := ctx.Err(); err != nil {
		return unavailable(op, err)
	}
	if err := s.rdb.Del(ctx, k).Err(); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// PutSession implements [upstream.Store]. The stored Version is 1.
func (s *Store) PutSession(ctx context.Context, sess *upstream.Session, ttl time.Duration) error {
	c := *sess
	c.Version = 1
	if err := s.put(ctx, "put session", kindSession, sess.TSID, &c, ttl); err != nil {
		return err
	}
	sess.Version = 1
	return nil
}

// GetSession implements [upstream.Store].
func (s *Store) GetSession(ctx context.Context, tsid string) (*upstream.Session, error) {
	sess := new(upstream.Session)
	if err := s.get(ctx, "get session", kindSession, tsid, sess); err != nil {
		return nil, err
	}
	return sess, nil
}

// UpdateSession implements [upstream.Store] as a compare-and-swap of the
// Version (see update): of concurrent writers with the same Version, one
// succeeds and the others get ErrConflict.
func (s *Store) UpdateSession(ctx context.Context, sess *upstream.Session, ttl time.Duration) error {
	next := *sess
	next.Version = sess.Version + 1
	err := s.update(ctx, "update session", s.key(kindSession, sess.TSID), ttl,
		func() encoding.BinaryUnmarshaler { return new(upstream.Session) },
		func(cur encoding.BinaryUnmarshaler) (encoding.BinaryMarshaler, error) {
			if cur.(*upstream.Session).Version != sess.Version {
				return nil, upstream.ErrConflict
			}
			return &next, nil
		})
	if err != nil {
		return err
	}
	sess.Version = next.Version
	return nil
}

// DeleteSession implements [upstream.Store].
func (s *Store) DeleteSession(ctx context.Context, tsid string) error {
	return s.del(ctx, "delete session", s.key(kindSession, tsid))
}

// PutConsent implements [upstream.Store].
func (s *Store) PutConsent(ctx context.Context, key string, c *upstream.Consent, ttl time.Duration) error {
	return s.put(ctx, "put consent", kindConsent, key, c, ttl)
}

// GetConsent implements [upstream.Store].
func (s *Store) GetConsent(ctx context.Context, key string) (*upstream.Consent, error) {
	c := new(upstream.Consent)
	if err := s.get(ctx, "get consent", kindConsent, key, c); err != nil {
		return nil, err
	}
	return c, nil
}

// LockTTL returns the lifetime of a refresh lock (Config.LockTTL, or its
// default). [upstream.NewTransport] reads it to keep every refresh shorter
// than its lock.
func (s *Store) LockTTL() time.Duration { return s.lockTTL }

// unlockScript deletes the lock only if it still holds the caller's owner
// token, so an owner whose lock expired cannot release a successor's.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// LockSession implements [upstream.SessionLocker]: SET NX PX on a lock key
// beside the session, with a random owner token. It returns
// upstream.ErrLocked when another process holds the lock. The lock expires
// after Config.LockTTL even if its owner dies; unlock releases it only while
// the caller still owns it. When unlock cannot reach Redis, this Store
// remembers the lock and releases it on its next LockSession of that
// session, so a Redis outage does not leave its own requests waiting for
// the expiry.
func (s *Store) LockSession(ctx context.Context, tsid string) (unlock func(), err error) {
	const op = "lock session"
	if err := ctx.Err(); err != nil {
		return nil, unavailable(op, err)
	}
	k := s.key(kindLock, tsid)
	// A lock of ours whose release failed (Redis was down) would make
	// every request for this session wait for its expiry: release it now.
	if v, ok := s.unreleased.Load(k); ok {
		if err := unlockScript.Run(ctx, s.rdb, []string{k}, v.(string)).Err(); err != nil {
			return nil, unavailable(op, err)
		}
		s.unreleased.CompareAndDelete(k, v)
	}
	owner := rand.Text()
	ok, err := s.rdb.SetNX(ctx, k, owner, s.lockTTL).Result()
	if err != nil {
		return nil, unavailable(op, err)
	}
	if !ok {
		return nil, fmt.Errorf("redisstore: %s: %w", op, upstream.ErrLocked)
	}
	return func() {
		// Released on a fresh context: the caller's may be done, and a
		// lock left behind only delays other replicas by LockTTL.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := unlockScript.Run(ctx, s.rdb, []string{k}, owner).Err(); err != nil {
			s.unreleased.Store(k, owner)
		}
	}, nil
}

// UseOnce implements [upstream.ReplayGuard] with SET NX PX on a key of
// its own (the key hashed like every other): Redis applies it atomically,
// so of any number of replicas exactly one sets it, and it expires after
// ttl on the Redis clock. The value is a constant "1": there is nothing to
// seal.
func (s *Store) UseOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	const op = "use once"
	if ttl <= 0 {
		return false, fmt.Errorf("redisstore: %s: ttl %v is not positive", op, ttl)
	}
	if err := ctx.Err(); err != nil {
		return false, unavailable(op, err)
	}
	ok, err := s.rdb.SetNX(ctx, s.key(kindOnce, key), "1", time.Duration(ttlMillis(ttl))*time.Millisecond).Result()
	if err != nil {
		return false, unavailable(op, err)
	}
	return ok, nil
}
