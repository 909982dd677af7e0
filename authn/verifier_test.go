package authn

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

const testResource = "https://mcp.example.com/mcp"

// fakeClock is a settable clock shared by the IdP and the verifier.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type fixture struct {
	idp   *idptest.Server
	v     *Verifier
	clock *fakeClock
	logs  *bytes.Buffer
}

func newFixture(t *testing.T, idpCfg idptest.Config, mutate func(*Config)) *fixture {
	t.Helper()
	clock := newClock()
	if idpCfg.Audience == nil {
		idpCfg.Audience = []string{testResource}
	}
	idpCfg.Now = clock.Now
	idp := idptest.NewServer(t, idpCfg)
	logs := &syncBuffer{}
	cfg := Config{
		Issuer:     idp.Issuer(),
		Audience:   []string{testResource},
		HTTPClient: idp.Client(),
		Now:        clock.Now,
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	t.Cleanup(func() { v.Close() })
	return &fixture{idp: idp, v: v, clock: clock, logs: &logs.Buffer}
}

type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func TestVerifyValidTokens(t *testing.T) {
	t.Parallel()
	algs := []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	f := newFixture(t, idptest.Config{Algorithms: algs}, nil)
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			tok := f.idp.TokenWith(idptest.TokenOptions{Alg: alg, Claims: map[string]any{
				"sub": "alice", "scope": "tools:read tools:write", "client_id": "cli", "groups": []string{"eng"},
			}})
			info, err := f.v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if info.Subject != "alice" || info.Issuer != f.idp.Issuer() || info.ClientID != "cli" {
				t.Errorf("identity = %v", info)
			}
			if got := strings.Join(info.Scopes, " "); got != "tools:read tools:write" {
				t.Errorf("scopes = %q", got)
			}
			if info.Token() != tok {
				t.Error("Token() does not return the verified token")
			}
			if g, _ := info.Claims["groups"].([]any); len(g) != 1 || g[0] != "eng" {
				t.Errorf("groups claim = %#v", info.Claims["groups"])
			}
			if info.Expiry.IsZero() || !info.Expiry.After(f.clock.Now()) {
				t.Errorf("expiry = %v", info.Expiry)
			}
		})
	}
}

