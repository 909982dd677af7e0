package tokenexchange_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/tokenexchange"
)

func TestRoundTripExchangesAndNeverForwardsInboundToken(t *testing.T) {
	t.Parallel()
	sts, be := newFakeSTS(t), newBackend(t)
	logger, logs := logBuffer()
	tr := mustTransport(t, tokenexchange.Config{
		TokenURL:     sts.URL(),
		ClientID:     "mcp-server",
		ClientSecret: canarySecret,
		Audience:     "https://backend.example",
		Resources:    []string{"https://b.example/api", "https://a.example/api"},
		Scopes:       []string{"write", "read"},
		Logger:       logger,
	})
	ctx := identity(canarySubject, time.Now().Add(time.Hour))
	resp, err := get(ctx, tr, be.srv.URL+"/data")
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got, want := be.lastRequest(t).Header.Get("Authorization"), "Bearer "+issued(canarySubject+"|"); got != want {
		t.Errorf("backend Authorization = %q, want %q", got, want)
	}
	be.assertNeverSaw(t, canarySubject)

	form, hdr := sts.last()
	want := url.Values{
		"grant_type":           {tokenexchange.GrantType},
		"subject_token":        {canarySubject},
		"subject_token_type":   {tokenexchange.TokenTypeAccessToken},
		"requested_token_type": {tokenexchange.TokenTypeAccessToken},
		"audience":             {"https://backend.example"},
		"resource":             {"https://a.example/api", "https://b.example/api"},
		"scope":                {"read write"},
	}
	if fmt.Sprint(form) != fmt.Sprint(want) {
		t.Errorf("STS form =\n%v\nwant\n%v", form, want)
	}
	// client_secret_basic: both parts form-encoded (RFC 6749 §2.3.1).
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("mcp-server:"+url.QueryEscape(canarySecret)))
	if got := hdr.Get("Authorization"); got != wantAuth {
		t.Errorf("STS Authorization = %q, want %q", got, wantAuth)
	}
	assertClean(t, "log", logs.String(), canarySubject, canarySecret, issued(canarySubject+"|"))
	if !strings.Contains(logs.String(), "token exchanged") {
		t.Errorf("no exchange log line: %s", logs.String())
	}
}

func TestNoIdentityNeverSends(t *testing.T) {
	t.Parallel()
	sts, be := newFakeSTS(t), newBackend(t)
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL()})
	cases := map[string]context.Context{
		"no identity":        context.Background(),
		"identity, no token": authn.NewContext(context.Background(), &authn.TokenInfo{Subject: "u"}),
	}
	for name, ctx := range cases {
		t.Run(name, func(t *testing.T) {
			body := &trackingBody{Reader: strings.NewReader("payload")}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, be.srv.URL, body)
			resp, err := tr.RoundTrip(req)
			if !errors.Is(err, tokenexchange.ErrNoIdentity) || resp != nil {
				t.Fatalf("RoundTrip = %v, %v; want ErrNoIdentity", resp, err)
			}
			if !body.closed.Load() {
				t.Error("request body not closed on error")
			}
			if _, err := tr.Exchange(ctx); !errors.Is(err, tokenexchange.ErrNoIdentity) {
				t.Errorf("Exchange error = %v", err)
			}
		})
	}
	if sts.calls.Load() != 0 || be.calls.Load() != 0 {
		t.Errorf("STS calls %d, backend calls %d; want 0, 0", sts.calls.Load(), be.calls.Load())
	}
}

