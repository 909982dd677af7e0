package authn

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/observe"
)

// recorder is an Observer that keeps every event.
type recorder struct {
	mu     sync.Mutex
	verifs []observe.Verification
	fetch  []observe.KeyFetch
	intro  []observe.Introspection
}

func (r *recorder) observer() *observe.Observer {
	return &observe.Observer{
		Verification: func(_ context.Context, e observe.Verification) {
			r.mu.Lock()
			r.verifs = append(r.verifs, e)
			r.mu.Unlock()
		},
		KeyFetch: func(_ context.Context, e observe.KeyFetch) {
			r.mu.Lock()
			r.fetch = append(r.fetch, e)
			r.mu.Unlock()
		},
		Introspection: func(_ context.Context, e observe.Introspection) {
			r.mu.Lock()
			r.intro = append(r.intro, e)
			r.mu.Unlock()
		},
	}
}

// lastVerification returns the only verification recorded since n events,
// failing unless exactly one was.
func (r *recorder) verificationSince(t *testing.T, n int) observe.Verification {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.verifs) != n+1 {
		t.Fatalf("%d verification events, want 1", len(r.verifs)-n)
	}
	return r.verifs[n]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.verifs)
}

func TestObserverVerificationCauses(t *testing.T) {
	rec := &recorder{}
	f := newFixture(t, idptest.Config{Algorithms: []string{"RS256"}}, func(c *Config) { c.Observer = rec.observer() })
	now := f.clock.Now()
	foreign, _ := rsa.GenerateKey(rand.Reader, 2048)
	strp := func(s string) *string { return &s }
	good := f.idp.Token(nil)

	cases := []struct {
		name  string
		token string
		want  observe.Cause
		cache observe.CacheResult
	}{
		{"valid (first time)", good, observe.CauseNone, observe.CacheMiss},
		{"valid (again)", good, observe.CauseNone, observe.CacheHit},
		{"empty", "", observe.CauseNoToken, observe.CacheNotUsed},
		{"expired", f.idp.Token(map[string]any{"exp": now.Add(-2 * time.Minute), "iat": now.Add(-time.Hour)}), observe.CauseExpired, observe.CacheMiss},
		{"wrong issuer", f.idp.Token(map[string]any{"iss": "https://evil.example"}), observe.CauseWrongIssuer, observe.CacheMiss},
		{"wrong audience", f.idp.Token(map[string]any{"aud": "https://other.example/mcp"}), observe.CauseWrongAudience, observe.CacheMiss},
		{"audience missing", f.idp.Token(map[string]any{"aud": nil}), observe.CauseWrongAudience, observe.CacheMiss},
		{"sub missing", f.idp.Token(map[string]any{"sub": nil}), observe.CauseBadClaims, observe.CacheMiss},
		{"exp not a number", f.idp.Token(map[string]any{"exp": "tomorrow"}), observe.CauseBadClaims, observe.CacheMiss},
		{"not yet valid", f.idp.Token(map[string]any{"nbf": now.Add(5 * time.Minute)}), observe.CauseNotYetValid, observe.CacheMiss},
		{"issued in the future", f.idp.Token(map[string]any{"iat": now.Add(5 * time.Minute)}), observe.CauseNotYetValid, observe.CacheMiss},
		{"bad signature", f.idp.TokenWith(idptest.TokenOptions{Key: foreign, Alg: "RS256"}), observe.CauseBadSignature, observe.CacheMiss},
		{"tampered payload", tamper(f.idp.Token(map[string]any{"sub": "alice"})), observe.CauseBadSignature, observe.CacheMiss},
		{"unknown kid", f.idp.TokenWith(idptest.TokenOptions{Kid: strp("no-such-kid")}), observe.CauseUnknownKey, observe.CacheMiss},
		{"alg none", f.idp.TokenWith(idptest.TokenOptions{Unsigned: true}), observe.CauseBadHeader, observe.CacheMiss},
		{"crit header", f.idp.TokenWith(idptest.TokenOptions{Header: map[string]any{"crit": []string{"exp"}, "exp": 1}}), observe.CauseBadHeader, observe.CacheMiss},
		{"typ refused", f.idp.TokenWith(idptest.TokenOptions{Header: map[string]any{"typ": "dpop+jwt"}}), observe.CauseBadHeader, observe.CacheMiss},
		{"oversized", f.idp.Token(map[string]any{"pad": strings.Repeat("x", 17<<10)}), observe.CauseMalformed, observe.CacheNotUsed},
		{"JWE shaped", "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d", observe.CauseMalformed, observe.CacheMiss},
		{"signature stripped", stripSig(f.idp.Token(nil)), observe.CauseBadSignature, observe.CacheMiss},
		{"header not base64url", "eyJh!.eyJ.sig", observe.CauseMalformed, observe.CacheMiss},
		{"opaque without introspection", "0123456789abcdef", observe.CauseMalformed, observe.CacheMiss},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := rec.count()
			_, err := f.v.Verify(context.Background(), tc.token)
			if (err == nil) != (tc.want == observe.CauseNone) {
				t.Fatalf("Verify: %v", err)
			}
			e := rec.verificationSince(t, n)
			if e.Cause != tc.want || e.Cache != tc.cache || e.Issuer != f.idp.Issuer() {
				t.Fatalf("event = {cause %q, cache %q, issuer %q}, want {%q, %q, %q} (err: %v)",
					e.Cause, e.Cache, e.Issuer, tc.want, tc.cache, f.idp.Issuer(), err)
			}
			if wantOutcome := map[bool]observe.Outcome{true: observe.OK, false: observe.Invalid}[err == nil]; e.Cause.Outcome() != wantOutcome {
				t.Errorf("outcome = %v, want %v", e.Cause.Outcome(), wantOutcome)
			}
			if e.Cache == observe.CacheHit {
				if !e.Start.IsZero() || e.Duration != 0 {
					t.Errorf("a cache hit is timed: %+v", e)
				}
			} else if e.Start.IsZero() || e.Duration <= 0 {
				t.Errorf("verification not timed: %+v", e)
			}
		})
	}

	// The first verification fetched the JWKS once, and said so.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.fetch) < 1 {
		t.Fatal("no KeyFetch event")
	}
	if e := rec.fetch[0]; e.Outcome != observe.OK || e.Keys < 1 || e.Issuer != f.idp.Issuer() || e.Duration <= 0 {
		t.Fatalf("KeyFetch = %+v", e)
	}
}