func TestVerifyAudienceForms(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, nil)
	for name, aud := range map[string]any{
		"string":       testResource,
		"array":        []string{"https://other.example", testResource},
		"array of one": []string{testResource},
	} {
		if _, err := f.v.Verify(context.Background(), f.idp.Token(map[string]any{"aud": aud})); err != nil {
			t.Errorf("%s aud: %v", name, err)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{Algorithms: []string{"RS256", "ES256", "PS256"}}, nil)
	now := f.clock.Now()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	attackerJWKS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a jku/x5u URL from the token header was fetched: %s", r.URL)
	}))
	t.Cleanup(attackerJWKS.Close)
	kidRS := f.idp.KeyID("RS256")
	strp := func(s string) *string { return &s }
	pubDER := publicJWKJSON(t, f.idp, kidRS)

	cases := []struct {
		name    string
		token   string
		expired bool
	}{
		{"expired", f.idp.Token(map[string]any{"exp": now.Add(-2 * time.Minute), "iat": now.Add(-time.Hour)}), true},
		{"exp missing", f.idp.Token(map[string]any{"exp": nil}), false},
		{"exp not a number", f.idp.Token(map[string]any{"exp": "tomorrow"}), false},
		{"wrong issuer", f.idp.Token(map[string]any{"iss": "https://evil.example"}), false},
		{"issuer with trailing slash", f.idp.Token(map[string]any{"iss": f.idp.Issuer() + "/"}), false},
		{"wrong audience", f.idp.Token(map[string]any{"aud": "https://other.example/mcp"}), false},
		{"audience missing", f.idp.Token(map[string]any{"aud": nil}), false},
		{"audience not strings", f.idp.Token(map[string]any{"aud": []any{1, 2}}), false},
		{"sub missing", f.idp.Token(map[string]any{"sub": nil}), false},
		{"not yet valid", f.idp.Token(map[string]any{"nbf": now.Add(5 * time.Minute)}), false},
		{"issued in the future", f.idp.Token(map[string]any{"iat": now.Add(5 * time.Minute)}), false},
		{"forged with a foreign RSA key", f.idp.TokenWith(idptest.TokenOptions{Key: rsaKey, Alg: "RS256"}), false},
		{"forged with a foreign EC key", f.idp.TokenWith(idptest.TokenOptions{Key: ecKey, Alg: "ES256"}), false},
		{"alg none", f.idp.TokenWith(idptest.TokenOptions{Unsigned: true}), false},
		{"HS256 with the public key as secret", f.idp.TokenWith(idptest.TokenOptions{HMACKey: pubDER, Kid: strp(kidRS)}), false},
		{"alg header swapped to PS256 on an RS256 signature", f.idp.TokenWith(idptest.TokenOptions{Alg: "RS256", Header: map[string]any{"alg": "PS256"}}), false},
		{"crit header", f.idp.TokenWith(idptest.TokenOptions{Header: map[string]any{"crit": []string{"exp"}, "exp": 1}}), false},
		{"typ not a JWT", f.idp.TokenWith(idptest.TokenOptions{Header: map[string]any{"typ": "dpop+jwt"}}), false},
		{"jku to attacker keys with unknown kid", f.idp.TokenWith(idptest.TokenOptions{Key: rsaKey, Alg: "RS256", Kid: strp("attacker"), Header: map[string]any{"jku": attackerJWKS.URL, "x5u": attackerJWKS.URL}}), false},
		{"embedded jwk header", f.idp.TokenWith(idptest.TokenOptions{Key: ecKey, Alg: "ES256", Header: map[string]any{"jwk": map[string]any{"kty": "EC", "crv": "P-256"}}}), false},
		{"unknown kid", f.idp.TokenWith(idptest.TokenOptions{Kid: strp("no-such-kid")}), false},
		{"oversized", f.idp.Token(map[string]any{"pad": strings.Repeat("x", 17<<10)}), false},
		{"JWE shaped", "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d", false},
		{"garbage", "eyJ.not.valid", false},
		{"opaque without introspection", "0123456789abcdef", false},
		{"non-canonical base64", nonCanonical(f.idp.Token(nil)), false},
		{"line breaks in the signature", lineBreaks(f.idp.Token(nil)), false},
		{"signature stripped", stripSig(f.idp.Token(nil)), false},
		{"tampered payload", tamper(f.idp.Token(map[string]any{"sub": "alice"})), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			info, err := f.v.Verify(context.Background(), tc.token)
			if err == nil {
				t.Fatalf("accepted: %v", info)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
			if errors.Is(err, ErrExpired) != tc.expired {
				t.Fatalf("errors.Is(err, ErrExpired) = %v, want %v (%v)", !tc.expired, tc.expired, err)
			}
			if errors.Is(err, ErrUnavailable) {
				t.Fatalf("a token fault reported as unavailable: %v", err)
			}
			if len(tc.token) > 20 && strings.Contains(err.Error(), tc.token[len(tc.token)-20:]) {
				t.Fatal("error message contains token material")
			}
		})
	}
}

// publicJWKJSON returns the JWK of kid as published, the bytes a confused
// verifier might use as an HMAC secret.
func publicJWKJSON(t *testing.T, idp *idptest.Server, kid string) []byte {
	t.Helper()
	var set struct{ Keys []json.RawMessage }
	if err := json.Unmarshal(idp.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if bytes.Contains(k, []byte(kid)) {
			return k
		}
	}
	t.Fatal("kid not published")
	return nil
}

func nonCanonical(tok string) string {
	// Flip the last signature character to one that decodes to the same
	// bytes with non-zero padding bits; Strict decoding must refuse it.
	parts := strings.Split(tok, ".")
	sig := parts[2]
	last := sig[len(sig)-1]
	alt := byte('B')
	if last == 'B' {
		alt = 'C'
	}
	return parts[0] + "." + parts[1] + "." + sig[:len(sig)-1] + string(alt)
}

// lineBreaks inserts a CRLF into the signature segment: encoding/base64
// skips line breaks, so the signature still decodes to the same bytes, but
// one token has one encoding and this one is refused.
func lineBreaks(tok string) string {
	d := strings.LastIndexByte(tok, '.')
	return tok[:d+9] + "\r\n" + tok[d+9:]
}