func TestRoundTripContract(t *testing.T) {
	t.Parallel()
	sts, be := newFakeSTS(t), newBackend(t)
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL()})
	ctx := identity(canarySubject, time.Now().Add(time.Hour))

	t.Run("caller's request unchanged", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, be.srv.URL+"/x?q=1", nil)
		req.Header.Set("Authorization", "Bearer something-else")
		req.Header.Set("X-Trace", "abc")
		before := req.Header.Clone()
		beforeURL := req.URL.String()
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if fmt.Sprint(req.Header) != fmt.Sprint(before) || req.URL.String() != beforeURL {
			t.Errorf("caller's request modified: %v", req.Header)
		}
		got := be.lastRequest(t)
		if got.Header.Get("X-Trace") != "abc" || got.Header.Get("Authorization") != "Bearer "+issued(canarySubject+"|") {
			t.Errorf("backend headers = %v", got.Header)
		}
		if n := len(got.Header.Values("Authorization")); n != 1 {
			t.Errorf("backend got %d Authorization headers", n)
		}
	})

	t.Run("inbound token already on the request is refused", func(t *testing.T) {
		// Without a cache, an exchange before the check would show as an STS call.
		tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), CacheSize: -1})
		for _, v := range []string{"Bearer " + canarySubject, "bearer  " + canarySubject, canarySubject} {
			calls, stsCalls := be.calls.Load(), sts.calls.Load()
			body := &trackingBody{Reader: strings.NewReader("x")}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, be.srv.URL, body)
			req.Header.Set("X-Forwarded-Token", v)
			_, err := tr.RoundTrip(req)
			if !errors.Is(err, tokenexchange.ErrPassthrough) {
				t.Errorf("header %q: err = %v, want ErrPassthrough", v[:6], err)
			}
			if !body.closed.Load() {
				t.Error("body not closed")
			}
			if be.calls.Load() != calls {
				t.Error("request was sent")
			}
			if sts.calls.Load() != stsCalls {
				t.Error("the refused request still caused an exchange")
			}
			assertClean(t, "error", fmt.Sprint(err), canarySubject)
		}
	})

	t.Run("credential header replaced whatever its spelling", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, be.srv.URL, nil)
		req.Header["authorization"] = []string{"Bearer stale"} // non-canonical key
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := be.lastRequest(t).Header.Values("Authorization")
		if len(got) != 1 || got[0] != "Bearer "+issued(canarySubject+"|") {
			t.Errorf("backend Authorization = %q", got)
		}
	})

	t.Run("body closed when the exchange fails", func(t *testing.T) {
		failing := newFakeSTS(t)
		failing.set(func(s *fakeSTS) {
			s.handle = func(w http.ResponseWriter, _ *http.Request, _ url.Values) {
				writeJSON(w, 400, map[string]any{"error": "invalid_grant"})
			}
		})
		tr := mustTransport(t, tokenexchange.Config{TokenURL: failing.URL()})
		body := &trackingBody{Reader: strings.NewReader("x")}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, be.srv.URL, body)
		if _, err := tr.RoundTrip(req); err == nil {
			t.Fatal("want error")
		}
		if !body.closed.Load() {
			t.Error("body not closed")
		}
	})
}

func TestCustomHeader(t *testing.T) {
	t.Parallel()
	sts, be := newFakeSTS(t), newBackend(t)
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), Header: "x-backend-token"})
	if _, err := get(identity(canarySubject, time.Time{}), tr, be.srv.URL); err != nil {
		t.Fatal(err)
	}
	got := be.lastRequest(t)
	if v := got.Header.Get("X-Backend-Token"); v != issued(canarySubject+"|") {
		t.Errorf("X-Backend-Token = %q", v)
	}
	if v := got.Header.Get("Authorization"); v != "" {
		t.Errorf("Authorization = %q, want none", v)
	}
}

