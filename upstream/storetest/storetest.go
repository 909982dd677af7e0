// Package storetest is the conformance suite every upstream.Store
// implementation runs: TTL expiry, copy semantics, atomic single-use consume
// of pending authorizations and codes under concurrency, compare-and-swap of
// refresh-token families and upstream-token sessions, and the distinction
// between "not found" (upstream.ErrNotFound) and "storage unavailable"
// (upstream.ErrUnavailable). A store that implements upstream.ReplayGuard
// is held to its contract too (first use fresh, later uses not, exactly one
// fresh among concurrent callers, forgotten only after its ttl); for a
// store without it that subtest is skipped.
//
// A store implementation's test calls:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) upstream.Store { return newStore(t) })
//	}
//
// Keys are random per test, so newStore may return stores sharing one
// backend (one Redis).
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/upstream"
)

// Options tunes the suite for a backend.
type Options struct {
	// TTL is the short time-to-live used by the expiry tests. If zero,
	// 200ms.
	TTL time.Duration

	// Advance makes at least d pass on the store's clock. If nil,
	// time.Sleep (right for a real backend); a fake clock (the memory
	// store's Now, miniredis's FastForward) makes the suite instant.
	Advance func(d time.Duration)

	// Concurrency is the number of goroutines racing in the single-use and
	// compare-and-swap tests. If zero, 32.
	Concurrency int
}

// Run runs the conformance suite with default Options.
func Run(t *testing.T, newStore func(t *testing.T) upstream.Store) {
	t.Helper()
	RunWith(t, newStore, Options{})
}

// RunWith runs the conformance suite as subtests of t.
func RunWith(t *testing.T, newStore func(t *testing.T) upstream.Store, opts Options) {
	t.Helper()
	if opts.TTL <= 0 {
		opts.TTL = 200 * time.Millisecond
	}
	if opts.Advance == nil {
		opts.Advance = time.Sleep
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 32
	}
	s := &suite{newStore: newStore, o: opts}
	t.Run("Client", s.client)
	t.Run("Pending", s.pending)
	t.Run("PendingConsumeOnce", s.pendingConcurrent)
	t.Run("Code", s.code)
	t.Run("CodeConsumeOnce", s.codeConcurrent)
	t.Run("Family", s.family)
	t.Run("FamilyRotateOnce", s.familyConcurrent)
	t.Run("Session", s.session)
	t.Run("SessionUpdateOnce", s.sessionConcurrent)
	t.Run("Consent", s.consent)
	t.Run("KindsAreSeparate", s.kinds)
	t.Run("Expiry", s.expiry)
	t.Run("NoExpiry", s.noExpiry)
	t.Run("CancelledContext", s.cancelled)
	t.Run("ReplayGuard", s.replayGuard)
}

// RunUnavailable checks that a store whose backend is down (newDown returns
// one pointed at a stopped server) reports every operation as
// upstream.ErrUnavailable, never as ErrNotFound or success.
func RunUnavailable(t *testing.T, newDown func(t *testing.T) upstream.Store) {
	t.Helper()
	st := newDown(t)
	ctx := t.Context()
	for _, op := range withGuard(st, ops()) {
		t.Run(op.name, func(t *testing.T) {
			err := op.call(ctx, st, "k-"+randID(t))
			if err == nil {
				t.Fatalf("%s on a store that is down: no error", op.name)
			}
			if !errors.Is(err, upstream.ErrUnavailable) {
				t.Fatalf("%s on a store that is down: %v, want ErrUnavailable", op.name, err)
			}
			if errors.Is(err, upstream.ErrNotFound) {
				t.Fatalf("%s on a store that is down: %v also claims ErrNotFound", op.name, err)
			}
		})
	}
}

type op struct {
	name string
	call func(ctx context.Context, st upstream.Store, k string) error
}