func stripSig(tok string) string { return tok[:strings.LastIndexByte(tok, '.')+1] }

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	p = bytes.Replace(p, []byte(`"alice"`), []byte(`"admin"`), 1)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(p) + "." + parts[2]
}

func TestStrictTyp(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, func(c *Config) { c.StrictTyp = true })
	ctx := context.Background()
	if _, err := f.v.Verify(ctx, f.idp.Token(nil)); err != nil {
		t.Fatalf("at+jwt rejected in strict mode: %v", err)
	}
	for _, typ := range []any{"JWT", nil} {
		tok := f.idp.TokenWith(idptest.TokenOptions{Header: map[string]any{"typ": typ}})
		if _, err := f.v.Verify(ctx, tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("typ %v accepted in strict mode: %v", typ, err)
		}
	}
	lax := newFixture(t, idptest.Config{}, nil)
	for _, typ := range []any{"JWT", nil, "application/at+jwt"} {
		tok := lax.idp.TokenWith(idptest.TokenOptions{Header: map[string]any{"typ": typ}})
		if _, err := lax.v.Verify(ctx, tok); err != nil {
			t.Errorf("typ %v rejected by default: %v", typ, err)
		}
	}
}

func TestAlgorithmAllowList(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{Algorithms: []string{"RS256", "ES256"}}, func(c *Config) { c.Algorithms = []string{"ES256"} })
	ctx := context.Background()
	if _, err := f.v.Verify(ctx, f.idp.TokenWith(idptest.TokenOptions{Alg: "ES256"})); err != nil {
		t.Fatalf("ES256: %v", err)
	}
	if _, err := f.v.Verify(ctx, f.idp.TokenWith(idptest.TokenOptions{Alg: "RS256"})); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("RS256 accepted though not allowed: %v", err)
	}
}

func TestJWKAlgMustMatch(t *testing.T) {
	t.Parallel()
	// A JWKS that publishes an RSA key with alg RS256 must not verify a
	// PS256 token signed by the same key.
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	idp := idptest.NewServer(t, idptest.Config{Algorithms: []string{"RS256"}, Audience: []string{testResource}})
	k := newStaticJWKS(t, rsaKey, "k1", "RS256")
	v, err := NewVerifier(Config{Issuer: idp.Issuer(), Audience: []string{testResource}, JWKSURL: k.URL, HTTPClient: k.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	kid := "k1"
	good := idp.TokenWith(idptest.TokenOptions{Key: rsaKey, Alg: "RS256", Kid: &kid})
	if _, err := v.Verify(context.Background(), good); err != nil {
		t.Fatalf("RS256 with matching JWK alg: %v", err)
	}
	bad := idp.TokenWith(idptest.TokenOptions{Key: rsaKey, Alg: "PS256", Kid: &kid})
	if _, err := v.Verify(context.Background(), bad); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("PS256 token verified by an RS256-only JWK: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	base := Config{Issuer: "https://idp.example", Audience: []string{testResource}}
	cases := map[string]func(c *Config){
		"missing issuer":        func(c *Config) { c.Issuer = "" },
		"http issuer":           func(c *Config) { c.Issuer = "http://idp.example" },
		"missing audience":      func(c *Config) { c.Audience = nil },
		"empty audience value":  func(c *Config) { c.Audience = []string{""} },
		"HS256":                 func(c *Config) { c.Algorithms = []string{"HS256"} },
		"none":                  func(c *Config) { c.Algorithms = []string{"none"} },
		"empty algorithms":      func(c *Config) { c.Algorithms = []string{} },
		"leeway above 5m":       func(c *Config) { c.Leeway = 6 * time.Minute },
		"negative leeway":       func(c *Config) { c.Leeway = -time.Second },
		"http JWKS URL":         func(c *Config) { c.JWKSURL = "http://idp.example/jwks" },
		"max TTL below min TTL": func(c *Config) { c.KeyCacheMinTTL = time.Hour; c.KeyCacheMaxTTL = time.Minute },
	}
	for name, mutate := range cases {
		c := base
		mutate(&c)
		if _, err := NewVerifier(c); err == nil {
			t.Errorf("%s: NewVerifier accepted it", name)
		} else if !strings.HasPrefix(err.Error(), "authn: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
	ok := base
	ok.Issuer = "http://127.0.0.1:9/"
	if _, err := NewVerifier(ok); err != nil {
		t.Errorf("loopback http issuer refused: %v", err)
	}
}

func TestKeyRotationRefetchesOnUnknownKid(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, nil)
	ctx := context.Background()
	if _, err := f.v.Verify(ctx, f.idp.Token(nil)); err != nil {
		t.Fatal(err)
	}
	f.idp.RotateKeys()
	f.idp.RetireOldKeys()
	if _, err := f.v.Verify(ctx, f.idp.Token(nil)); err != nil {
		t.Fatalf("token signed by the rotated key: %v", err)
	}
	if n := f.idp.Requests(idptest.EndpointJWKS); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (initial + one on the new kid)", n)
	}
}

func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, nil)
	ctx := context.Background()
	if _, err := f.v.Verify(ctx, f.idp.Token(nil)); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		kid := fmt.Sprintf("random-%d", i)
		if _, err := f.v.Verify(ctx, f.idp.TokenWith(idptest.TokenOptions{Kid: &kid})); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("random kid: %v", err)
		}
	}
	if n := f.idp.Requests(idptest.EndpointJWKS); n != 2 {
		t.Fatalf("JWKS fetched %d times for 50 unknown kids, want 2", n)
	}
	f.clock.Advance(defaultRefreshInterval)
	kid := "after-interval"
	_, _ = f.v.Verify(ctx, f.idp.TokenWith(idptest.TokenOptions{Kid: &kid}))
	if n := f.idp.Requests(idptest.EndpointJWKS); n != 3 {
		t.Fatalf("JWKS fetched %d times after the interval, want 3", n)
	}
}