func TestClientAuthentication(t *testing.T) {
	t.Parallel()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)

	type check func(t *testing.T, form url.Values, hdr http.Header, tokenURL string)
	noBasic := func(t *testing.T, hdr http.Header) {
		t.Helper()
		if v := hdr.Get("Authorization"); v != "" {
			t.Errorf("STS Authorization = %q, want none", v)
		}
	}
	assertion := func(key crypto.Signer, alg string, pub any) check {
		return func(t *testing.T, form url.Values, hdr http.Header, tokenURL string) {
			noBasic(t, hdr)
			if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || form.Get("client_id") != "mcp" {
				t.Errorf("form = %v", form)
			}
			if form.Has("client_secret") {
				t.Error("client_secret sent with private_key_jwt")
			}
			a, ok := jwa.LookupSignatureAlgorithm(alg)
			if !ok {
				t.Fatalf("alg %s", alg)
			}
			payload, err := jws.Verify([]byte(form.Get("client_assertion")), jws.WithKey(a, pub))
			if err != nil {
				t.Fatalf("assertion does not verify with %s: %v", alg, err)
			}
			var c map[string]any
			_ = json.Unmarshal(payload, &c)
			if c["iss"] != "mcp" || c["sub"] != "mcp" || c["aud"] != tokenURL || c["jti"] == "" {
				t.Errorf("claims = %v", c)
			}
			exp, iat := c["exp"].(float64), c["iat"].(float64)
			if exp <= iat || exp-iat > 300 {
				t.Errorf("exp-iat = %v", exp-iat)
			}
			msg, _ := jws.Parse([]byte(form.Get("client_assertion")))
			if kid, _ := msg.Signatures()[0].ProtectedHeaders().KeyID(); kid != "k1" {
				t.Errorf("kid = %q", kid)
			}
		}
	}
	cases := []struct {
		name  string
		cfg   tokenexchange.Config
		check check
	}{
		{"basic by default", tokenexchange.Config{ClientID: "mcp", ClientSecret: "a b:c"},
			func(t *testing.T, form url.Values, hdr http.Header, _ string) {
				u, p, ok := (&http.Request{Header: hdr}).BasicAuth()
				if !ok || u != "mcp" || p != "a+b%3Ac" {
					t.Errorf("basic = %q %q %v", u, p, ok)
				}
				if form.Has("client_id") || form.Has("client_secret") {
					t.Error("credentials in body with client_secret_basic")
				}
			}},
		{"post", tokenexchange.Config{ClientID: "mcp", ClientSecret: "s", AuthMethod: tokenexchange.ClientSecretPost},
			func(t *testing.T, form url.Values, hdr http.Header, _ string) {
				noBasic(t, hdr)
				if form.Get("client_id") != "mcp" || form.Get("client_secret") != "s" {
					t.Errorf("form = %v", form)
				}
			}},
		{"public client", tokenexchange.Config{ClientID: "mcp"},
			func(t *testing.T, form url.Values, hdr http.Header, _ string) {
				noBasic(t, hdr)
				if form.Get("client_id") != "mcp" || form.Has("client_secret") {
					t.Errorf("form = %v", form)
				}
			}},
		{"no client at all", tokenexchange.Config{},
			func(t *testing.T, form url.Values, hdr http.Header, _ string) {
				noBasic(t, hdr)
				if form.Has("client_id") {
					t.Errorf("form = %v", form)
				}
			}},
		{"private_key_jwt RS256", tokenexchange.Config{ClientID: "mcp", PrivateKey: rsaKey, KeyID: "k1"},
			assertion(rsaKey, "RS256", &rsaKey.PublicKey)},
		{"private_key_jwt PS256", tokenexchange.Config{ClientID: "mcp", PrivateKey: rsaKey, KeyID: "k1", SigningAlgorithm: "PS256"},
			assertion(rsaKey, "PS256", &rsaKey.PublicKey)},
		{"private_key_jwt ES256", tokenexchange.Config{ClientID: "mcp", PrivateKey: ecKey, KeyID: "k1"},
			assertion(ecKey, "ES256", &ecKey.PublicKey)},
		{"private_key_jwt ES384", tokenexchange.Config{ClientID: "mcp", PrivateKey: ec384, KeyID: "k1"},
			assertion(ec384, "ES384", &ec384.PublicKey)},
		{"private_key_jwt EdDSA", tokenexchange.Config{ClientID: "mcp", PrivateKey: edKey, KeyID: "k1"},
			assertion(edKey, "EdDSA", edKey.Public())},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sts := newFakeSTS(t)
			tc.cfg.TokenURL = sts.URL()
			tr := mustTransport(t, tc.cfg)
			if _, err := tr.Exchange(identity("subj", time.Time{})); err != nil {
				t.Fatal(err)
			}
			form, hdr := sts.last()
			tc.check(t, form, hdr, sts.URL())
		})
	}
}