// ops is every Store method, each with a key.
func ops() []op {
	return []op{
		{"PutClient", func(ctx context.Context, st upstream.Store, k string) error {
			return st.PutClient(ctx, &upstream.Client{ID: k}, time.Minute)
		}},
		{"GetClient", func(ctx context.Context, st upstream.Store, k string) error {
			_, err := st.GetClient(ctx, k)
			return err
		}},
		{"PutPending", func(ctx context.Context, st upstream.Store, k string) error {
			return st.PutPending(ctx, k, &upstream.Pending{ClientID: "c"}, time.Minute)
		}},
		{"GetPending", func(ctx context.Context, st upstream.Store, k string) error {
			_, err := st.GetPending(ctx, k)
			return err
		}},
		{"ConsumePending", func(ctx context.Context, st upstream.Store, k string) error {
			_, err := st.ConsumePending(ctx, k)
			return err
		}},
		{"PutCode", func(ctx context.Context, st upstream.Store, k string) error {
			return st.PutCode(ctx, k, &upstream.Code{ClientID: "c"}, time.Minute)
		}},
		{"ConsumeCode", func(ctx context.Context, st upstream.Store, k string) error {
			_, err := st.ConsumeCode(ctx, k)
			return err
		}},
		{"PutFamily", func(ctx context.Context, st upstream.Store, k string) error {
			return st.PutFamily(ctx, &upstream.Family{ID: k, Current: "a"}, time.Minute)
		}},
		{"GetFamily", func(ctx context.Context, st upstream.Store, k string) error {
			_, err := st.GetFamily(ctx, k)
			return err
		}},
		{"RotateFamily", func(ctx context.Context, st upstream.Store, k string) error {
			_, err := st.RotateFamily(ctx, k, "a", "b", time.Minute)
			return err
		}},
		{"DeleteFamily", func(ctx context.Context, st upstream.Store, k string) error { return st.DeleteFamily(ctx, k) }},
		{"PutSession", func(ctx context.Context, st upstream.Store, k string) error {
			return st.PutSession(ctx, &upstream.Session{TSID: k}, time.Minute)
		}},
		{"GetSession", func(ctx context.Context, st upstream.Store, k string) error {
			_, err := st.GetSession(ctx, k)
			return err
		}},
		{"UpdateSession", func(ctx context.Context, st upstream.Store, k string) error {
			return st.UpdateSession(ctx, &upstream.Session{TSID: k, Version: 1}, time.Minute)
		}},
		{"DeleteSession", func(ctx context.Context, st upstream.Store, k string) error { return st.DeleteSession(ctx, k) }},
		{"PutConsent", func(ctx context.Context, st upstream.Store, k string) error {
			return st.PutConsent(ctx, k, &upstream.Consent{ClientID: "c"}, time.Minute)
		}},
		{"GetConsent", func(ctx context.Context, st upstream.Store, k string) error {
			_, err := st.GetConsent(ctx, k)
			return err
		}},
	}
}

// withGuard adds UseOnce to ops when st is an upstream.ReplayGuard. A
// fresh answer with an error is reported as success, so that the
// unavailable and cancelled checks fail on it.
func withGuard(st upstream.Store, ops []op) []op {
	if _, ok := st.(upstream.ReplayGuard); !ok {
		return ops
	}
	return append(ops, op{"UseOnce", func(ctx context.Context, st upstream.Store, k string) error {
		fresh, err := st.(upstream.ReplayGuard).UseOnce(ctx, k, time.Minute)
		if fresh {
			return nil
		}
		return err
	}})
}

type suite struct {
	newStore func(t *testing.T) upstream.Store
	o        Options
}

func randID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func mustNil(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, upstream.ErrNotFound) {
		t.Fatalf("%s: err = %v, want ErrNotFound", what, err)
	}
	if errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("%s: ErrNotFound also wraps ErrUnavailable: %v", what, err)
	}
}