func TestConcurrentUnknownKidSharesOneFetch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, nil)
	f.idp.SetFault(idptest.EndpointJWKS, idptest.Fault{Delay: 200 * time.Millisecond})
	tok := f.idp.Token(nil)
	var wg sync.WaitGroup
	var failures atomic.Int32
	for range 100 {
		wg.Go(func() {
			if _, err := f.v.Verify(context.Background(), tok); err != nil {
				failures.Add(1)
			}
		})
	}
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of 100 concurrent first verifications failed", failures.Load())
	}
	if n := f.idp.Requests(idptest.EndpointJWKS); n != 1 {
		t.Fatalf("JWKS fetched %d times by 100 concurrent waiters, want 1", n)
	}
}

func TestWaiterGivesUpOnItsOwnContext(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, nil)
	f.idp.SetFault(idptest.EndpointJWKS, idptest.Fault{Delay: 3 * time.Second})
	tok := f.idp.Token(nil)
	patient := make(chan error, 1)
	go func() {
		_, err := f.v.Verify(context.Background(), tok)
		patient <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.v.Verify(ctx, tok)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("impatient waiter: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("impatient waiter blocked %v past its deadline", d)
	}
	if err := <-patient; err != nil {
		t.Fatalf("patient waiter: %v (the shared fetch was cancelled by the other waiter?)", err)
	}
}

func TestStartsBeforeIdPAndRetries(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, func(c *Config) { c.JWKSURL = "" })
	f.idp.SetFault(idptest.EndpointDiscovery, idptest.Fault{Status: 503})
	ctx := context.Background()
	tok := f.idp.Token(nil)
	if _, err := f.v.Verify(ctx, tok); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("IdP down: %v, want ErrUnavailable only", err)
	}
	f.idp.SetFault(idptest.EndpointDiscovery, idptest.Fault{})
	// Within the retry backoff nothing is fetched again.
	before := f.idp.Requests(idptest.EndpointDiscovery)
	if _, err := f.v.Verify(ctx, tok); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("within backoff: %v", err)
	}
	if f.idp.Requests(idptest.EndpointDiscovery) != before {
		t.Fatal("a request within the retry backoff refetched")
	}
	f.clock.Advance(retryBackoff)
	if _, err := f.v.Verify(ctx, tok); err != nil {
		t.Fatalf("after the IdP came up: %v", err)
	}
}