func TestObserverUnavailable(t *testing.T) {
	rec := &recorder{}
	f := newFixture(t, idptest.Config{}, func(c *Config) { c.Observer = rec.observer() })
	f.idp.SetFault(idptest.EndpointJWKS, idptest.Fault{Status: 503})
	if _, err := f.v.Verify(context.Background(), f.idp.Token(nil)); err == nil {
		t.Fatal("verified without keys")
	}
	if e := rec.verificationSince(t, 0); e.Cause != observe.CauseUnavailable || e.Cause.Outcome() != observe.Unavailable {
		t.Fatalf("verification = %+v, want cause unavailable", e)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.fetch) != 1 || rec.fetch[0].Outcome != observe.Unavailable || rec.fetch[0].Keys != 0 {
		t.Fatalf("KeyFetch events = %+v, want one unavailable", rec.fetch)
	}
}

func TestObserverIntrospection(t *testing.T) {
	rec := &recorder{}
	f := newFixture(t, idptest.Config{}, func(c *Config) {
		c.Introspection = &IntrospectionConfig{}
		c.Observer = rec.observer()
	})
	ctx := context.Background()
	active := f.idp.OpaqueToken(map[string]any{"sub": "bob"})
	if _, err := f.v.Verify(ctx, active); err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(ctx, active); err != nil { // from the introspection cache: no call
		t.Fatal(err)
	}
	revoked := f.idp.OpaqueToken(nil)
	f.idp.Revoke(revoked)
	if _, err := f.v.Verify(ctx, revoked); err == nil {
		t.Fatal("revoked token accepted")
	}
	f.idp.SetFault(idptest.EndpointIntrospection, idptest.Fault{Status: 500})
	if _, err := f.v.Verify(ctx, f.idp.OpaqueToken(nil)); err == nil {
		t.Fatal("accepted with introspection down")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var got []string
	for _, e := range rec.intro {
		got = append(got, e.Outcome.String()+"/"+e.Cause.String())
		if e.Issuer != f.idp.Issuer() || e.Duration <= 0 {
			t.Errorf("introspection event %+v", e)
		}
	}
	if want := "ok/ invalid/inactive unavailable/unavailable"; strings.Join(got, " ") != want {
		t.Fatalf("introspection events = %q, want %q", strings.Join(got, " "), want)
	}
	var causes []string
	for _, e := range rec.verifs {
		causes = append(causes, e.Cause.Outcome().String())
	}
	if want := "ok ok invalid unavailable"; strings.Join(causes, " ") != want {
		t.Fatalf("verification outcomes = %q, want %q", strings.Join(causes, " "), want)
	}
}

// A MultiVerifier answering from a Verifier's cache reports the hit as that
// Verifier would.
func TestObserverMultiVerifierCacheHit(t *testing.T) {
	rec := &recorder{}
	f := newFixture(t, idptest.Config{}, func(c *Config) { c.Observer = rec.observer() })
	m, err := NewMultiVerifier(map[string]TokenVerifier{f.idp.Issuer(): f.v}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := f.idp.Token(nil)
	for range 2 {
		if _, err := m.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.verifs) != 2 || rec.verifs[0].Cache != observe.CacheMiss || rec.verifs[1].Cache != observe.CacheHit {
		t.Fatalf("events = %+v, want a miss then a hit", rec.verifs)
	}
}

// The warm path allocates nothing, with or without an Observer.
func TestObserverWarmPathAllocs(t *testing.T) {
	for name, o := range map[string]*observe.Observer{
		"nil":   nil,
		"empty": {},
		"set":   {Verification: func(context.Context, observe.Verification) {}},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, idptest.Config{}, func(c *Config) { c.Observer = o })
			tok := f.idp.Token(nil)
			ctx := context.Background()
			if _, err := f.v.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
			if n := testing.AllocsPerRun(100, func() { _, _ = f.v.Verify(ctx, tok) }); n != 0 {
				t.Fatalf("warm Verify allocates %v times", n)
			}
		})
	}
}

