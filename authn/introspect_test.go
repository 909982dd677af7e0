package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

const (
	introIssuer   = "https://as.example.com"
	introResource = "https://mcp.example.com/mcp"
)

// introClock is a settable clock.
type introClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *introClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *introClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// introFake is an RFC 7662 endpoint whose answer each test chooses. It
// counts requests and records the last one.
type introFake struct {
	srv   *httptest.Server
	count atomic.Int64

	mu       sync.Mutex
	respond  func(w http.ResponseWriter, r *http.Request)
	lastForm url.Values
	lastHdr  http.Header
	lastMeth string
}

func newIntroFake(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *introFake {
	t.Helper()
	f := &introFake{respond: respond}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.count.Add(1)
		_ = r.ParseForm()
		f.mu.Lock()
		f.lastForm, f.lastHdr, f.lastMeth = r.PostForm, r.Header.Clone(), r.Method
		respond := f.respond
		f.mu.Unlock()
		respond(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *introFake) last() (string, url.Values, http.Header) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastMeth, f.lastForm, f.lastHdr
}

// introJSON answers every request with the object obj.
func introJSON(obj map[string]any) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(obj)
	}
}

// introActive returns a valid active response at now.
func introActive(now time.Time) map[string]any {
	return map[string]any{
		"active":    true,
		"iss":       introIssuer,
		"aud":       introResource,
		"sub":       "alice",
		"client_id": "app",
		"scope":     "read write",
		"exp":       now.Add(time.Hour).Unix(),
		"iat":       now.Unix(),
	}
}

type introSetup struct {
	in    *introspector
	fake  *introFake
	clock *introClock
	logs  *edgeLogBuffer
}

// newIntroSetup builds an introspector against a fake endpoint; edit
// adjusts the Config first.
func newIntroSetup(t *testing.T, respond func(w http.ResponseWriter, r *http.Request), edit func(*Config)) introSetup {
	t.Helper()
	fake := newIntroFake(t, respond)
	clock := &introClock{t: time.Unix(1_800_000_000, 0)}
	log, logs := edgeLogger()
	cfg := &Config{
		Issuer:        introIssuer,
		Audience:      []string{"https://other.example.com", introResource},
		Introspection: &IntrospectionConfig{URL: fake.srv.URL},
		HTTPClient:    fake.srv.Client(),
		Logger:        log,
		Now:           clock.Now,
	}
	if edit != nil {
		edit(cfg)
	}
	in, err := newIntrospector(cfg, func(context.Context) (string, error) { return cfg.Introspection.URL, nil })
	if err != nil {
		t.Fatalf("newIntrospector: %v", err)
	}
	return introSetup{in: in, fake: fake, clock: clock, logs: logs}
}

func TestNewIntrospectorValidates(t *testing.T) {
	t.Parallel()
	ep := func(context.Context) (string, error) { return "https://as.example.com/introspect", nil }
	tests := []struct {
		name string
		cfg  Config
		ep   func(context.Context) (string, error)
	}{
		{"no introspection config", Config{Issuer: introIssuer, Audience: []string{introResource}}, ep},
		{"no audience", Config{Issuer: introIssuer, Introspection: &IntrospectionConfig{}}, ep},
		{"secret without id", Config{Issuer: introIssuer, Audience: []string{introResource},
			Introspection: &IntrospectionConfig{ClientSecret: "s"}}, ep},
		{"nil endpoint", Config{Issuer: introIssuer, Audience: []string{introResource}, Introspection: &IntrospectionConfig{}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := newIntrospector(&tt.cfg, tt.ep); err == nil {
				t.Error("newIntrospector accepted an invalid config")
			}
		})
	}
}

