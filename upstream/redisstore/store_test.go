package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpauth-go/mcpauth/upstream"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore"
)

func TestNewValidates(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	short := redisstore.Key{ID: "a", Secret: make([]byte, 16)}
	for name, cfg := range map[string]redisstore.Config{
		"no client":    {Keys: []redisstore.Key{newKey("a")}},
		"no keys":      {Client: c},
		"short secret": {Client: c, Keys: []redisstore.Key{short}},
		"empty id":     {Client: c, Keys: []redisstore.Key{{Secret: make([]byte, 32)}}},
		"duplicate id": {Client: c, Keys: []redisstore.Key{newKey("a"), newKey("a")}},
	} {
		if _, err := redisstore.New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		} else if !strings.HasPrefix(err.Error(), "redisstore: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
}

func TestKeyNeverPrintsSecret(t *testing.T) {
	k := newKey("primary")
	k.Secret = []byte("0123456789abcdef0123456789ABCDEF")
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %q", k, k, k, k, k), k.String()} {
		if strings.Contains(s, "0123456789") {
			t.Fatalf("Key printed its secret: %s", s)
		}
	}
}

// secretSession is a session whose tokens are recognisable in raw bytes.
func secretSession(tsid string) *upstream.Session {
	return &upstream.Session{
		TSID: tsid, Upstream: "github", Subject: "github|42",
		AccessToken:  "gho_ACCESS_" + tsid + "_0123456789abcdef",
		RefreshToken: "ghr_REFRESH_" + tsid + "_0123456789abcdef",
		IDToken:      "eyJID_" + tsid,
		TokenType:    "bearer",
		Expiry:       time.Now().Add(time.Hour).Truncate(time.Second),
	}
}