func TestDiscoveryIssuerMismatchIsRejected(t *testing.T) {
	t.Parallel()
	idp := idptest.NewServer(t, idptest.Config{Audience: []string{testResource}})
	// Configure an issuer whose metadata (served by idp) names another issuer.
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, idp.Issuer(), idp.JWKSURL())
	})
	evil := httptest.NewServer(mux)
	defer evil.Close()
	v, err := NewVerifier(Config{Issuer: evil.URL, Audience: []string{testResource}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	_, err = v.Verify(context.Background(), idp.Token(map[string]any{"iss": evil.URL}))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("metadata for another issuer was used: %v", err)
	}
	if idp.Requests(idptest.EndpointJWKS) != 0 {
		t.Fatal("keys were fetched from a mismatched metadata document")
	}
}

func TestDiscoveredJWKSAndIssuerPath(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{IssuerPath: "/tenant1"}, nil)
	if _, err := f.v.Verify(context.Background(), f.idp.Token(nil)); err != nil {
		t.Fatalf("discovered JWKS for a path issuer: %v", err)
	}
	if f.idp.Requests(idptest.EndpointDiscovery) == 0 {
		t.Fatal("JWKS URL was not discovered")
	}
}

func TestOutageServesLastGoodKeysWithinStaleness(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, func(c *Config) { c.MaxStaleness = time.Hour; c.TokenCacheSize = -1 })
	ctx := context.Background()
	if _, err := f.v.Verify(ctx, f.idp.Token(nil)); err != nil {
		t.Fatal(err)
	}
	f.idp.SetFault(idptest.EndpointJWKS, idptest.Fault{Status: 500})
	f.clock.Advance(30 * time.Minute) // past the JWKS max-age: a refresh is due and fails
	if _, err := f.v.Verify(ctx, f.idp.Token(nil)); err != nil {
		t.Fatalf("during the outage, within MaxStaleness: %v", err)
	}
	waitFor(t, func() bool { return f.idp.Requests(idptest.EndpointJWKS) >= 2 })
	f.clock.Advance(31 * time.Minute) // now beyond MaxStaleness
	_, err := f.v.Verify(ctx, f.idp.Token(nil))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("beyond MaxStaleness during outage: %v, want ErrUnavailable", err)
	}
	f.idp.SetFault(idptest.EndpointJWKS, idptest.Fault{})
	f.clock.Advance(retryBackoff)
	if _, err := f.v.Verify(ctx, f.idp.Token(nil)); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestBackgroundRefreshHonoursCacheControl(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, nil)
	f.idp.SetJWKSCacheControl("public, max-age=120")
	ctx := context.Background()
	tok := f.idp.Token(nil)
	if _, err := f.v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(100 * time.Second)
	_, _ = f.v.Verify(ctx, tok)
	if n := f.idp.Requests(idptest.EndpointJWKS); n != 1 {
		t.Fatalf("refreshed before max-age: %d fetches", n)
	}
	f.clock.Advance(30 * time.Second)
	if _, err := f.v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return f.idp.Requests(idptest.EndpointJWKS) == 2 })
}

func TestCacheTTLBounds(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier(Config{Issuer: "https://idp.example", Audience: []string{testResource}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for cc, want := range map[string]time.Duration{
		"":                    5 * time.Minute,
		"max-age=5":           time.Minute,
		"max-age=600":         10 * time.Minute,
		"public, max-age=1e9": 5 * time.Minute,
		"max-age=999999":      time.Hour,
		"no-store":            time.Minute,
	} {
		h := http.Header{}
		if cc != "" {
			h.Set("Cache-Control", cc)
		}
		if got := v.keys.(*jwksSource).cacheTTL(h); got != want {
			t.Errorf("Cache-Control %q: ttl %v, want %v", cc, got, want)
		}
	}
}

func TestVerifiedTokenCache(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, nil)
	ctx := context.Background()
	tok := f.idp.Token(map[string]any{"exp": f.clock.Now().Add(2 * time.Minute)})
	first, err := f.v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if f.v.cache.len() != 1 {
		t.Fatalf("cache holds %d entries", f.v.cache.len())
	}
	second, err := f.v.Verify(ctx, tok)
	if err != nil || second.Subject != first.Subject || second.Token() != tok {
		t.Fatalf("cached verification: %v %v", second, err)
	}
	// The cache never outlives exp: past exp+leeway the token is expired.
	f.clock.Advance(2*time.Minute + defaultLeeway)
	if _, err := f.v.Verify(ctx, tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("cached token past exp: %v", err)
	}
}

func TestCacheEntryDiesWithItsKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, func(c *Config) { c.KeyCacheMinTTL = time.Minute })
	f.idp.SetJWKSCacheControl("max-age=60")
	ctx := context.Background()
	old := f.idp.Token(nil)
	if _, err := f.v.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}
	f.idp.RotateKeys()
	f.idp.RetireOldKeys()
	f.clock.Advance(61 * time.Second)
	_, _ = f.v.Verify(ctx, old) // triggers the background refresh
	waitFor(t, func() bool { return f.idp.Requests(idptest.EndpointJWKS) == 2 })
	waitFor(t, func() bool { s := f.v.keys.(*jwksSource).cur.Load(); return s != nil && s.fetched.Equal(f.clock.Now()) })
	if _, err := f.v.Verify(ctx, old); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token of a key that left the JWKS still accepted from cache: %v", err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{Algorithms: []string{"ES256"}}, func(c *Config) { c.TokenCacheSize = 8 })
	for i := range 40 {
		if _, err := f.v.Verify(context.Background(), f.idp.Token(map[string]any{"n": i})); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.v.cache.len(); n > 8 {
		t.Fatalf("cache grew to %d entries, bound 8", n)
	}
}