func TestIntrospectResponses(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	with := func(edit func(m map[string]any)) map[string]any {
		m := introActive(now)
		edit(m)
		return m
	}
	tests := []struct {
		name string
		obj  map[string]any
		want error // nil for success
	}{
		{"active", introActive(now), nil},
		{"aud array containing the resource", with(func(m map[string]any) { m["aud"] = []any{"x", introResource} }), nil},
		{"no iss is fine", with(func(m map[string]any) { delete(m, "iss") }), nil},
		{"no exp is fine", with(func(m map[string]any) { delete(m, "exp") }), nil},
		{"expired within leeway", with(func(m map[string]any) { m["exp"] = now.Add(-30 * time.Second).Unix() }), nil},
		{"scope as list", with(func(m map[string]any) { m["scope"] = []any{"read", "write"} }), nil},
		{"inactive", map[string]any{"active": false}, ErrInvalidToken},
		{"inactive with claims", with(func(m map[string]any) { m["active"] = false }), ErrInvalidToken},
		{"expired", with(func(m map[string]any) { m["exp"] = now.Add(-61 * time.Second).Unix() }), ErrExpired},
		{"not yet valid", with(func(m map[string]any) { m["nbf"] = now.Add(2 * time.Minute).Unix() }), ErrInvalidToken},
		{"wrong iss", with(func(m map[string]any) { m["iss"] = "https://evil.example.com" }), ErrInvalidToken},
		{"non-string iss", with(func(m map[string]any) { m["iss"] = 1 }), ErrInvalidToken},
		{"no aud", with(func(m map[string]any) { delete(m, "aud") }), ErrInvalidToken},
		{"empty aud array", with(func(m map[string]any) { m["aud"] = []any{} }), ErrInvalidToken},
		{"wrong aud", with(func(m map[string]any) { m["aud"] = "https://other-rs.example.com" }), ErrInvalidToken},
		{"aud array without the resource", with(func(m map[string]any) { m["aud"] = []any{"a", "b"} }), ErrInvalidToken},
		{"non-string aud entry", with(func(m map[string]any) { m["aud"] = []any{introResource, 3} }), ErrInvalidToken},
		{"malformed exp", with(func(m map[string]any) { m["exp"] = "tomorrow" }), ErrInvalidToken},
		{"malformed scope", with(func(m map[string]any) { m["scope"] = 7 }), ErrInvalidToken},
		{"malformed sub", with(func(m map[string]any) { m["sub"] = []any{} }), ErrInvalidToken},
		{"token_type Bearer", with(func(m map[string]any) { m["token_type"] = "Bearer" }), nil},
		{"token_type access_token", with(func(m map[string]any) { m["token_type"] = "access_token" }), nil},
		{"token_type access token URN", with(func(m map[string]any) { m["token_type"] = "urn:ietf:params:oauth:token-type:access_token" }), nil},
		{"token_use access_token", with(func(m map[string]any) { m["token_use"] = "access_token" }), nil},
		{"refresh token", with(func(m map[string]any) { m["token_type"] = "refresh_token" }), ErrInvalidToken},
		{"refresh token URN", with(func(m map[string]any) { m["token_type"] = "urn:ietf:params:oauth:token-type:refresh_token" }), ErrInvalidToken},
		{"ID token", with(func(m map[string]any) { m["token_type"] = "id_token" }), ErrInvalidToken},
		{"DPoP-bound token", with(func(m map[string]any) { m["token_type"] = "DPoP" }), ErrInvalidToken},
		{"empty token_type", with(func(m map[string]any) { m["token_type"] = "" }), ErrInvalidToken},
		{"non-string token_type", with(func(m map[string]any) { m["token_type"] = 1 }), ErrInvalidToken},
		{"token_use refresh_token", with(func(m map[string]any) { m["token_use"] = "refresh_token" }), ErrInvalidToken},
		{"no active member", with(func(m map[string]any) { delete(m, "active") }), ErrUnavailable},
		{"active as a string", with(func(m map[string]any) { m["active"] = "true" }), ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newIntroSetup(t, introJSON(tt.obj), nil)
			info, err := s.in.verify(context.Background(), "opaque-token-1")
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				if tt.want == ErrUnavailable && errors.Is(err, ErrInvalidToken) {
					t.Errorf("server fault reported as an invalid token: %v", err)
				}
				if info != nil {
					t.Errorf("info returned with error")
				}
				return
			}
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if info.Token() != "opaque-token-1" || info.Subject != "alice" || info.ClientID != "app" ||
				info.Issuer != introIssuer || !info.HasScope("read") || !info.HasScope("write") || len(info.Scopes) != 2 {
				t.Errorf("info = %v token %q", info, info.Token())
			}
			if info.Claims["sub"] != "alice" {
				t.Errorf("claims = %v", info.Claims)
			}
			if exp, ok := tt.obj["exp"].(int64); ok && !info.Expiry.Equal(time.Unix(exp, 0)) {
				t.Errorf("expiry %v, want %v", info.Expiry, time.Unix(exp, 0))
			}
		})
	}
}

func TestIntrospectServerFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		respond func(w http.ResponseWriter, r *http.Request)
		edit    func(*Config)
	}{
		{"500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, nil},
		{"401 (our client auth failed)", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":"invalid_client"}`, 401)
		}, nil},
		{"garbage", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>{")) }, nil},
		{"JSON array", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`[{"active":true}]`)) }, nil},
		{"JSON null", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`null`)) }, nil},
		{"oversized", func(w http.ResponseWriter, r *http.Request) {
			_, _ = fmt.Fprintf(w, `{"active":true,"pad":"%s"}`, strings.Repeat("x", 2048))
		}, func(c *Config) { c.Introspection.MaxResponseSize = 1024 }},
		{"oversized default cap", func(w http.ResponseWriter, r *http.Request) {
			_, _ = fmt.Fprintf(w, `{"active":true,"pad":"%s"}`, strings.Repeat("x", 1<<20))
		}, nil},
		{"connection refused", nil, func(c *Config) { c.Introspection.URL = "http://127.0.0.1:1/introspect" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			respond := tt.respond
			if respond == nil {
				respond = func(w http.ResponseWriter, r *http.Request) {}
			}
			s := newIntroSetup(t, respond, tt.edit)
			const canary = "CANARY-opaque-4242"
			for i := range 2 {
				_, err := s.in.verify(context.Background(), canary)
				if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidToken) {
					t.Fatalf("err = %v, want only ErrUnavailable", err)
				}
				if strings.Contains(err.Error(), canary) {
					t.Fatalf("token in error %q", err)
				}
				if tt.respond != nil && s.fake.count.Load() != int64(i+1) {
					t.Fatalf("outage cached: %d requests after %d calls", s.fake.count.Load(), i+1)
				}
			}
			if strings.Contains(s.logs.String(), canary) {
				t.Errorf("token in logs")
			}
		})
	}
}

func TestIntrospectRequest(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	t.Run("client_secret_basic, form-urlencoded first", func(t *testing.T) {
		t.Parallel()
		const id, secret = "rs client:1", "p@ss:w rd+/%é"
		s := newIntroSetup(t, introJSON(introActive(now)), func(c *Config) {
			c.Introspection.ClientID, c.Introspection.ClientSecret = id, secret
		})
		if _, err := s.in.verify(context.Background(), "tok-abc"); err != nil {
			t.Fatal(err)
		}
		method, form, hdr := s.fake.last()
		if method != http.MethodPost {
			t.Errorf("method %s", method)
		}
		if form.Get("token") != "tok-abc" || form.Get("token_type_hint") != "access_token" {
			t.Errorf("form %v", form)
		}
		if form.Has("client_id") || form.Has("client_secret") {
			t.Errorf("credentials in the body as well: %v", form)
		}
		if hdr.Get("Accept") != "application/json" || hdr.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("headers %v", hdr)
		}
		// Decode by hand, as a strict RFC 6749 §2.3.1 server does.
		b64, ok := strings.CutPrefix(hdr.Get("Authorization"), "Basic ")
		if !ok {
			t.Fatalf("Authorization %q", hdr.Get("Authorization"))
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		encID, encSecret, _ := strings.Cut(string(raw), ":")
		gotID, _ := url.QueryUnescape(encID)
		gotSecret, _ := url.QueryUnescape(encSecret)
		if gotID != id || gotSecret != secret {
			t.Errorf("basic credentials decode to %q/%q", gotID, gotSecret)
		}
	})
	t.Run("public client id in the body", func(t *testing.T) {
		t.Parallel()
		s := newIntroSetup(t, introJSON(introActive(now)), func(c *Config) { c.Introspection.ClientID = "public-rs" })
		if _, err := s.in.verify(context.Background(), "tok"); err != nil {
			t.Fatal(err)
		}
		_, form, hdr := s.fake.last()
		if form.Get("client_id") != "public-rs" || hdr.Get("Authorization") != "" {
			t.Errorf("form %v, Authorization %q", form, hdr.Get("Authorization"))
		}
	})
	t.Run("AuthStyle replaces the built-in styles", func(t *testing.T) {
		t.Parallel()
		s := newIntroSetup(t, introJSON(introActive(now)), func(c *Config) {
			c.Introspection.ClientID, c.Introspection.ClientSecret = "id", "secret"
			c.Introspection.AuthStyle = func(r *http.Request) error {
				r.Header.Set("Authorization", "Bearer rs-credential")
				r.PostForm.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
				return nil
			}
		})
		if _, err := s.in.verify(context.Background(), "tok"); err != nil {
			t.Fatal(err)
		}
		_, form, hdr := s.fake.last()
		if hdr.Get("Authorization") != "Bearer rs-credential" || form.Get("client_assertion_type") == "" || form.Get("token") != "tok" {
			t.Errorf("form %v, Authorization %q", form, hdr.Get("Authorization"))
		}
	})
	t.Run("AuthStyle error is unavailable and sends nothing", func(t *testing.T) {
		t.Parallel()
		s := newIntroSetup(t, introJSON(introActive(now)), func(c *Config) {
			c.Introspection.AuthStyle = func(*http.Request) error { return errors.New("no signing key") }
		})
		if _, err := s.in.verify(context.Background(), "tok"); !errors.Is(err, ErrUnavailable) {
			t.Errorf("err = %v", err)
		}
		if s.fake.count.Load() != 0 {
			t.Errorf("request sent")
		}
	})
	t.Run("endpoint discovery failure", func(t *testing.T) {
		t.Parallel()
		cfg := &Config{Issuer: introIssuer, Audience: []string{introResource}, Introspection: &IntrospectionConfig{}}
		for _, epErr := range []error{errors.New("dns"), unavailable("no introspection_endpoint", nil)} {
			in, err := newIntrospector(cfg, func(context.Context) (string, error) { return "", epErr })
			if err != nil {
				t.Fatal(err)
			}
			if _, err := in.verify(context.Background(), "tok"); !errors.Is(err, ErrUnavailable) {
				t.Errorf("err = %v", err)
			}
		}
	})
}

func TestIntrospectCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("positive hit", func(t *testing.T) {
		t.Parallel()
		s := newIntroSetup(t, nil, nil)
		s.fake.respond = introJSON(introActive(s.clock.Now()))
		for range 3 {
			info, err := s.in.verify(ctx, "tok-1")
			if err != nil || info.Token() != "tok-1" {
				t.Fatalf("verify: %v", err)
			}
		}
		if n := s.fake.count.Load(); n != 1 {
			t.Errorf("%d requests for one token, want 1", n)
		}
		if _, err := s.in.verify(ctx, "tok-2"); err != nil {
			t.Fatal(err)
		}
		if n := s.fake.count.Load(); n != 2 {
			t.Errorf("%d requests for two tokens, want 2", n)
		}
	})
	t.Run("cached info carries each caller's token and is not shared", func(t *testing.T) {
		t.Parallel()
		s := newIntroSetup(t, nil, nil)
		s.fake.respond = introJSON(introActive(s.clock.Now()))
		a, _ := s.in.verify(ctx, "tok-1")
		b, _ := s.in.verify(ctx, "tok-1")
		if a == b || b.Token() != "tok-1" {
			t.Errorf("cache returned the same pointer or lost the token")
		}
	})
	t.Run("positive expires at CacheTTL", func(t *testing.T) {
		t.Parallel()
		s := newIntroSetup(t, nil, func(c *Config) { c.Introspection.CacheTTL = 30 * time.Second })
		s.fake.respond = introJSON(introActive(s.clock.Now()))
		_, _ = s.in.verify(ctx, "tok")
		s.clock.Advance(29 * time.Second)
		_, _ = s.in.verify(ctx, "tok")
		if n := s.fake.count.Load(); n != 1 {
			t.Fatalf("%d requests before the TTL, want 1", n)
		}
		s.clock.Advance(2 * time.Second)
		_, _ = s.in.verify(ctx, "tok")
		if n := s.fake.count.Load(); n != 2 {
			t.Errorf("%d requests after the TTL, want 2", n)
		}
	})
	t.Run("default CacheTTL is one minute", func(t *testing.T) {
		t.Parallel()
		s := newIntroSetup(t, nil, nil)
		s.fake.respond = introJSON(introActive(s.clock.Now()))
		_, _ = s.in.verify(ctx, "tok")
		s.clock.Advance(59 * time.Second)
		_, _ = s.in.verify(ctx, "tok")
		s.clock.Advance(2 * time.Second)
		_, _ = s.in.verify(ctx, "tok")
		if n := s.fake.count.Load(); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
	})
	t.Run("positive never outlives exp", func(t *testing.T) {
		t.Parallel()
		s := newIntroSetup(t, nil, func(c *Config) { c.Introspection.CacheTTL = time.Hour })
		obj := introActive(s.clock.Now())
		obj["exp"] = s.clock.Now().Add(10 * time.Second).Unix()
		s.fake.respond = introJSON(obj)
		_, _ = s.in.verify(ctx, "tok")
		s.clock.Advance(11 * time.Second)
		_, _ = s.in.verify(ctx, "tok")
		if n := s.fake.count.Load(); n != 2 {
			t.Errorf("%d requests, want 2 (cache entry outlived exp)", n)
		}
	})
	t.Run("negative cached for NegativeCacheTTL", func(t *testing.T) {
		t.Parallel()
		s := newIntroSetup(t, introJSON(map[string]any{"active": false}), func(c *Config) {
			c.Introspection.NegativeCacheTTL = 5 * time.Second
		})
		for range 3 {
			if _, err := s.in.verify(ctx, "revoked"); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v", err)
			}
		}
		if n := s.fake.count.Load(); n != 1 {
			t.Fatalf("%d requests, want 1", n)
		}
		s.clock.Advance(6 * time.Second)
		_, _ = s.in.verify(ctx, "revoked")
		if n := s.fake.count.Load(); n != 2 {
			t.Errorf("%d requests after the negative TTL, want 2", n)
		}
	})
	t.Run("wrong audience cached negatively", func(t *testing.T) {
		t.Parallel()
		s := newIntroSetup(t, nil, nil)
		obj := introActive(s.clock.Now())
		obj["aud"] = "https://elsewhere.example.com"
		s.fake.respond = introJSON(obj)
		_, _ = s.in.verify(ctx, "tok")
		_, err := s.in.verify(ctx, "tok")
		if !errors.Is(err, ErrInvalidToken) || s.fake.count.Load() != 1 {
			t.Errorf("err %v, %d requests", err, s.fake.count.Load())
		}
	})
	t.Run("negative caching disabled", func(t *testing.T) {
		t.Parallel()
		s := newIntroSetup(t, introJSON(map[string]any{"active": false}), func(c *Config) {
			c.Introspection.NegativeCacheTTL = -1
		})
		_, _ = s.in.verify(ctx, "revoked")
		_, _ = s.in.verify(ctx, "revoked")
		if n := s.fake.count.Load(); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
	})
	t.Run("cache disabled", func(t *testing.T) {
		t.Parallel()
		s := newIntroSetup(t, nil, func(c *Config) { c.TokenCacheSize = -1 })
		s.fake.respond = introJSON(introActive(s.clock.Now()))
		_, _ = s.in.verify(ctx, "tok")
		_, _ = s.in.verify(ctx, "tok")
		if n := s.fake.count.Load(); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
	})
	t.Run("bounded, oldest evicted", func(t *testing.T) {
		t.Parallel()
		s := newIntroSetup(t, nil, func(c *Config) { c.TokenCacheSize = 2 })
		s.fake.respond = introJSON(introActive(s.clock.Now()))
		for _, tok := range []string{"a", "b", "c"} {
			_, _ = s.in.verify(ctx, tok)
		}
		if got := s.in.cache.Len(); got != 2 {
			t.Errorf("cache holds %d entries, want 2", got)
		}
		_, _ = s.in.verify(ctx, "c") // still cached
		if n := s.fake.count.Load(); n != 3 {
			t.Fatalf("%d requests, want 3", n)
		}
		_, _ = s.in.verify(ctx, "a") // evicted
		if n := s.fake.count.Load(); n != 4 {
			t.Errorf("%d requests, want 4 (oldest entry not evicted)", n)
		}
	})
	t.Run("keyed by hash, not by token", func(t *testing.T) {
		t.Parallel()
		s := newIntroSetup(t, nil, nil)
		s.fake.respond = introJSON(introActive(s.clock.Now()))
		const canary = "CANARY-cache-key-777"
		_, _ = s.in.verify(ctx, canary)
		s.in.cache.Range(func(k [32]byte, res introResult) {
			if strings.Contains(string(k[:]), canary) || res.info.Token() != "" {
				t.Errorf("token stored in the cache")
			}
		})
	})
}

