package redisstore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/upstream"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore"
)

// TestNoImmortalKeys writes and updates every kind of record with a
// positive ttl, consumes, rotates, locks and uses a once key, then scans
// the whole Redis: every key has a TTL (PTTL > 0), so nothing a Server
// writes with a ttl lives forever.
func TestNoImmortalKeys(t *testing.T) {
	s, _, c := newStore(t)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.PutClient(ctx, &upstream.Client{ID: "c1"}, time.Hour))
	must(s.PutPending(ctx, "p1", &upstream.Pending{ClientID: "c1"}, time.Minute))
	must(s.PutCode(ctx, "code1", &upstream.Code{ClientID: "c1"}, time.Minute))
	if _, err := s.ConsumeCode(ctx, "code1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeCode(ctx, "code1"); !errors.Is(err, upstream.ErrConsumed) {
		t.Fatal(err)
	}
	must(s.PutFamily(ctx, &upstream.Family{ID: "f1", Current: "h0"}, time.Hour))
	if _, err := s.RotateFamily(ctx, "f1", "h0", "h1", 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	sess := secretSession("s1")
	must(s.PutSession(ctx, sess, time.Hour))
	must(s.UpdateSession(ctx, sess, 3*time.Hour))
	must(s.PutConsent(ctx, "k1", &upstream.Consent{ClientID: "c1"}, time.Hour))
	unlock, err := s.LockSession(ctx, "s1")
	must(err)
	defer unlock()
	if fresh, err := s.UseOnce(ctx, "jti1", time.Minute); err != nil || !fresh {
		t.Fatalf("UseOnce = %v, %v", fresh, err)
	}

	var cursor uint64
	n := 0
	for {
		keys, next, err := c.Scan(ctx, cursor, "*", 100).Result()
		must(err)
		for _, k := range keys {
			n++
			if d := c.PTTL(ctx, k).Val(); d <= 0 {
				t.Errorf("key %s has PTTL %v: it never expires", k, d)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	if n != 8 {
		t.Fatalf("scanned %d keys, want 8", n)
	}
}

// TestTruncatedValues: every prefix of a sealed value (and the empty
// value) is refused as undecryptable, never decoded and never a panic.
func TestTruncatedValues(t *testing.T) {
	s, _, c := newStore(t)
	ctx := context.Background()
	if err := s.PutSession(ctx, secretSession("trunc"), time.Hour); err != nil {
		t.Fatal(err)
	}
	k := c.Keys(ctx, "test:session:*").Val()[0]
	full := c.Get(ctx, k).Val()
	for n := range len(full) {
		c.Set(ctx, k, full[:n], time.Hour)
		if _, err := s.GetSession(ctx, "trunc"); !errors.Is(err, redisstore.ErrUndecryptable) || !errors.Is(err, upstream.ErrUnavailable) {
			t.Fatalf("value truncated to %d of %d bytes: %v", n, len(full), err)
		}
	}
}

// TestScriptsUnderOOM: with Redis refusing writes (maxmemory reached,
// noeviction), the scripts fail cleanly with ErrUnavailable and leave the
// previous record intact: no half-written code (deleted but not
// replaced), no key stripped of its TTL.
func TestScriptsUnderOOM(t *testing.T) {
	s, _, c := newStore(t)
	ctx := context.Background()
	if err := s.PutCode(ctx, "code1", &upstream.Code{ClientID: "before"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	sess := secretSession("oom")
	if err := s.PutSession(ctx, sess, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := c.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	errPut := s.PutCode(ctx, "code1", &upstream.Code{ClientID: "after"}, time.Minute)
	upd := *sess
	errUpd := s.UpdateSession(ctx, &upd, 2*time.Hour)
	if err := c.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{"PutCode": errPut, "UpdateSession": errUpd} {
		if err != nil && !errors.Is(err, upstream.ErrUnavailable) {
			t.Errorf("%s under OOM: %v, want nil or ErrUnavailable", name, err)
		}
	}
	code, err := s.ConsumeCode(ctx, "code1")
	if err != nil {
		t.Fatalf("code after a PutCode under OOM: %v (PutCode said %v)", code, errPut)
	}
	if want := map[bool]string{true: "after", false: "before"}[errPut == nil]; code.ClientID != want {
		t.Fatalf("code holds %q after PutCode returned %v", code.ClientID, errPut)
	}
	got, err := s.GetSession(ctx, "oom")
	if err != nil || (errUpd == nil) != (got.Version == 2) {
		t.Fatalf("session after UpdateSession (%v) under OOM: %v, %v", errUpd, got, err)
	}
	for _, pat := range []string{"test:code:*", "test:session:*"} {
		for _, k := range c.Keys(ctx, pat).Val() {
			if d := c.PTTL(ctx, k).Val(); d <= 0 {
				t.Errorf("%s lost its TTL under OOM: %v", k, d)
			}
		}
	}
	t.Logf("under OOM: PutCode %v; UpdateSession %v", errPut, errUpd)
}

// TestKeyNeverMarshalsSecret: a Key logged by a JSON handler or marshalled
// (a config dump) shows its ID only.
func TestKeyNeverMarshalsSecret(t *testing.T) {
	k := newKey("primary")
	secret64 := base64.StdEncoding.EncodeToString(k.Secret)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "key", k, "keys", []redisstore.Key{k},
		"cfg", redisstore.Config{Keys: []redisstore.Key{k}})
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	for where, s := range map[string]string{"json.Marshal": string(b), "slog JSON": logs.String()} {
		if strings.Contains(s, secret64) || strings.Contains(s, string(k.Secret)) {
			t.Errorf("%s shows the secret: %s", where, s)
		}
		if !strings.Contains(s, "primary") {
			t.Errorf("%s lost the key ID: %s", where, s)
		}
	}
}

// TestStorePrintsNoInternals: a Store printed while in use shows its
// prefix, not its lock owner tokens or cipher state, and reads nothing
// unsynchronised.
func TestStorePrintsNoInternals(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			if unlock, err := s.LockSession(ctx, "p"); err == nil {
				unlock()
			}
		}
	}()
	var out string
	for range 50 {
		out = fmt.Sprintf("%v %+v %#v", s, s, s)
	}
	<-done
	if !strings.Contains(out, `"test:"`) || strings.Contains(out, "aeads") || strings.Contains(out, "unreleased") {
		t.Fatalf("printed Store: %.300s", out)
	}
}

// TestRotationReachesRecordsWithoutTTL: records stored without a ttl (the
// Server's dynamically registered clients after their first login when
// ClientTTL is zero, its default) never expire, so "keep the old key until every value written
// under it has expired" would mean keeping it forever. A record read
// through a Store whose first key is the new one is re-sealed under it
// (keeping its TTL), so the old key can go once every live record has been
// used.
func TestRotationReachesRecordsWithoutTTL(t *testing.T) {
	oldKey, newK := newKey("2026-01"), newKey("2026-02")
	s1, _, c := newStore(t, oldKey)
	ctx := context.Background()
	if err := s1.PutClient(ctx, &upstream.Client{ID: "dcr-client"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s1.PutSession(ctx, secretSession("rot"), time.Hour); err != nil {
		t.Fatal(err)
	}
	s2, err := redisstore.New(redisstore.Config{Client: c, Prefix: "test:", Keys: []redisstore.Key{newK, oldKey}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.GetClient(ctx, "dcr-client"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.GetSession(ctx, "rot"); err != nil {
		t.Fatal(err)
	}
	s3, err := redisstore.New(redisstore.Config{Client: c, Prefix: "test:", Keys: []redisstore.Key{newK}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s3.GetClient(ctx, "dcr-client"); err != nil {
		t.Fatalf("client read during the rotation is still under the old key: %v", err)
	}
	if _, err := s3.GetSession(ctx, "rot"); err != nil {
		t.Fatalf("session read during the rotation is still under the old key: %v", err)
	}
	if d := c.PTTL(ctx, c.Keys(ctx, "test:session:*").Val()[0]).Val(); d <= 59*time.Minute {
		t.Fatalf("re-sealing changed the session's TTL to %v", d)
	}
	if d := c.PTTL(ctx, c.Keys(ctx, "test:client:*").Val()[0]).Val(); d != -1 {
		t.Fatalf("re-sealing gave the client a TTL: %v", d)
	}
}