// A put into a cache full of live entries used to scan the whole map for
// expired ones while holding the write lock (about 0.2 ms at the default
// 10 000 entries), stalling every warm-path reader on each new token. The
// sweep now samples a bounded number of entries.
func TestCachePutWhenFullIsBounded(t *testing.T) {
	t.Parallel()
	const size, puts = 200_000, 5000
	now := time.Now()
	c := newTokenCache(size)
	entry := func(i int) *cacheEntry {
		return &cacheEntry{info: (&TokenInfo{}).WithToken(strconv.Itoa(i)), until: now.Add(time.Hour)}
	}
	for i := range size {
		c.put(entry(i), now)
	}
	more := make([]*cacheEntry, puts)
	for i := range more {
		more[i] = entry(size + i)
	}
	for _, e := range more {
		c.put(e, now)
	}
	// Unbounded, each put would look at every entry (puts x size); bounded,
	// at most sweepSample plus the one it evicts. Counted, not timed, so a
	// busy machine cannot fail it.
	if bound := puts * (sweepSample + 1); c.examined > bound {
		t.Fatalf("%d puts into a full cache examined %d entries, bound %d", puts, c.examined, bound)
	}
	if n := c.len(); n > size {
		t.Fatalf("cache grew to %d entries, bound %d", n, size)
	}
}

// TestCacheNeverPrintsToken: the cache keeps the token only inside the
// cached TokenInfo, whose printing and logging methods redact it; an entry
// printed or logged whole shows no token material.
func TestCacheNeverPrintsToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, nil)
	tok := f.idp.Token(nil)
	if _, err := f.v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	f.v.cache.mu.RLock()
	defer f.v.cache.mu.RUnlock()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	for k, e := range f.v.cache.m {
		log.Info("entry", "key", k, "entry", e, "value", *e)
		out := fmt.Sprintf("%v %+v %#v %v %+v %s", e, e, e, *e, *e, buf.String())
		if strings.Contains(out, sig) || strings.Contains(out, tok[:40]) {
			t.Fatalf("a cache entry prints token material: %s", out)
		}
	}
}

func TestTokenInfoNeverPrintsToken(t *testing.T) {
	t.Parallel()
	const canary = "eyJcanary.token.value-DO-NOT-PRINT"
	info := (&TokenInfo{Subject: "alice", Issuer: "https://idp", Scopes: []string{"a"}}).WithToken(canary)
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("x", "info", info)
	j, _ := json.Marshal(info)
	outs := []string{
		fmt.Sprint(info), fmt.Sprintf("%v %+v %#v %s %q", info, info, info, info, info),
		string(j), buf.String(), info.String(),
	}
	// A TokenInfo value (dereferenced, or embedded by value in a caller's
	// struct) has none of the pointer methods above: fmt and slog's text
	// handler then print its fields by reflection.
	type session struct{ Info TokenInfo }
	var tbuf bytes.Buffer
	slog.New(slog.NewTextHandler(&tbuf, nil)).Info("x", "info", *info, "session", session{*info})
	outs = append(outs,
		fmt.Sprintf("%v %+v %#v", *info, *info, *info),
		fmt.Sprintf("%v %+v %#v", session{*info}, session{*info}, session{*info}),
		tbuf.String())
	for _, o := range outs {
		if strings.Contains(o, "canary") {
			t.Fatalf("token printed: %s", o)
		}
	}
	if info.Token() != canary || (*info).Token() != canary {
		t.Fatal("Token() lost the token")
	}
	if !strings.Contains(outs[0], "alice") {
		t.Fatalf("String lost the subject: %s", outs[0])
	}
}