// TestDumpLeaksNothing writes every record type holding a secret, then reads
// every key and value from the raw Redis (as a dump would) and looks for the
// secrets and the IDs.
func TestDumpLeaksNothing(t *testing.T) {
	s, _, c := newStore(t)
	ctx := context.Background()
	sess := secretSession("tsid-SECRETSESSION")
	if err := s.PutSession(ctx, sess, time.Hour); err != nil {
		t.Fatal(err)
	}
	pend := &upstream.Pending{ClientID: "client-1", UpstreamVerifier: "VERIFIER_0123456789abcdef", Nonce: "NONCE_0123456789", CodeChallenge: "CHALLENGE_0123456789"}
	if err := s.PutPending(ctx, "pending-SECRETID", pend, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCode(ctx, "codehash-SECRET", &upstream.Code{ClientID: "client-1", TSID: "tsid-SECRETSESSION", CodeChallenge: "CHALLENGE_0123456789"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.PutFamily(ctx, &upstream.Family{ID: "family-SECRET", Current: "CURRENTHASH_0123456789", TSID: "tsid-SECRETSESSION"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if fresh, err := s.UseOnce(ctx, "oncekey-SECRET", time.Minute); err != nil || !fresh {
		t.Fatalf("UseOnce = %v, %v", fresh, err)
	}
	var dump bytes.Buffer
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 5 {
		t.Fatalf("%d keys in Redis, want 5: %q", len(keys), keys)
	}
	for _, k := range keys {
		dump.WriteString(k)
		raw, err := c.Dump(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		dump.WriteString(raw)
		if typ, _ := c.Type(ctx, k).Result(); typ == "string" {
			v, _ := c.Get(ctx, k).Result()
			dump.WriteString(v)
		} else {
			for f, v := range c.HGetAll(ctx, k).Val() {
				dump.WriteString(f + v)
			}
		}
	}
	for _, secret := range []string{
		sess.AccessToken, sess.RefreshToken, sess.IDToken, "SECRETSESSION", "github|42",
		"VERIFIER", "NONCE_", "CHALLENGE", "SECRETID", "codehash-SECRET", "CURRENTHASH", "family-SECRET",
		"ACCESS", "REFRESH", "oncekey",
	} {
		if bytes.Contains(dump.Bytes(), []byte(secret)) {
			t.Errorf("raw Redis contains %q", secret)
		}
	}
	// And the records still read back.
	got, err := s.GetSession(ctx, sess.TSID)
	if err != nil || got.AccessToken != sess.AccessToken || got.RefreshToken != sess.RefreshToken || got.Version != 1 {
		t.Fatalf("GetSession = %v, %v", got, err)
	}
}

// TestValueBoundToKey copies a sealed value to another record's key: it
// must not open there.
func TestValueBoundToKey(t *testing.T) {
	s, _, c := newStore(t)
	ctx := context.Background()
	if err := s.PutSession(ctx, secretSession("victim"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, secretSession("attacker"), time.Hour); err != nil {
		t.Fatal(err)
	}
	keys := c.Keys(ctx, "test:session:*").Val()
	if len(keys) != 2 {
		t.Fatalf("keys %q", keys)
	}
	// Find which key is the attacker's by reading through the store first.
	v0 := c.Get(ctx, keys[0]).Val()
	v1 := c.Get(ctx, keys[1]).Val()
	c.Set(ctx, keys[0], v1, 0)
	c.Set(ctx, keys[1], v0, 0)
	for _, tsid := range []string{"victim", "attacker"} {
		_, err := s.GetSession(ctx, tsid)
		if !errors.Is(err, redisstore.ErrUndecryptable) || !errors.Is(err, upstream.ErrUnavailable) {
			t.Errorf("GetSession(%s) after swapping ciphertexts: %v, want ErrUndecryptable and ErrUnavailable", tsid, err)
		}
	}
}

func TestTamperedValueRejected(t *testing.T) {
	s, _, c := newStore(t)
	ctx := context.Background()
	if err := s.PutSession(ctx, secretSession("t1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	k := c.Keys(ctx, "test:session:*").Val()[0]
	b := []byte(c.Get(ctx, k).Val())
	b[len(b)-1] ^= 1
	c.Set(ctx, k, b, 0)
	if _, err := s.GetSession(ctx, "t1"); !errors.Is(err, redisstore.ErrUndecryptable) {
		t.Fatalf("tampered value: %v", err)
	}
}

// TestKeyRotation: values sealed under the old key still open once a new
// key is first; a store without the old key cannot open them.
func TestKeyRotation(t *testing.T) {
	oldKey, newK := newKey("2026-01"), newKey("2026-02")
	s1, _, c := newStore(t, oldKey)
	ctx := context.Background()
	if err := s1.PutSession(ctx, secretSession("rot"), time.Hour); err != nil {
		t.Fatal(err)
	}
	s2, err := redisstore.New(redisstore.Config{Client: c, Prefix: "test:", Keys: []redisstore.Key{newK, oldKey}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.GetSession(ctx, "rot")
	if err != nil {
		t.Fatalf("rotated store cannot read an old value: %v", err)
	}
	if err := s2.UpdateSession(ctx, got, time.Hour); err != nil {
		t.Fatal(err)
	}
	s3, err := redisstore.New(redisstore.Config{Client: c, Prefix: "test:", Keys: []redisstore.Key{newK}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s3.GetSession(ctx, "rot"); err != nil {
		t.Fatalf("value rewritten after rotation is not under the new key: %v", err)
	}
	if _, err := s1.GetSession(ctx, "rot"); !errors.Is(err, redisstore.ErrUndecryptable) {
		t.Fatalf("a store with only the old key read a value sealed under the new one: %v", err)
	}
}

func TestPrefixIsolates(t *testing.T) {
	s, _, c := newStore(t)
	ctx := context.Background()
	k := newKey("k1")
	other, _ := redisstore.New(redisstore.Config{Client: c, Prefix: "other:", Keys: []redisstore.Key{k}})
	if err := s.PutSession(ctx, secretSession("p"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := other.GetSession(ctx, "p"); !errors.Is(err, upstream.ErrNotFound) {
		t.Fatalf("another prefix sees the session: %v", err)
	}
	for _, key := range c.Keys(ctx, "*").Val() {
		if !strings.HasPrefix(key, "test:") {
			t.Errorf("key %q outside the prefix", key)
		}
	}
}

// TestTTLs checks that Redis itself expires records with the ttl given,
// and that UpdateSession resets it.
func TestTTLs(t *testing.T) {
	s, _, c := newStore(t)
	ctx := context.Background()
	if err := s.PutSession(ctx, secretSession("ttl"), 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	k := c.Keys(ctx, "test:session:*").Val()[0]
	if d := c.PTTL(ctx, k).Val(); d <= 9*time.Minute || d > 10*time.Minute {
		t.Fatalf("PTTL after PutSession = %v, want ~10m", d)
	}
	got, _ := s.GetSession(ctx, "ttl")
	if err := s.UpdateSession(ctx, got, 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	if d := c.PTTL(ctx, k).Val(); d <= 47*time.Hour {
		t.Fatalf("PTTL after UpdateSession = %v, want ~48h", d)
	}
	if err := s.PutPending(ctx, "short", &upstream.Pending{ClientID: "c"}, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(120 * time.Millisecond)
	if _, err := s.GetPending(ctx, "short"); !errors.Is(err, upstream.ErrNotFound) {
		t.Fatalf("expired pending: %v", err)
	}
	if err := s.PutCode(ctx, "c", &upstream.Code{ClientID: "c"}, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(120 * time.Millisecond)
	if _, err := s.ConsumeCode(ctx, "c"); !errors.Is(err, upstream.ErrNotFound) {
		t.Fatalf("expired code: %v", err)
	}
	if err := s.PutConsent(ctx, "forever", &upstream.Consent{ClientID: "c"}, 0); err != nil {
		t.Fatal(err)
	}
	k = c.Keys(ctx, "test:consent:*").Val()[0]
	if d := c.PTTL(ctx, k).Val(); d != -1 {
		t.Fatalf("ttl 0 stored with PTTL %v, want none (-1)", d)
	}
}

// TestAtomicAcrossClients runs the single-use and compare-and-swap
// operations from many goroutines over two Stores (two connection pools,
// as two replicas have): exactly one wins each race.
func TestAtomicAcrossClients(t *testing.T) {
	key := newKey("k1")
	s1, srv, _ := newStore(t, key)
	s2, err := redisstore.New(redisstore.Config{Client: newClient(t, srv.Addr()), Prefix: "test:", Keys: []redisstore.Key{key}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stores := []*redisstore.Store{s1, s2}
	const n = 64
	race := func(name string, f func(s *redisstore.Store) error) {
		t.Helper()
		var wg sync.WaitGroup
		var wins, losses atomic.Int64
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				switch err := f(stores[i%2]); {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, upstream.ErrConflict), errors.Is(err, upstream.ErrConsumed), errors.Is(err, upstream.ErrNotFound):
					losses.Add(1)
				default:
					t.Errorf("%s: %v", name, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || losses.Load() != n-1 {
			t.Errorf("%s: %d winners, %d losers; want 1 and %d", name, wins.Load(), losses.Load(), n-1)
		}
	}

	if err := s1.PutPending(ctx, "p", &upstream.Pending{ClientID: "c"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	race("ConsumePending", func(s *redisstore.Store) error { _, err := s.ConsumePending(ctx, "p"); return err })

	if err := s1.PutCode(ctx, "code", &upstream.Code{ClientID: "c", TSID: "x"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	race("ConsumeCode", func(s *redisstore.Store) error {
		c, err := s.ConsumeCode(ctx, "code")
		if errors.Is(err, upstream.ErrConsumed) && (c == nil || c.TSID != "x") {
			t.Errorf("ErrConsumed without the record: %v", c)
		}
		return err
	})

	if err := s1.PutFamily(ctx, &upstream.Family{ID: "f", Current: "h0"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	var seq atomic.Int64
	race("RotateFamily", func(s *redisstore.Store) error {
		_, err := s.RotateFamily(ctx, "f", "h0", fmt.Sprintf("h1-%d", seq.Add(1)), time.Hour)
		return err
	})
	if f, err := s2.GetFamily(ctx, "f"); err != nil || f.Generation != 1 || !strings.HasPrefix(f.Current, "h1-") {
		t.Fatalf("family after race: %+v, %v", f, err)
	}

	if err := s1.PutSession(ctx, secretSession("s"), time.Hour); err != nil {
		t.Fatal(err)
	}
	race("UpdateSession", func(s *redisstore.Store) error {
		cur := secretSession("s")
		cur.Version = 1
		cur.AccessToken = fmt.Sprintf("new-%d", seq.Add(1))
		return s.UpdateSession(ctx, cur, time.Hour)
	})
	if got, err := s1.GetSession(ctx, "s"); err != nil || got.Version != 2 || !strings.HasPrefix(got.AccessToken, "new-") {
		t.Fatalf("session after race: %v, %v", got, err)
	}

	race("LockSession", func(s *redisstore.Store) error {
		_, err := s.LockSession(ctx, "s") // never unlocked: one holder only
		if errors.Is(err, upstream.ErrLocked) {
			return upstream.ErrConflict
		}
		return err
	})
}

func TestLockSession(t *testing.T) {
	s, srv, _ := newStore(t)
	ctx := context.Background()
	short, err := redisstore.New(redisstore.Config{Client: newClient(t, srv.Addr()), Prefix: "test:", Keys: []redisstore.Key{newKey("x")}, LockTTL: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := s.LockSession(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LockSession(ctx, "a"); !errors.Is(err, upstream.ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	if u, err := s.LockSession(ctx, "b"); err != nil {
		t.Fatalf("another session's lock: %v", err)
	} else {
		u()
	}
	unlock()
	if u, err := s.LockSession(ctx, "a"); err != nil {
		t.Fatalf("lock after unlock: %v", err)
	} else {
		u()
	}
	// A lock whose holder died expires; the dead holder's late unlock does
	// not release the next holder's lock. The next holder's lock is a long
	// one (s shares short's keys): with another 100 ms lock it could expire
	// on its own between the two calls below on a slow machine.
	dead, err := short.LockSession(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	next, err := s.LockSession(ctx, "c")
	if err != nil {
		t.Fatalf("lock not expired: %v", err)
	}
	dead()
	if _, err := short.LockSession(ctx, "c"); !errors.Is(err, upstream.ErrLocked) {
		t.Fatalf("an expired holder's unlock released the next holder's lock: %v", err)
	}
	next()
}

// TestDownIsUnavailable: with Redis gone every method reports
// ErrUnavailable, never ErrNotFound; a done context too.
func TestDownIsUnavailable(t *testing.T) {
	s, srv, _ := newStore(t)
	ctx := context.Background()
	srv.Kill()
	checks := map[string]error{}
	_, checks["GetSession"] = s.GetSession(ctx, "x")
	checks["PutSession"] = s.PutSession(ctx, secretSession("x"), time.Hour)
	checks["UpdateSession"] = s.UpdateSession(ctx, secretSession("x"), time.Hour)
	_, checks["ConsumeCode"] = s.ConsumeCode(ctx, "x")
	_, checks["ConsumePending"] = s.ConsumePending(ctx, "x")
	_, checks["RotateFamily"] = s.RotateFamily(ctx, "x", "a", "b", time.Hour)
	_, checks["LockSession"] = s.LockSession(ctx, "x")
	checks["DeleteSession"] = s.DeleteSession(ctx, "x")
	for name, err := range checks {
		if !errors.Is(err, upstream.ErrUnavailable) || errors.Is(err, upstream.ErrNotFound) {
			t.Errorf("%s with Redis down: %v", name, err)
		}
	}
	srv.Restart()
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.GetSession(done, "x"); !errors.Is(err, upstream.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("done context: %v", err)
	}
}