func (s *suite) client(t *testing.T) {
	st, ctx := s.newStore(t), t.Context()
	id := "https://client.example/" + randID(t)
	_, err := st.GetClient(ctx, id)
	wantNotFound(t, "GetClient of an unknown client", err)

	in := &upstream.Client{
		ID: id, SecretHash: "ab12", RedirectURIs: []string{"http://127.0.0.1/cb", "https://app.example/cb"},
		TokenEndpointAuthMethod: "client_secret_basic", JWKS: []byte(`{"keys":[]}`), Name: "App",
		URI: "https://app.example", Scope: "a b", GrantTypes: []string{"authorization_code"},
		MetadataDocument: true, IssuedAt: time.Unix(1700000000, 0).UTC(),
	}
	mustNil(t, "PutClient", st.PutClient(ctx, in, time.Minute))
	in.RedirectURIs[0] = "https://evil.example/cb" // the store kept its own copy
	got, err := st.GetClient(ctx, id)
	mustNil(t, "GetClient", err)
	if got.ID != id || got.SecretHash != "ab12" || got.RedirectURIs[0] != "http://127.0.0.1/cb" ||
		len(got.RedirectURIs) != 2 || got.TokenEndpointAuthMethod != "client_secret_basic" ||
		string(got.JWKS) != `{"keys":[]}` || got.Name != "App" || got.URI != "https://app.example" ||
		got.Scope != "a b" || len(got.GrantTypes) != 1 || !got.MetadataDocument ||
		!got.IssuedAt.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("GetClient = %+v, not what was put", got)
	}
	got.RedirectURIs[1] = "https://evil.example/cb"
	again, err := st.GetClient(ctx, id)
	mustNil(t, "GetClient", err)
	if again.RedirectURIs[1] != "https://app.example/cb" {
		t.Fatal("mutating a returned client changed the stored one")
	}
	// Put replaces.
	mustNil(t, "PutClient", st.PutClient(ctx, &upstream.Client{ID: id, Name: "New"}, time.Minute))
	again, err = st.GetClient(ctx, id)
	mustNil(t, "GetClient", err)
	if again.Name != "New" || len(again.RedirectURIs) != 0 {
		t.Fatalf("PutClient did not replace: %+v", again)
	}
}

func (s *suite) pending(t *testing.T) {
	st, ctx := s.newStore(t), t.Context()
	id := randID(t)
	p := &upstream.Pending{ClientID: "c", RedirectURI: "http://127.0.0.1/cb", State: "xyz", Scope: "s",
		Resource: "https://mcp.example/mcp", CodeChallenge: "ch", Upstream: "github", UpstreamVerifier: "v",
		Nonce: "n", ConsentKey: "ck", CreatedAt: time.Unix(1700000000, 0)}
	mustNil(t, "PutPending", st.PutPending(ctx, id, p, time.Minute))
	for range 2 { // reading does not consume
		got, err := st.GetPending(ctx, id)
		mustNil(t, "GetPending", err)
		if !got.CreatedAt.Equal(p.CreatedAt) || got.UpstreamVerifier != "v" || got.Nonce != "n" ||
			got.State != "xyz" || got.CodeChallenge != "ch" || got.ConsentKey != "ck" || got.Upstream != "github" {
			t.Fatalf("GetPending = %v, not what was put", got)
		}
	}
	got, err := st.ConsumePending(ctx, id)
	mustNil(t, "ConsumePending", err)
	if got.UpstreamVerifier != "v" || got.Resource != p.Resource || got.RedirectURI != p.RedirectURI {
		t.Fatalf("ConsumePending = %v, not what was put", got)
	}
	_, err = st.ConsumePending(ctx, id)
	wantNotFound(t, "second ConsumePending", err)
	_, err = st.GetPending(ctx, id)
	wantNotFound(t, "GetPending after ConsumePending", err)
}

// race runs f in n goroutines released at once and returns their errors.
func race(n int, f func() error) []error {
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			errs[i] = f()
		}()
	}
	start.Done()
	done.Wait()
	return errs
}