func TestNewTransportValidation(t *testing.T) {
	t.Parallel()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ok := "https://sts.example/token"
	cases := []struct {
		name string
		cfg  tokenexchange.Config
	}{
		{"no endpoint", tokenexchange.Config{}},
		{"relative URL", tokenexchange.Config{TokenURL: "/token"}},
		{"plain http issuer off loopback", tokenexchange.Config{Issuer: "http://idp.example"}},
		{"plain http off loopback", tokenexchange.Config{TokenURL: "http://sts.example/token"}},
		{"plain http to a name starting 127.", tokenexchange.Config{TokenURL: "http://127.attacker.example/token"}},
		{"plain http to a name ending in a loopback IP", tokenexchange.Config{TokenURL: "http://127.0.0.1.nip.io/token"}},
		{"plain http issuer named 127.", tokenexchange.Config{Issuer: "http://127.idp.example"}},
		{"user info in URL", tokenexchange.Config{TokenURL: "https://u:p@sts.example/token"}},
		{"basic without secret", tokenexchange.Config{TokenURL: ok, ClientID: "c", AuthMethod: tokenexchange.ClientSecretBasic}},
		{"post without id", tokenexchange.Config{TokenURL: ok, ClientSecret: "s", AuthMethod: tokenexchange.ClientSecretPost}},
		{"none with secret", tokenexchange.Config{TokenURL: ok, ClientID: "c", ClientSecret: "s", AuthMethod: tokenexchange.None}},
		{"private_key_jwt without key", tokenexchange.Config{TokenURL: ok, ClientID: "c", AuthMethod: tokenexchange.PrivateKeyJWT}},
		{"alg does not fit key", tokenexchange.Config{TokenURL: ok, ClientID: "c", PrivateKey: rsaKey, SigningAlgorithm: "ES256"}},
		{"alg none", tokenexchange.Config{TokenURL: ok, ClientID: "c", PrivateKey: rsaKey, SigningAlgorithm: "none"}},
		{"unknown method", tokenexchange.Config{TokenURL: ok, AuthMethod: "tls_client_auth"}},
		{"bad header name", tokenexchange.Config{TokenURL: ok, Header: "X Bad"}},
		{"Host header", tokenexchange.Config{TokenURL: ok, Header: "host"}},
		{"hop-by-hop header", tokenexchange.Config{TokenURL: ok, Header: "Proxy-Authorization"}},
		{"bad scope", tokenexchange.Config{TokenURL: ok, Scopes: []string{"a b"}}},
		{"relative resource", tokenexchange.Config{TokenURL: ok, Resources: []string{"api"}}},
		{"resource with fragment", tokenexchange.Config{TokenURL: ok, Resources: []string{"https://api.example/#x"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tr, err := tokenexchange.NewTransport(tc.cfg, nil); err == nil {
				t.Errorf("NewTransport accepted %v: %v", tc.cfg, tr)
			}
		})
	}
	for _, good := range []tokenexchange.Config{
		{TokenURL: ok},
		{TokenURL: "http://127.0.0.1:1/token"},
		{TokenURL: "http://localhost/token"},
		{TokenURL: "http://127.1.2.3:8080/token"},
		{TokenURL: "http://[::1]:8080/token"},
		{TokenURL: "http://sts.internal/token", InsecureAllowHTTP: true},
		{Issuer: "https://sts.example"},
	} {
		if _, err := tokenexchange.NewTransport(good, nil); err != nil {
			t.Errorf("NewTransport(%v) = %v", good, err)
		}
	}
}

func TestDiscoveredTokenEndpoint(t *testing.T) {
	t.Parallel()
	sts := newFakeSTS(t)
	mux := http.NewServeMux()
	var issuer string
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"issuer": issuer, "token_endpoint": sts.URL()})
	})
	md := newTestServer(t, mux)
	issuer = md
	tr := mustTransport(t, tokenexchange.Config{Issuer: issuer})
	tok, err := tr.Exchange(identity("subj", time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != issued("subj|") || sts.calls.Load() != 1 {
		t.Errorf("token %v, calls %d", tok, sts.calls.Load())
	}
}

func TestDiscoveryFailureIsRetryable(t *testing.T) {
	t.Parallel()
	down := newTestServer(t, http.NotFoundHandler())
	tr := mustTransport(t, tokenexchange.Config{Issuer: down})
	_, err := tr.Exchange(identity("subj", time.Time{}))
	if !errors.Is(err, tokenexchange.ErrRetryable) {
		t.Errorf("err = %v, want ErrRetryable", err)
	}
}

func TestCacheLifetime(t *testing.T) {
	t.Parallel()
	type step struct {
		advance   time.Duration
		wantCalls int64
	}
	cases := []struct {
		name       string
		ttl        int           // expires_in
		skew       time.Duration // Config.Skew
		subjectTTL time.Duration // 0: no subject expiry
		steps      []step
	}{
		{"cached until issued expiry minus skew", 600, 30 * time.Second, 0,
			[]step{{0, 1}, {time.Minute, 1}, {500 * time.Second, 1}, {9 * time.Second, 1}, {time.Second, 2}}},
		{"default skew applies", 600, 0, 0,
			[]step{{0, 1}, {569 * time.Second, 1}, {time.Second, 2}}},
		{"never past the subject's expiry", 3600, -1, 90 * time.Second,
			[]step{{0, 1}, {89 * time.Second, 1}, {2 * time.Second, 2}}},
		{"no expires_in is not cached", 0, -1, 0,
			[]step{{0, 1}, {0, 2}, {0, 3}}},
		{"expires_in within skew is not cached", 10, 30 * time.Second, 0,
			[]step{{0, 1}, {0, 2}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sts := newFakeSTS(t)
			sts.set(func(s *fakeSTS) { s.ttl = tc.ttl })
			clock := newClock()
			start := clock.Now()
			// The subject source reports a moving expiry, so only the cache
			// can stop a stale entry being used (FromAuthn would refuse an
			// expired subject outright).
			src := tokenexchange.SubjectTokenFunc(func(context.Context) (string, string, time.Time, error) {
				if tc.subjectTTL == 0 {
					return "subj", "", time.Time{}, nil
				}
				exp := start.Add(tc.subjectTTL)
				for !clock.Now().Before(exp) {
					exp = exp.Add(tc.subjectTTL)
				}
				return "subj", "", exp, nil
			})
			tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), Skew: tc.skew, Now: clock.Now, SubjectTokenSource: src})
			for i, s := range tc.steps {
				clock.Advance(s.advance)
				if _, err := tr.Exchange(context.Background()); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got := sts.calls.Load(); got != s.wantCalls {
					t.Fatalf("step %d (+%v): STS calls = %d, want %d", i, s.advance, got, s.wantCalls)
				}
			}
		})
	}
}