// A token a MultiVerifier refuses before routing it is reported once to
// each distinct Observer of its Verifiers, with no issuer (nothing read
// from the token) and its cause; a routed token only by the Verifier it is
// routed to.
func TestObserverMultiVerifierRefusals(t *testing.T) {
	shared, other := &recorder{}, &recorder{}
	a := newFixture(t, idptest.Config{}, func(c *Config) { c.Observer = shared.observer() })
	// b shares a's Observer (one event, not two); opaque has one of its own.
	sharedObs := a.v.cfg.Observer
	b := newFixture(t, idptest.Config{}, func(c *Config) { c.Observer = sharedObs })
	opaque := newFixture(t, idptest.Config{}, func(c *Config) { c.Observer = other.observer() })
	withOpaque, err := NewMultiVerifier(map[string]TokenVerifier{a.idp.Issuer(): a.v, b.idp.Issuer(): b.v}, opaque.v)
	if err != nil {
		t.Fatal(err)
	}
	noOpaque, err := NewMultiVerifier(map[string]TokenVerifier{a.idp.Issuer(): a.v, b.idp.Issuer(): b.v}, nil)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	hdr := enc(`{"alg":"RS256","typ":"JWT"}`)
	good := a.idp.Token(nil)

	cases := []struct {
		name  string
		m     *MultiVerifier
		token string
		want  observe.Cause
	}{
		{"empty", withOpaque, "", observe.CauseNoToken},
		{"oversized", withOpaque, good + strings.Repeat("A", 17<<10), observe.CauseMalformed},
		{"opaque without opaque verifier", noOpaque, "0123456789abcdef", observe.CauseMalformed},
		{"truncated JWS", withOpaque, hdr + "." + enc(`{"iss":"x"}`), observe.CauseMalformed},
		{"JWE shaped", withOpaque, "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d", observe.CauseMalformed},
		{"payload not base64url", withOpaque, hdr + ".!!!.sig", observe.CauseMalformed},
		{"payload not an object", withOpaque, hdr + "." + enc(`["iss"]`) + ".sig", observe.CauseMalformed},
		{"duplicate iss", withOpaque, hdr + "." + enc(`{"iss":"a","iss":"b"}`) + ".sig", observe.CauseMalformed},
		{"no iss", withOpaque, a.idp.Token(map[string]any{"iss": nil}), observe.CauseWrongIssuer},
		{"iss not a string", withOpaque, a.idp.Token(map[string]any{"iss": 42}), observe.CauseWrongIssuer},
		{"untrusted iss", withOpaque, a.idp.Token(map[string]any{"iss": "https://evil.example/alice"}), observe.CauseWrongIssuer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, no := shared.count(), other.count()
			if _, err := tc.m.Verify(context.Background(), tc.token); err == nil {
				t.Fatal("Verify accepted the token")
			}
			e := shared.verificationSince(t, n)
			if e.Cause != tc.want || e.Issuer != "" || e.Cache != observe.CacheNotUsed || e.Start.IsZero() || e.Duration < 0 {
				t.Fatalf("event = %+v, want cause %q, no issuer, no cache, timed", e, tc.want)
			}
			wantOther := no
			if tc.m == withOpaque {
				wantOther++ // the opaque verifier's Observer is another one
			}
			if got := other.count(); got != wantOther {
				t.Fatalf("the opaque verifier's Observer got %d events, want %d", got-no, wantOther-no)
			}
			if tc.m == withOpaque {
				if e2 := other.verificationSince(t, no); e2 != e {
					t.Fatalf("events differ: %+v and %+v", e, e2)
				}
			}
		})
	}

	// Routed tokens are reported by the Verifier that verifies them, once.
	n, no := shared.count(), other.count()
	if _, err := withOpaque.Verify(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	if e := shared.verificationSince(t, n); e.Issuer != a.idp.Issuer() || e.Cause != observe.CauseNone || e.Cache != observe.CacheMiss {
		t.Fatalf("routed verification event = %+v", e)
	}
	n = shared.count()
	if _, err := withOpaque.Verify(context.Background(), b.idp.Token(map[string]any{"aud": "https://other.example"})); err == nil {
		t.Fatal("wrong audience accepted")
	}
	if e := shared.verificationSince(t, n); e.Issuer != b.idp.Issuer() || e.Cause != observe.CauseWrongAudience {
		t.Fatalf("routed refusal event = %+v", e)
	}
	if other.count() != no {
		t.Fatal("the opaque verifier's Observer saw routed JWTs")
	}
}

// Without an Observer, or with one, the MultiVerifier's warm path (a
// cache hit of one of its Verifiers) allocates nothing.
func TestObserverMultiVerifierWarmPathAllocs(t *testing.T) {
	for name, o := range map[string]*observe.Observer{
		"nil": nil,
		"set": {Verification: func(context.Context, observe.Verification) {}},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, idptest.Config{}, func(c *Config) { c.Observer = o })
			m, err := NewMultiVerifier(map[string]TokenVerifier{f.idp.Issuer(): f.v}, nil)
			if err != nil {
				t.Fatal(err)
			}
			tok := f.idp.Token(nil)
			ctx := context.Background()
			if _, err := m.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
			if n := testing.AllocsPerRun(100, func() { _, _ = m.Verify(ctx, tok) }); n != 0 {
				t.Fatalf("warm Verify allocates %v times", n)
			}
		})
	}
}