// exactlyOne checks that one error is nil and every other is want.
func exactlyOne(t *testing.T, what string, errs []error, want error) {
	t.Helper()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, want):
			t.Fatalf("%s: loser got %v, want %v", what, err, want)
		}
	}
	if wins != 1 {
		t.Fatalf("%s: %d of %d concurrent callers succeeded, want exactly 1", what, wins, len(errs))
	}
}

func (s *suite) pendingConcurrent(t *testing.T) {
	st, ctx := s.newStore(t), t.Context()
	id := randID(t)
	mustNil(t, "PutPending", st.PutPending(ctx, id, &upstream.Pending{ClientID: "c"}, time.Minute))
	errs := race(s.o.Concurrency, func() error { _, err := st.ConsumePending(ctx, id); return err })
	exactlyOne(t, "ConsumePending", errs, upstream.ErrNotFound)
}

func (s *suite) code(t *testing.T) {
	st, ctx := s.newStore(t), t.Context()
	key := randID(t)
	_, err := st.ConsumeCode(ctx, key)
	wantNotFound(t, "ConsumeCode of an unknown code", err)
	c := &upstream.Code{ClientID: "c", RedirectURI: "r", CodeChallenge: "ch", Scope: "s", Resource: "res",
		Subject: "github:1", Upstream: "github", TSID: "t", FamilyID: "f", AuthTime: time.Unix(1700000000, 0)}
	mustNil(t, "PutCode", st.PutCode(ctx, key, c, time.Minute))
	got, err := st.ConsumeCode(ctx, key)
	mustNil(t, "first ConsumeCode", err)
	if got.ClientID != "c" || got.CodeChallenge != "ch" || got.TSID != "t" || got.FamilyID != "f" ||
		got.Subject != "github:1" || got.Resource != "res" || !got.AuthTime.Equal(c.AuthTime) {
		t.Fatalf("ConsumeCode = %+v, not what was put", got)
	}
	for range 2 {
		got, err = st.ConsumeCode(ctx, key)
		if !errors.Is(err, upstream.ErrConsumed) {
			t.Fatalf("replayed ConsumeCode: err = %v, want ErrConsumed", err)
		}
		if got == nil || got.FamilyID != "f" || got.TSID != "t" {
			t.Fatalf("replayed ConsumeCode returned %+v, want the record (to revoke what it issued)", got)
		}
	}
}

func (s *suite) codeConcurrent(t *testing.T) {
	st, ctx := s.newStore(t), t.Context()
	key := randID(t)
	mustNil(t, "PutCode", st.PutCode(ctx, key, &upstream.Code{ClientID: "c", FamilyID: "f"}, time.Minute))
	errs := race(s.o.Concurrency, func() error { _, err := st.ConsumeCode(ctx, key); return err })
	exactlyOne(t, "ConsumeCode", errs, upstream.ErrConsumed)
}