// expires_in counts from when the STS issued the token, which is before its
// answer arrives: a slow answer must not stretch the cached lifetime.
func TestExpiryCountsFromTheRequest(t *testing.T) {
	t.Parallel()
	sts := newFakeSTS(t)
	clock := newClock()
	sts.set(func(s *fakeSTS) {
		s.handle = func(w http.ResponseWriter, _ *http.Request, form url.Values) {
			clock.Advance(20 * time.Second) // the STS takes 20 s to answer
			writeJSON(w, 200, map[string]any{"access_token": "issued", "issued_token_type": form.Get("requested_token_type"),
				"token_type": "Bearer", "expires_in": 60})
		}
	})
	start := clock.Now()
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), Skew: -1, Now: clock.Now})
	tok, err := tr.Exchange(identity("subj", time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(time.Minute); tok.Expiry.After(want) {
		t.Errorf("expiry %v after issue+60s, want at most %v", tok.Expiry.Sub(start), time.Minute)
	}
	clock.Advance(45 * time.Second) // 65 s after the request: the token has expired
	if _, err := tr.Exchange(identity("subj", time.Time{})); err != nil {
		t.Fatal(err)
	}
	if sts.calls.Load() != 2 {
		t.Errorf("STS calls = %d, want 2: an expired token was served from the cache", sts.calls.Load())
	}
}

func TestExpiredSubjectNotSent(t *testing.T) {
	t.Parallel()
	sts := newFakeSTS(t)
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL()})
	_, err := tr.Exchange(identity(canarySubject, time.Now().Add(-time.Second)))
	if !errors.Is(err, tokenexchange.ErrSubjectExpired) || sts.calls.Load() != 0 {
		t.Errorf("err = %v, calls = %d", err, sts.calls.Load())
	}
}