func TestVerifyLogsNoTokenMaterial(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, nil)
	tok := f.idp.Token(map[string]any{"aud": "https://elsewhere"})
	_, err := f.v.Verify(context.Background(), tok)
	if err == nil {
		t.Fatal("accepted")
	}
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	if strings.Contains(f.logs.String(), sig) || strings.Contains(err.Error(), sig) {
		t.Fatal("token material in logs or error")
	}
}

// waitFor polls cond for up to 5 s (background refreshes are asynchronous).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAudienceSchemeAndHostCaseInsensitive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		aud  string
		want bool
	}{
		{testResource, true},
		{"HTTPS://MCP.Example.COM/mcp", true},
		{"https://mcp.example.com/MCP", false},      // paths are case-sensitive
		{"https://mcp.example.com:443/mcp", false},  // no default-port folding
		{"https://mcp.example.com/mcp/", false},     // no trailing-slash folding
		{"https://evil@mcp.example.com/mcp", false}, // userinfo never matches
		{"https://mcp.example.co/mmcp", false},      // same length, other host
	} {
		if got := audienceContains([]string{tc.aud}, []string{testResource}); got != tc.want {
			t.Errorf("aud %q: match = %v, want %v", tc.aud, got, tc.want)
		}
	}
}

// TestRejectionNamesValues: a rejected iss or aud is named beside the
// configured value (issue 7 item 9), quoted, truncated and escaped, and
// never with token material.
func TestRejectionNamesValues(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, nil)
	long := "https://elsewhere.example.com/" + strings.Repeat("x", 200) + "\n" + "level=ERROR msg=forged"
	for _, tt := range []struct {
		name   string
		claims map[string]any
		want   string
	}{
		{"aud", map[string]any{"aud": "https://elsewhere"},
			`aud ["https://elsewhere"] does not contain this resource ["` + testResource + `"]`},
		{"aud list", map[string]any{"aud": []string{"a", "b"}},
			`aud ["a" "b"] does not contain this resource ["` + testResource + `"]`},
		{"iss", map[string]any{"iss": "https://evil.example"},
			`iss "https://evil.example" does not match the configured issuer "` + f.idp.Issuer() + `"`},
		{"long aud with a line break", map[string]any{"aud": long},
			`aud ["https://elsewhere.example.com/xx"… ] does not contain this resource`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok := f.idp.Token(tt.claims)
			_, err := f.v.Verify(context.Background(), tok)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v", err)
			}
			msg := strings.ReplaceAll(err.Error(), "…]", "… ]")
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
			if strings.ContainsAny(err.Error(), "\n\r") || strings.Contains(err.Error(), "forged") {
				t.Errorf("attacker text reached the error unescaped or untruncated: %q", err)
			}
			if sig := tok[strings.LastIndexByte(tok, '.')+1:]; strings.Contains(err.Error(), sig) {
				t.Error("token material in the error")
			}
		})
	}
	// Through the middleware, the cause reaches the log.
	log, logs := edgeLogger()
	h := Middleware(f.v, Options{ResourceMetadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource", Logger: log})(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("next reached") }))
	r := httptest.NewRequest(http.MethodGet, testResource, nil)
	r.Header.Set("Authorization", "Bearer "+f.idp.Token(map[string]any{"aud": "https://elsewhere"}))
	h.ServeHTTP(httptest.NewRecorder(), r)
	if want := `aud [\"https://elsewhere\"] does not contain this resource [\"` + testResource + `\"]`; !strings.Contains(logs.String(), want) {
		t.Errorf("log %q does not name the audiences (%s)", logs.String(), want)
	}
}