func (s *suite) family(t *testing.T) {
	st, ctx := s.newStore(t), t.Context()
	id := randID(t)
	_, err := st.GetFamily(ctx, id)
	wantNotFound(t, "GetFamily of an unknown family", err)
	_, err = st.RotateFamily(ctx, id, "h0", "h1", time.Minute)
	wantNotFound(t, "RotateFamily of an unknown family", err)
	f := &upstream.Family{ID: id, ClientID: "c", Subject: "s", Scope: "a", Resource: "r", TSID: "t",
		Current: "h0", CreatedAt: time.Unix(1700000000, 0), ExpiresAt: time.Unix(1800000000, 0)}
	mustNil(t, "PutFamily", st.PutFamily(ctx, f, time.Minute))
	got, err := st.GetFamily(ctx, id)
	mustNil(t, "GetFamily", err)
	if got.Current != "h0" || got.TSID != "t" || got.Generation != 0 || !got.ExpiresAt.Equal(f.ExpiresAt) {
		t.Fatalf("GetFamily = %+v", got)
	}
	rot, err := st.RotateFamily(ctx, id, "h0", "h1", time.Minute)
	mustNil(t, "RotateFamily", err)
	if rot.Current != "h1" || rot.Generation != 1 || rot.ClientID != "c" {
		t.Fatalf("RotateFamily = %+v, want Current h1 Generation 1", rot)
	}
	_, err = st.RotateFamily(ctx, id, "h0", "h2", time.Minute)
	if !errors.Is(err, upstream.ErrConflict) {
		t.Fatalf("RotateFamily with a rotated-out hash: err = %v, want ErrConflict", err)
	}
	got, err = st.GetFamily(ctx, id)
	mustNil(t, "GetFamily", err)
	if got.Current != "h1" {
		t.Fatalf("a conflicting RotateFamily changed Current to %q", got.Current)
	}
	mustNil(t, "DeleteFamily", st.DeleteFamily(ctx, id))
	_, err = st.GetFamily(ctx, id)
	wantNotFound(t, "GetFamily after DeleteFamily", err)
	_, err = st.RotateFamily(ctx, id, "h1", "h2", time.Minute)
	wantNotFound(t, "RotateFamily after DeleteFamily", err)
	mustNil(t, "DeleteFamily of an absent family", st.DeleteFamily(ctx, id))
}

func (s *suite) familyConcurrent(t *testing.T) {
	st, ctx := s.newStore(t), t.Context()
	id := randID(t)
	mustNil(t, "PutFamily", st.PutFamily(ctx, &upstream.Family{ID: id, Current: "h0"}, time.Minute))
	errs := race(s.o.Concurrency, func() error {
		_, err := st.RotateFamily(ctx, id, "h0", "h1-"+randIDNoT(), time.Minute)
		return err
	})
	exactlyOne(t, "RotateFamily", errs, upstream.ErrConflict)
	got, err := st.GetFamily(ctx, id)
	mustNil(t, "GetFamily", err)
	if got.Generation != 1 {
		t.Fatalf("Generation = %d after one successful rotation", got.Generation)
	}
}

func randIDNoT() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *suite) session(t *testing.T) {
	st, ctx := s.newStore(t), t.Context()
	tsid := randID(t)
	_, err := st.GetSession(ctx, tsid)
	wantNotFound(t, "GetSession of an unknown session", err)
	err = st.UpdateSession(ctx, &upstream.Session{TSID: tsid, Version: 1}, time.Minute)
	wantNotFound(t, "UpdateSession of an unknown session", err)

	in := &upstream.Session{TSID: tsid, Upstream: "github", Subject: "github:1", AccessToken: "at1",
		RefreshToken: "rt1", TokenType: "Bearer", IDToken: "idt", Expiry: time.Unix(1700000000, 0), Version: 7}
	mustNil(t, "PutSession", st.PutSession(ctx, in, time.Minute))
	if in.Version != 1 {
		t.Fatalf("PutSession left Version %d, want 1", in.Version)
	}
	got, err := st.GetSession(ctx, tsid)
	mustNil(t, "GetSession", err)
	if got.Version != 1 || got.AccessToken != "at1" || got.RefreshToken != "rt1" || got.IDToken != "idt" ||
		got.TokenType != "Bearer" || got.Subject != "github:1" || !got.Expiry.Equal(in.Expiry) {
		t.Fatalf("GetSession = %+v, not what was put", *got)
	}
	// A winner updates with the version it read.
	upd := *got
	upd.AccessToken, upd.RefreshToken = "at2", "rt2"
	mustNil(t, "UpdateSession", st.UpdateSession(ctx, &upd, time.Minute))
	if upd.Version != 2 {
		t.Fatalf("UpdateSession left Version %d, want 2", upd.Version)
	}
	// A loser holding the old version conflicts and changes nothing.
	stale := *got
	stale.AccessToken = "at-stale"
	err = st.UpdateSession(ctx, &stale, time.Minute)
	if !errors.Is(err, upstream.ErrConflict) {
		t.Fatalf("UpdateSession with a stale Version: err = %v, want ErrConflict", err)
	}
	got, err = st.GetSession(ctx, tsid)
	mustNil(t, "GetSession", err)
	if got.AccessToken != "at2" || got.RefreshToken != "rt2" || got.Version != 2 {
		t.Fatalf("after the conflict GetSession = %+v, want the winner's pair at Version 2", *got)
	}
	// Put resets the version.
	mustNil(t, "PutSession", st.PutSession(ctx, &upstream.Session{TSID: tsid, AccessToken: "at3"}, time.Minute))
	got, err = st.GetSession(ctx, tsid)
	mustNil(t, "GetSession", err)
	if got.Version != 1 || got.AccessToken != "at3" {
		t.Fatalf("PutSession over an existing one: %+v", *got)
	}
	mustNil(t, "DeleteSession", st.DeleteSession(ctx, tsid))
	_, err = st.GetSession(ctx, tsid)
	wantNotFound(t, "GetSession after DeleteSession", err)
	mustNil(t, "DeleteSession of an absent session", st.DeleteSession(ctx, tsid))
}