func TestCacheKeySeparatesSubjectsAndActors(t *testing.T) {
	t.Parallel()
	sts := newFakeSTS(t)
	var actor struct {
		sync.Mutex
		tok string
	}
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), ActorToken: func(context.Context) (string, string, error) {
		actor.Lock()
		defer actor.Unlock()
		return actor.tok, "", nil
	}})
	exchange := func(subject string) string {
		t.Helper()
		tok, err := tr.Exchange(identity(subject, time.Time{}))
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	a := exchange("alice")
	if exchange("alice") != a || sts.calls.Load() != 1 {
		t.Fatalf("second exchange for alice was not cached: calls %d", sts.calls.Load())
	}
	if exchange("bob") == a || sts.calls.Load() != 2 {
		t.Fatalf("bob shared alice's entry")
	}
	actor.Lock()
	actor.tok = canaryActor
	actor.Unlock()
	if exchange("alice") == a || sts.calls.Load() != 3 {
		t.Fatal("actor token not part of the cache key")
	}
	form, _ := sts.last()
	if form.Get("actor_token") != canaryActor || form.Get("actor_token_type") != tokenexchange.TokenTypeAccessToken {
		t.Errorf("actor parameters = %v", form)
	}
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	sts := newFakeSTS(t)
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), CacheSize: 2})
	for _, s := range []string{"a", "b", "a", "c"} { // c evicts b (least recently used)
		if _, err := tr.Exchange(identity(s, time.Time{})); err != nil {
			t.Fatal(err)
		}
	}
	if got := sts.calls.Load(); got != 3 {
		t.Fatalf("calls = %d, want 3", got)
	}
	if _, err := tr.Exchange(identity("a", time.Time{})); err != nil || sts.calls.Load() != 3 {
		t.Fatalf("a was evicted: calls %d", sts.calls.Load())
	}
	if _, err := tr.Exchange(identity("b", time.Time{})); err != nil || sts.calls.Load() != 4 {
		t.Fatalf("b was not evicted: calls %d", sts.calls.Load())
	}
}

// Timeout bounds an STS call whether or not tokens are cached: with the cache
// off, a hung STS and a request context without deadline must not hang.
func TestTimeoutWithCacheDisabled(t *testing.T) {
	t.Parallel()
	sts := newFakeSTS(t)
	gate := make(chan struct{})
	t.Cleanup(func() { close(gate) })
	sts.set(func(s *fakeSTS) { s.gate = gate })
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), CacheSize: -1, Timeout: 50 * time.Millisecond})
	done := make(chan error, 1)
	go func() {
		_, err := tr.Exchange(identity("a", time.Time{}))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, tokenexchange.ErrRetryable) {
			t.Errorf("err = %v, want ErrRetryable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exchange still waiting on a hung STS after 10s with Timeout 50ms")
	}
}

func TestCacheDisabled(t *testing.T) {
	t.Parallel()
	sts := newFakeSTS(t)
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), CacheSize: -1})
	for range 3 {
		if _, err := tr.Exchange(identity("a", time.Time{})); err != nil {
			t.Fatal(err)
		}
	}
	if sts.calls.Load() != 3 {
		t.Errorf("calls = %d, want 3", sts.calls.Load())
	}
}

func TestConcurrentMissesOneCall(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name            string
		requests, users int
		wantCalls       int64
	}{
		{"1000 first requests of one user", 1000, 1, 1},
		{"1000 requests over 100 users", 1000, 100, 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sts, be := newFakeSTS(t), newBackend(t)
			gate := make(chan struct{})
			sts.set(func(s *fakeSTS) { s.gate = gate })
			tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL()})
			var wg sync.WaitGroup
			errs := make(chan error, tc.requests)
			for i := range tc.requests {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(identity(fmt.Sprintf("user-%d", i%tc.users), time.Time{}), 20*time.Second)
					defer cancel()
					if _, err := get(ctx, tr, be.srv.URL); err != nil {
						errs <- err
					}
				}()
			}
			// Let the requests pile up on the STS, then release it.
			deadline := time.Now().Add(10 * time.Second)
			for sts.calls.Load() < tc.wantCalls && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			close(gate)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if got := sts.calls.Load(); got != tc.wantCalls {
				t.Errorf("STS calls = %d, want %d", got, tc.wantCalls)
			}
			if got := be.calls.Load(); got != int64(tc.requests) {
				t.Errorf("backend calls = %d, want %d", got, tc.requests)
			}
		})
	}
}