func TestIntrospectSingleFlight(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	now := time.Unix(1_800_000_000, 0)
	s := newIntroSetup(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		introJSON(introActive(now))(w, r)
	}, func(c *Config) { c.TokenCacheSize = -1 }) // no cache: only the flight can dedupe
	const n = 20
	var joined atomic.Int32
	s.in.joinedFlight = func() { joined.Add(1) }
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			info, err := s.in.verify(context.Background(), "shared-token")
			if err == nil && info.Token() != "shared-token" {
				err = errors.New("wrong token")
			}
			errs <- err
		})
	}
	// Let every goroutine join the flight before the answer arrives: one
	// still on its way after the answer would start a second introspection
	// (there is no cache), which a fixed pause cannot rule out on a busy
	// machine.
	deadline := time.Now().Add(30 * time.Second)
	for joined.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := s.fake.count.Load(); got != 1 {
		t.Errorf("%d concurrent verifications made %d requests, want 1", n, got)
	}
}

func TestIntrospectWaiterGivesUpOnItsOwnContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	now := time.Unix(1_800_000_000, 0)
	s := newIntroSetup(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		introJSON(introActive(now))(w, r)
	}, nil)
	// The impatient waiter starts the shared call; a patient one joins it.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	impatient := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := s.in.verify(ctx, "slow-token")
		impatient <- err
	}()
	for s.fake.count.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	patient := make(chan error, 1)
	go func() {
		_, err := s.in.verify(context.Background(), "slow-token")
		patient <- err
	}()
	err := <-impatient
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("impatient waiter: err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("impatient waiter returned after %v", d)
	}
	time.Sleep(50 * time.Millisecond) // the shared call must outlive its starter's context
	close(release)
	if err := <-patient; err != nil {
		t.Errorf("patient waiter: %v (the shared call died with another waiter's context)", err)
	}
	if n := s.fake.count.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestIntrospectFetchTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s := newIntroSetup(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}, func(c *Config) { c.FetchTimeout = 100 * time.Millisecond })
	start := time.Now()
	_, err := s.in.verify(context.Background(), "tok")
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("FetchTimeout not applied: took %v", d)
	}
}