func (s *suite) sessionConcurrent(t *testing.T) {
	st, ctx := s.newStore(t), t.Context()
	tsid := randID(t)
	mustNil(t, "PutSession", st.PutSession(ctx, &upstream.Session{TSID: tsid, AccessToken: "old"}, time.Minute))
	errs := race(s.o.Concurrency, func() error {
		return st.UpdateSession(ctx, &upstream.Session{TSID: tsid, AccessToken: "new-" + randIDNoT(), Version: 1}, time.Minute)
	})
	exactlyOne(t, "UpdateSession", errs, upstream.ErrConflict)
	got, err := st.GetSession(ctx, tsid)
	mustNil(t, "GetSession", err)
	if got.Version != 2 {
		t.Fatalf("Version = %d after one successful update, want 2", got.Version)
	}
}

func (s *suite) consent(t *testing.T) {
	st, ctx := s.newStore(t), t.Context()
	key := randID(t)
	_, err := st.GetConsent(ctx, key)
	wantNotFound(t, "GetConsent of an unknown key", err)
	in := &upstream.Consent{ClientID: "c", RedirectURI: "r", Scope: "s", GrantedAt: time.Unix(1700000000, 0)}
	mustNil(t, "PutConsent", st.PutConsent(ctx, key, in, time.Minute))
	got, err := st.GetConsent(ctx, key)
	mustNil(t, "GetConsent", err)
	if got.ClientID != "c" || got.RedirectURI != "r" || got.Scope != "s" || !got.GrantedAt.Equal(in.GrantedAt) {
		t.Fatalf("GetConsent = %+v", got)
	}
}

// kinds checks that one key names different records in different kinds.
func (s *suite) kinds(t *testing.T) {
	st, ctx := s.newStore(t), t.Context()
	k := randID(t)
	mustNil(t, "PutClient", st.PutClient(ctx, &upstream.Client{ID: k}, time.Minute))
	_, err := st.GetPending(ctx, k)
	wantNotFound(t, "GetPending under a client's key", err)
	_, err = st.ConsumeCode(ctx, k)
	wantNotFound(t, "ConsumeCode under a client's key", err)
	_, err = st.GetFamily(ctx, k)
	wantNotFound(t, "GetFamily under a client's key", err)
	_, err = st.GetSession(ctx, k)
	wantNotFound(t, "GetSession under a client's key", err)
	_, err = st.GetConsent(ctx, k)
	wantNotFound(t, "GetConsent under a client's key", err)
}