func TestWaiterRespectsItsOwnContext(t *testing.T) {
	t.Parallel()
	sts := newFakeSTS(t)
	gate := make(chan struct{})
	sts.set(func(s *fakeSTS) { s.gate = gate })
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL()})

	patient := make(chan error, 1)
	go func() {
		_, err := tr.Exchange(identity("u", time.Time{}))
		patient <- err
	}()
	for sts.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(identity("u", time.Time{}), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := tr.Exchange(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("impatient waiter: err = %v after %v", err, time.Since(start))
	}
	close(gate)
	if err := <-patient; err != nil {
		t.Fatalf("patient waiter: %v", err)
	}
	if sts.calls.Load() != 1 {
		t.Errorf("STS calls = %d, want 1", sts.calls.Load())
	}
}

func TestLeaderCancellationDoesNotFailOthers(t *testing.T) {
	t.Parallel()
	sts := newFakeSTS(t)
	gate := make(chan struct{})
	sts.set(func(s *fakeSTS) { s.gate = gate })
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL()})
	leaderCtx, cancelLeader := context.WithCancel(identity("u", time.Time{}))
	leader := make(chan error, 1)
	go func() { _, err := tr.Exchange(leaderCtx); leader <- err }()
	for sts.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	follower := make(chan error, 1)
	go func() { _, err := tr.Exchange(identity("u", time.Time{})); follower <- err }()
	time.Sleep(20 * time.Millisecond)
	cancelLeader()
	if err := <-leader; !errors.Is(err, context.Canceled) {
		t.Errorf("leader err = %v", err)
	}
	close(gate)
	if err := <-follower; err != nil {
		t.Errorf("follower failed with the leader: %v", err)
	}
	if sts.calls.Load() != 1 {
		t.Errorf("STS calls = %d, want 1", sts.calls.Load())
	}
}

func TestTokenSourceAdapter(t *testing.T) {
	t.Parallel()
	sts := newFakeSTS(t)
	clock := newClock()
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), Now: clock.Now})
	ts := tr.TokenSource(identity("u", time.Time{}))
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != issued("u|") || tok.TokenType != "Bearer" || !tok.Expiry.Equal(clock.Now().Add(time.Hour)) {
		t.Errorf("token = %+v", tok)
	}
	if _, err := tr.TokenSource(context.Background()).Token(); !errors.Is(err, tokenexchange.ErrNoIdentity) {
		t.Errorf("no identity: %v", err)
	}
}

// An issued token of type N_A (RFC 8693 §2.2.1: not an access token) is sent
// as a bearer token by RoundTrip; the oauth2 adapter must say the same, or an
// oauth2.Transport would send "Authorization: N_A <token>".
func TestTokenSourceAdapterNATokenIsBearer(t *testing.T) {
	t.Parallel()
	sts := newFakeSTS(t)
	sts.set(func(s *fakeSTS) {
		s.handle = func(w http.ResponseWriter, _ *http.Request, form url.Values) {
			writeJSON(w, 200, map[string]any{"access_token": "issued-jwt", "issued_token_type": form.Get("requested_token_type"),
				"token_type": "N_A", "expires_in": 60})
		}
	})
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), RequestedTokenType: tokenexchange.TokenTypeJWT})
	tok, err := tr.TokenSource(identity("u", time.Time{})).Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.Type() != "Bearer" {
		t.Errorf("oauth2 token type %q, want Bearer", tok.Type())
	}
}