// TestIntrospectWithIdptest runs the introspector against the shared fake
// IdP: a real opaque token, inactive and revoked tokens, counters and
// faults.
func TestIntrospectWithIdptest(t *testing.T) {
	t.Parallel()
	idp := idptest.NewServer(t, idptest.Config{
		Audience: []string{introResource},
		Clients:  []idptest.Client{{ID: "rs", Secret: "rs secret:+"}},
	})
	log, logs := edgeLogger()
	cfg := &Config{
		Issuer:     idp.Issuer(),
		Audience:   []string{introResource},
		HTTPClient: idp.Client(),
		Logger:     log,
		Introspection: &IntrospectionConfig{
			URL: idp.IntrospectionURL(), ClientID: "rs", ClientSecret: "rs secret:+",
			NegativeCacheTTL: -1,
		},
	}
	in, err := newIntrospector(cfg, func(context.Context) (string, error) { return idp.IntrospectionURL(), nil })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	tok := idp.OpaqueToken(map[string]any{"sub": "alice", "scope": "tools:call"})
	info, err := in.verify(ctx, tok)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if info.Subject != "alice" || !info.HasScope("tools:call") || info.Token() != tok {
		t.Errorf("info = %v", info)
	}
	if _, err := in.verify(ctx, tok); err != nil || idp.Requests(idptest.EndpointIntrospection) != 1 {
		t.Errorf("second verify: err %v, %d requests (want a cache hit)", err, idp.Requests(idptest.EndpointIntrospection))
	}

	for name, bad := range map[string]string{
		"unknown":   "never-issued-token",
		"other aud": idp.OpaqueToken(map[string]any{"aud": "https://other.example.com"}),
		"no aud":    idp.OpaqueToken(map[string]any{"aud": nil}),
		"expired":   idp.OpaqueToken(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}),
	} {
		if _, err := in.verify(ctx, bad); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: err = %v", name, err)
		}
	}

	revoked := idp.OpaqueToken(nil)
	idp.Revoke(revoked)
	if _, err := in.verify(ctx, revoked); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("revoked: err = %v", err)
	}

	idp.SetFault(idptest.EndpointIntrospection, idptest.Fault{Status: 500})
	if _, err := in.verify(ctx, idp.OpaqueToken(nil)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("500: err = %v", err)
	}
	idp.SetFault(idptest.EndpointIntrospection, idptest.Fault{Garbage: true})
	if _, err := in.verify(ctx, idp.OpaqueToken(nil)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("garbage: err = %v", err)
	}
	idp.SetFault(idptest.EndpointIntrospection, idptest.Fault{})
	if strings.Contains(logs.String(), tok) {
		t.Error("token in logs")
	}
}