func (s *suite) expiry(t *testing.T) {
	st, ctx := s.newStore(t), t.Context()
	ttl := s.o.TTL
	k := randID(t)
	mustNil(t, "PutClient", st.PutClient(ctx, &upstream.Client{ID: k}, ttl))
	mustNil(t, "PutPending", st.PutPending(ctx, k, &upstream.Pending{ClientID: "c"}, ttl))
	mustNil(t, "PutCode", st.PutCode(ctx, k, &upstream.Code{ClientID: "c"}, ttl))
	mustNil(t, "PutFamily", st.PutFamily(ctx, &upstream.Family{ID: k, Current: "h0"}, ttl))
	mustNil(t, "PutSession", st.PutSession(ctx, &upstream.Session{TSID: k}, ttl))
	mustNil(t, "PutConsent", st.PutConsent(ctx, k, &upstream.Consent{ClientID: "c"}, ttl))
	// A rotation and an update reset the ttl to the long one given. They
	// must reach the records before the short ttl passes: on a real clock
	// a busy machine can take longer than that between two calls, so
	// renewals that found a record gone once the ttl had passed since its
	// put are tried again on fresh keys. A record gone before its ttl
	// fails.
	var k2 string
	for attempt := 1; ; attempt++ {
		k2 = k + "-renewed-" + strconv.Itoa(attempt)
		put := time.Now()
		mustNil(t, "PutFamily", st.PutFamily(ctx, &upstream.Family{ID: k2, Current: "h0"}, ttl))
		mustNil(t, "PutSession", st.PutSession(ctx, &upstream.Session{TSID: k2}, ttl))
		_, errRotate := st.RotateFamily(ctx, k2, "h0", "h1", time.Hour)
		errUpdate := st.UpdateSession(ctx, &upstream.Session{TSID: k2, Version: 1}, time.Hour)
		gone := errors.Is(errRotate, upstream.ErrNotFound) || errors.Is(errUpdate, upstream.ErrNotFound)
		if el := time.Since(put); gone && el >= ttl && attempt < 5 {
			t.Logf("the renewals came %v after the puts, past the %v ttl: trying again", el, ttl)
			continue
		}
		mustNil(t, "RotateFamily", errRotate)
		mustNil(t, "UpdateSession", errUpdate)
		break
	}

	s.o.Advance(2*ttl + 50*time.Millisecond)

	_, err := st.GetClient(ctx, k)
	wantNotFound(t, "GetClient after its ttl", err)
	_, err = st.GetPending(ctx, k)
	wantNotFound(t, "GetPending after its ttl", err)
	_, err = st.ConsumePending(ctx, k)
	wantNotFound(t, "ConsumePending after its ttl", err)
	_, err = st.ConsumeCode(ctx, k)
	wantNotFound(t, "ConsumeCode after its ttl", err)
	_, err = st.GetFamily(ctx, k)
	wantNotFound(t, "GetFamily after its ttl", err)
	_, err = st.RotateFamily(ctx, k, "h0", "h1", time.Minute)
	wantNotFound(t, "RotateFamily after its ttl", err)
	_, err = st.GetSession(ctx, k)
	wantNotFound(t, "GetSession after its ttl", err)
	err = st.UpdateSession(ctx, &upstream.Session{TSID: k, Version: 1}, time.Minute)
	wantNotFound(t, "UpdateSession after its ttl", err)
	_, err = st.GetConsent(ctx, k)
	wantNotFound(t, "GetConsent after its ttl", err)

	_, err = st.GetFamily(ctx, k2)
	mustNil(t, "GetFamily of a family rotated with a longer ttl", err)
	_, err = st.GetSession(ctx, k2)
	mustNil(t, "GetSession of a session updated with a longer ttl", err)
}

func (s *suite) noExpiry(t *testing.T) {
	st, ctx := s.newStore(t), t.Context()
	k := randID(t)
	mustNil(t, "PutClient", st.PutClient(ctx, &upstream.Client{ID: k}, 0))
	s.o.Advance(2*s.o.TTL + 50*time.Millisecond)
	_, err := st.GetClient(ctx, k)
	mustNil(t, "GetClient put with ttl 0 (no expiry)", err)
}