func TestExchangeReturnsCopy(t *testing.T) {
	t.Parallel()
	sts := newFakeSTS(t)
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL()})
	a, _ := tr.Exchange(identity("u", time.Time{}))
	a.AccessToken = "mutated"
	b, _ := tr.Exchange(identity("u", time.Time{}))
	if b.AccessToken != issued("u|") {
		t.Error("mutating a returned Token changed the cache")
	}
}

func TestSubjectTokenSource(t *testing.T) {
	t.Parallel()
	sts := newFakeSTS(t)
	src := tokenexchange.SubjectTokenFunc(func(ctx context.Context) (string, string, time.Time, error) {
		return "upstream-token", tokenexchange.TokenTypeIDToken, time.Time{}, nil
	})
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), SubjectTokenSource: src})
	if _, err := tr.Exchange(context.Background()); err != nil {
		t.Fatal(err)
	}
	form, _ := sts.last()
	if form.Get("subject_token") != "upstream-token" || form.Get("subject_token_type") != tokenexchange.TokenTypeIDToken {
		t.Errorf("form = %v", form)
	}
	failing := tokenexchange.SubjectTokenFunc(func(context.Context) (string, string, time.Time, error) {
		return "", "", time.Time{}, errors.New("no upstream session")
	})
	tr = mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), SubjectTokenSource: failing})
	if _, err := tr.Exchange(context.Background()); err == nil || !strings.Contains(err.Error(), "no upstream session") {
		t.Errorf("err = %v", err)
	}
}

// RFC 7523 §3: every client assertion carries its own jti (the server may
// refuse a replayed one) and an iat of now.
func TestClientAssertionJTIUniqueAndIATNow(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sts := newFakeSTS(t)
	var mu sync.Mutex
	var assertions []string
	sts.set(func(s *fakeSTS) {
		s.handle = func(w http.ResponseWriter, _ *http.Request, form url.Values) {
			mu.Lock()
			assertions = append(assertions, form.Get("client_assertion"))
			mu.Unlock()
			writeJSON(w, 200, map[string]any{"access_token": "issued", "issued_token_type": form.Get("requested_token_type"), "token_type": "Bearer"})
		}
	})
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), ClientID: "mcp", PrivateKey: key, CacheSize: -1})
	for range 2 {
		if _, err := tr.Exchange(identity("subj", time.Time{})); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]bool{}
	for _, a := range assertions {
		payload, err := jws.Verify([]byte(a), jws.WithKey(jwa.ES256(), &key.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			JTI string  `json:"jti"`
			IAT float64 `json:"iat"`
		}
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatal(err)
		}
		if len(c.JTI) < 16 || seen[c.JTI] {
			t.Errorf("jti %q missing, short or reused", c.JTI)
		}
		seen[c.JTI] = true
		if d := time.Since(time.Unix(int64(c.IAT), 0)); d < -time.Minute || d > time.Minute {
			t.Errorf("iat is %v away from now", d)
		}
	}
	if len(assertions) != 2 {
		t.Errorf("%d assertions, want 2", len(assertions))
	}
}

// RFC 6750 §5.3: the exchanged token is never sent over plain http to a
// host that is not loopback, and the STS is not even asked for it.
func TestRoundTripRefusesPlainHTTPToRemoteHost(t *testing.T) {
	t.Parallel()
	sts := newFakeSTS(t)
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL()})
	sent := false
	tr.Base = roundTripFunc(func(*http.Request) (*http.Response, error) {
		sent = true
		return nil, errors.New("unreachable")
	})
	ctx := identity(canarySubject, time.Now().Add(time.Hour))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://backend.example/data", nil)
	_, err := tr.RoundTrip(req)
	if err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("err = %v, want a plain-http refusal", err)
	}
	if sent || sts.calls.Load() != 0 {
		t.Fatalf("request sent=%v, STS calls=%d", sent, sts.calls.Load())
	}
	if strings.Contains(err.Error(), canarySubject) {
		t.Fatal("error contains the subject token")
	}
	insecure := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), InsecureAllowHTTP: true})
	insecure.Base = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = true
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	req2, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://backend.example/data", nil)
	if _, err := insecure.RoundTrip(req2); err != nil || !sent {
		t.Fatalf("InsecureAllowHTTP: err=%v sent=%v", err, sent)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