func TestIntrospectionConfigRedacts(t *testing.T) {
	t.Parallel()
	const canary = "CANARY-client-secret-31337"
	ic := IntrospectionConfig{URL: "https://as.example.com/introspect", ClientID: "rs", ClientSecret: canary,
		AuthStyle: func(*http.Request) error { return nil }, CacheTTL: time.Minute}
	cfg := Config{Issuer: introIssuer, Introspection: &ic}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		outs = append(outs, fmt.Sprintf(verb, ic), fmt.Sprintf(verb, &ic), fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg))
	}
	j, err := json.Marshal(ic)
	if err != nil {
		t.Fatal(err)
	}
	jp, err := json.Marshal(&ic)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j), string(jp))
	log, logs := edgeLogger()
	log.Info("config", "introspection", ic, "ptr", &ic)
	outs = append(outs, logs.String())
	tlog := &strings.Builder{}
	slog.New(slog.NewTextHandler(tlog, nil)).Info("config", "introspection", ic)
	outs = append(outs, tlog.String())
	for _, o := range outs {
		if strings.Contains(o, canary) || strings.Contains(o, fmt.Sprintf("%x", canary)) {
			t.Errorf("secret leaked: %s", o)
		}
	}
	if !strings.Contains(string(j), `"client_id":"rs"`) || !strings.Contains(string(j), "REDACTED") {
		t.Errorf("JSON = %s", j)
	}
	if !strings.Contains(ic.String(), "REDACTED") || strings.Contains(IntrospectionConfig{ClientID: "x"}.String(), "REDACTED") {
		t.Errorf("String = %s", ic.String())
	}
}

// BenchmarkIntrospectCached measures a cache hit: hash, lookup, copy.
func BenchmarkIntrospectCached(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	srv := httptest.NewServer(http.HandlerFunc(introJSON(introActive(now))))
	defer srv.Close()
	cfg := &Config{Issuer: introIssuer, Audience: []string{introResource}, HTTPClient: srv.Client(),
		Now: func() time.Time { return now }, Introspection: &IntrospectionConfig{URL: srv.URL}}
	in, err := newIntrospector(cfg, func(context.Context) (string, error) { return srv.URL, nil })
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	tok := strings.Repeat("x", 43)
	if _, err := in.verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := in.verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIntrospectRejectionNamesValues: the iss and aud an introspection
// response carries are named beside the configured values (issue 7 item 9).
func TestIntrospectRejectionNamesValues(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	for name, tt := range map[string]struct {
		edit func(m map[string]any)
		want string
	}{
		"iss": {func(m map[string]any) { m["iss"] = "https://evil.example.com" },
			`iss "https://evil.example.com" does not match the configured issuer "` + introIssuer + `"`},
		"aud": {func(m map[string]any) { m["aud"] = []any{"https://rs2.example.com"} },
			`aud ["https://rs2.example.com"] does not contain this resource ["https://other.example.com" "` + introResource + `"]`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			obj := introActive(now)
			tt.edit(obj)
			s := newIntroSetup(t, introJSON(obj), nil)
			_, err := s.in.verify(context.Background(), "opaque-token-1")
			if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %s", err, tt.want)
			}
		})
	}
}

// Opaque tokens through a Verifier (formerly verifier_intro_test.go).

func TestVerifierRoutesOpaqueTokensToIntrospection(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, func(c *Config) { c.Introspection = &IntrospectionConfig{} })
	ctx := context.Background()
	opaque := f.idp.OpaqueToken(map[string]any{"sub": "bob", "scope": "tools:read"})
	info, err := f.v.Verify(ctx, opaque)
	if err != nil {
		t.Fatalf("opaque token via discovered introspection endpoint: %v", err)
	}
	if info.Subject != "bob" || !info.HasScope("tools:read") || info.Token() != opaque {
		t.Fatalf("introspected identity = %v", info)
	}
	// A JWS that fails verification is never introspected.
	before := f.idp.Requests(idptest.EndpointIntrospection)
	bad := f.idp.Token(map[string]any{"aud": "https://elsewhere"})
	if _, err := f.v.Verify(ctx, bad); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("bad JWS: %v", err)
	}
	if _, err := f.v.Verify(ctx, tamper(f.idp.Token(map[string]any{"sub": "alice"}))); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("tampered JWS: %v", err)
	}
	if f.idp.Requests(idptest.EndpointIntrospection) != before {
		t.Fatal("a failed JWS was sent to introspection")
	}
	// Inactive → invalid; endpoint down → unavailable.
	f.idp.Revoke(opaque)
	other := f.idp.OpaqueToken(nil)
	f.idp.Revoke(other)
	if _, err := f.v.Verify(ctx, other); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("revoked opaque token: %v", err)
	}
	f.idp.SetFault(idptest.EndpointIntrospection, idptest.Fault{Status: 500})
	if _, err := f.v.Verify(ctx, f.idp.OpaqueToken(nil)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("introspection down: %v", err)
	}
}