func (s *suite) cancelled(t *testing.T) {
	st := s.newStore(t)
	k := randID(t)
	// Records exist, so a store that ignored the context would succeed.
	ctx := t.Context()
	mustNil(t, "PutClient", st.PutClient(ctx, &upstream.Client{ID: k}, time.Minute))
	mustNil(t, "PutPending", st.PutPending(ctx, k, &upstream.Pending{ClientID: "c"}, time.Minute))
	mustNil(t, "PutSession", st.PutSession(ctx, &upstream.Session{TSID: k}, time.Minute))
	done, cancel := context.WithCancel(ctx)
	cancel()
	for _, op := range withGuard(st, ops()) {
		err := op.call(done, st, k)
		if err == nil {
			t.Errorf("%s with a cancelled context: no error", op.name)
			continue
		}
		if errors.Is(err, upstream.ErrNotFound) {
			t.Errorf("%s with a cancelled context: %v claims ErrNotFound", op.name, err)
		}
		if !errors.Is(err, upstream.ErrUnavailable) {
			t.Errorf("%s with a cancelled context: %v, want ErrUnavailable", op.name, err)
		}
	}
	// Nothing was consumed by the cancelled calls.
	_, err := st.ConsumePending(ctx, k)
	mustNil(t, "ConsumePending after cancelled calls", err)
	if g, ok := st.(upstream.ReplayGuard); ok {
		fresh, err := g.UseOnce(ctx, k, time.Minute)
		mustNil(t, "UseOnce after a cancelled UseOnce", err)
		if !fresh {
			t.Error("UseOnce after a cancelled UseOnce of the same key: not fresh, so the cancelled call recorded it")
		}
	}
}

func (s *suite) replayGuard(t *testing.T) {
	st, ctx := s.newStore(t), t.Context()
	g, ok := st.(upstream.ReplayGuard)
	if !ok {
		t.Skip("the store does not implement upstream.ReplayGuard")
	}
	use := func(what, k string, ttl time.Duration, want bool) {
		t.Helper()
		fresh, err := g.UseOnce(ctx, k, ttl)
		mustNil(t, what, err)
		if fresh != want {
			t.Fatalf("%s: fresh = %v, want %v", what, fresh, want)
		}
	}
	k := randID(t)
	use("first UseOnce", k, time.Minute, true)
	use("second UseOnce", k, time.Minute, false)
	use("third UseOnce, with another ttl", k, time.Hour, false)
	use("UseOnce of another key", k+"-other", time.Minute, true)

	// Of concurrent callers exactly one is fresh; the others are told the
	// key was used, without an error.
	k = randID(t)
	var mu sync.Mutex
	freshes := 0
	errs := race(s.o.Concurrency, func() error {
		fresh, err := g.UseOnce(ctx, k, time.Minute)
		if fresh {
			mu.Lock()
			freshes++
			mu.Unlock()
		}
		return err
	})
	for _, err := range errs {
		mustNil(t, "concurrent UseOnce", err)
	}
	if freshes != 1 {
		t.Fatalf("%d of %d concurrent UseOnce calls were fresh, want exactly 1", freshes, s.o.Concurrency)
	}

	// A key is remembered for its ttl, then forgotten.
	short, long := randID(t), randID(t)
	use("UseOnce with the short ttl", short, s.o.TTL, true)
	use("UseOnce with a long ttl", long, time.Hour, true)
	s.o.Advance(2*s.o.TTL + 50*time.Millisecond)
	use("UseOnce after the short ttl passed", short, s.o.TTL, true)
	use("UseOnce within the long ttl", long, time.Hour, false)

	// A ttl <= 0 is refused: a key is never remembered forever.
	for _, ttl := range []time.Duration{0, -time.Second} {
		fresh, err := g.UseOnce(ctx, randID(t), ttl)
		if err == nil || fresh {
			t.Fatalf("UseOnce with ttl %v = %v, %v; want an error and not fresh", ttl, fresh, err)
		}
	}
}