// While issuer discovery fails, every opaque token used to start a new
// discovery round (two or three GETs each): random tokens became IdP
// traffic. A failure is now remembered for the retry backoff, as for JWKS.
func TestDiscoveryFailureIsNotRetriedPerOpaqueToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, func(c *Config) { c.Introspection = &IntrospectionConfig{} })
	f.idp.SetFault(idptest.EndpointDiscovery, idptest.Fault{Status: 500})
	ctx := context.Background()
	for range 20 {
		if _, err := f.v.Verify(ctx, f.idp.OpaqueToken(nil)); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidToken) {
			t.Fatalf("discovery down: %v, want ErrUnavailable only", err)
		}
	}
	// One discovery round: the RFC 8414 and OpenID Connect locations.
	if n := f.idp.Requests(idptest.EndpointDiscovery); n > 2 {
		t.Fatalf("20 opaque tokens during a discovery outage made %d discovery requests, want at most 2", n)
	}
	f.idp.SetFault(idptest.EndpointDiscovery, idptest.Fault{})
	f.clock.Advance(retryBackoff)
	if _, err := f.v.Verify(ctx, f.idp.OpaqueToken(nil)); err != nil {
		t.Fatalf("after discovery came back: %v", err)
	}
}

// A JWS missing its signature segment ("header.payload", the shape of an
// unsecured JWT) or a lone JOSE header is a malformed JWS, not an opaque
// token: it must not be sent to introspection, which would be a second
// verification path for a token that failed (or never had) a signature.
func TestTruncatedJWSIsNotIntrospected(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, func(c *Config) { c.Introspection = &IntrospectionConfig{} })
	tok := f.idp.Token(nil)
	d := strings.LastIndexByte(tok, '.')
	for _, bad := range []string{tok[:d], tok[:strings.IndexByte(tok, '.')]} {
		if _, err := f.v.Verify(context.Background(), bad); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("truncated JWS: %v, want ErrInvalidToken", err)
		}
	}
	if n := f.idp.Requests(idptest.EndpointIntrospection); n != 0 {
		t.Fatalf("a truncated JWS was introspected (%d requests)", n)
	}
}

// An opaque token that merely has two dots and starts with "eJ" (zlib data
// in base64, say) is not a JWS: it goes to introspection, not to rejection.
func TestDottedOpaqueTokenIsIntrospected(t *testing.T) {
	t.Parallel()
	for _, seg := range []string{`{"a":1}`, "{ \"a\":1}", "{\n\"a\":1}", "{\t\"a\":1}", "{\r\n\"a\":1}"} {
		if enc := base64.RawURLEncoding.EncodeToString([]byte(seg)); !looksLikeJOSE(enc) {
			t.Errorf("%q encodes as %q, not recognised as a JOSE header", seg, enc)
		}
	}
	const opaque = "eJzLSM3JyVcozy/KSVEEAB0JBF4.c2Vjb25k.eA"
	var seen atomic.Value
	intro := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		seen.Store(r.PostForm.Get("token"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"active":true,"sub":"carol","aud":%q,"exp":%d}`, testResource, time.Now().Add(time.Hour).Unix())
	}))
	defer intro.Close()
	f := newFixture(t, idptest.Config{}, func(c *Config) {
		c.Introspection = &IntrospectionConfig{URL: intro.URL}
		c.Now = nil
	})
	info, err := f.v.Verify(context.Background(), opaque)
	if err != nil {
		t.Fatalf("dotted opaque token: %v", err)
	}
	if info.Subject != "carol" || seen.Load() != opaque {
		t.Fatalf("subject = %q, introspected %v", info.Subject, seen.Load() != nil)
	}
}
