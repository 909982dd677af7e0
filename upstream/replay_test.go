package upstream_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/mcpauth-go/mcpauth/upstream"
	"github.com/mcpauth-go/mcpauth/upstream/upstreamtest"
)

// replicas is several Servers (one per store given) behind one issuer
// address, with a static private_key_jwt client. Each request goes to the
// replica the test names.
type replicas struct {
	t      *testing.T
	issuer string
	key    *ecdsa.PrivateKey
	client string
	next   atomic.Int64 // the replica serving the next request
}

func newReplicas(t *testing.T, stores ...upstream.Store) *replicas {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.Import(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	_ = pub.Set(jwk.KeyIDKey, "k1")
	_ = pub.Set(jwk.AlgorithmKey, jwa.ES256())
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	jwks, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	r := &replicas{t: t, key: key, client: "batch-client"}
	var servers []http.Handler
	lb := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		servers[r.next.Load()].ServeHTTP(w, req)
	}))
	r.issuer = "http://" + lb.Listener.Addr().String()
	idp := upstreamtest.NewProvider(t, upstreamtest.Config{})
	for _, st := range stores {
		as, err := upstream.NewServer(upstream.Config{
			Issuer:    r.issuer,
			Resources: []string{resource},
			Upstreams: []upstream.Provider{idp.OIDC("corp")},
			Store:     st,
			Clients: []upstream.Client{{ID: r.client, RedirectURIs: []string{"https://app.example.com/cb"},
				TokenEndpointAuthMethod: "private_key_jwt", JWKS: jwks}},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, as)
	}
	lb.Start()
	t.Cleanup(lb.Close)
	return r
}

// assertion returns a fresh client assertion (a new jti) for the token
// endpoint, valid for a minute.
func (r *replicas) assertion() string {
	r.t.Helper()
	return r.signed(r.key)
}

// signed returns a fresh client assertion signed with key.
func (r *replicas) signed(key *ecdsa.PrivateKey) string {
	r.t.Helper()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	return r.signedJTI(key, fmt.Sprintf("%x", jti))
}

// signedJTI returns a client assertion with that jti signed with key.
func (r *replicas) signedJTI(key *ecdsa.PrivateKey, jti string) string {
	r.t.Helper()
	tok, err := jwt.NewBuilder().Issuer(r.client).Subject(r.client).Audience([]string{r.issuer + "/token"}).
		Expiration(time.Now().Add(time.Minute)).JwtID(jti).Build()
	if err != nil {
		r.t.Fatal(err)
	}
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), key))
	if err != nil {
		r.t.Fatal(err)
	}
	return string(b)
}

// token posts a refresh_token grant for an unknown refresh token,
// authenticated with the assertion, to replica i. Client authentication
// comes first: a client that authenticated gets 400 invalid_grant, one
// that did not 401 invalid_client.
func (r *replicas) token(i int, assertion string) (int, map[string]any, http.Header) {
	r.t.Helper()
	r.next.Store(int64(i))
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nofamily.nothing"}, "client_id": {r.client},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	resp, err := http.Post(r.issuer+"/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, resp.Header
}

// accepted checks that replica i authenticated the client with a.
func (r *replicas) accepted(what string, i int, a string) {
	r.t.Helper()
	st, m, _ := r.token(i, a)
	wantOAuthError(r.t, what+" (authenticated: the grant is what fails)", st, m, 400, "invalid_grant")
}

// refused checks that replica i refused the client's assertion a.
func (r *replicas) refused(what string, i int, a string) {
	r.t.Helper()
	st, m, _ := r.token(i, a)
	wantOAuthError(r.t, what, st, m, 401, "invalid_client")
}

// plainStore hides every method but the Store interface's: a Store that
// is not a ReplayGuard.
type plainStore struct{ upstream.Store }

// guardStore is a Store whose ReplayGuard is the function use.
type guardStore struct {
	upstream.Store
	use func(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

func (g guardStore) UseOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return g.use(ctx, key, ttl)
}

func TestAssertionReplayRefused(t *testing.T) {
	t.Parallel()
	for name, st := range map[string]upstream.Store{
		"MemoryStore (a ReplayGuard)":         upstream.NewMemoryStore(),
		"Store without ReplayGuard":           plainStore{upstream.NewMemoryStore()},
		"nil Store (the default MemoryStore)": nil,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newReplicas(t, st)
			a := r.assertion()
			r.accepted("first use", 0, a)
			r.refused("replayed assertion", 0, a)
			r.accepted("a new assertion", 0, r.assertion())
			r.refused("an assertion with an empty jti", 0, r.signedJTI(r.key, ""))
		})
	}
}

// TestAssertionReplayAcrossReplicas: two Servers share one MemoryStore, as
// replicas share a Redis. An assertion accepted by A is refused by B.
func TestAssertionReplayAcrossReplicas(t *testing.T) {
	t.Parallel()
	st := upstream.NewMemoryStore()
	r := newReplicas(t, st, st)
	a := r.assertion()
	r.accepted("first use on A", 0, a)
	r.refused("replay on B", 1, a)
	r.refused("replay on A", 0, a)
	b := r.assertion()
	r.accepted("a new assertion on B", 1, b)
	r.refused("its replay on A", 0, b)
}

// TestAssertionReplayWithoutGuardIsPerProcess documents the fallback: on a
// Store that is not a ReplayGuard each Server remembers jtis itself, so a
// second replica accepts a replay. This is why a shared store should
// implement ReplayGuard.
func TestAssertionReplayWithoutGuardIsPerProcess(t *testing.T) {
	t.Parallel()
	st := plainStore{upstream.NewMemoryStore()}
	r := newReplicas(t, st, st)
	a := r.assertion()
	r.accepted("first use on A", 0, a)
	r.refused("replay on A", 0, a)
	r.accepted("replay on B (no shared guard)", 1, a)
}

// TestAssertionReplayCheckFailsClosed: when the replay check cannot be
// made, the token request is refused with 503 temporarily_unavailable and
// Retry-After (never accepted, never invalid_client), whether the guard's
// error wraps ErrUnavailable or not, and whether or not it claims fresh.
func TestAssertionReplayCheckFailsClosed(t *testing.T) {
	t.Parallel()
	for name, fail := range map[string]func() (bool, error){
		"ErrUnavailable": func() (bool, error) {
			return false, fmt.Errorf("fake: %w: connection refused", upstream.ErrUnavailable)
		},
		"plain error":               func() (bool, error) { return false, errors.New("fake: broken") },
		"fresh with an error":       func() (bool, error) { return true, errors.New("fake: broken") },
		"context deadline exceeded": func() (bool, error) { return false, context.DeadlineExceeded },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int64
			st := guardStore{Store: upstream.NewMemoryStore(), use: func(context.Context, string, time.Duration) (bool, error) {
				calls.Add(1)
				return fail()
			}}
			r := newReplicas(t, st)
			st2, m, h := r.token(0, r.assertion())
			wantOAuthError(t, "assertion whose replay check failed", st2, m, 503, "temporarily_unavailable")
			if h.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			if _, ok := m["access_token"]; ok {
				t.Fatal("a token was issued")
			}
			if calls.Load() != 1 {
				t.Fatalf("the guard was called %d times, want 1", calls.Load())
			}
			// Refused before the check: a forged assertion never reaches
			// the guard, so it cannot burn or probe jtis.
			forger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			r.refused("forged assertion", 0, r.signed(forger))
			if calls.Load() != 1 {
				t.Fatal("a forged assertion reached the replay check")
			}
		})
	}
}

// TestReplayGuardKey: the Store sees a hashed key (neither the jti nor the
// client ID) and a ttl covering the assertion's lifetime plus the skew.
func TestReplayGuardKey(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var keys []string
	var ttls []time.Duration
	mem := upstream.NewMemoryStore()
	st := guardStore{Store: mem, use: func(ctx context.Context, key string, ttl time.Duration) (bool, error) {
		mu.Lock()
		keys, ttls = append(keys, key), append(ttls, ttl)
		mu.Unlock()
		return mem.UseOnce(ctx, key, ttl)
	}}
	r := newReplicas(t, st)
	a := r.assertion()
	r.accepted("first use", 0, a)
	r.refused("replay", 0, a)
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 2 || keys[0] != keys[1] {
		t.Fatalf("keys = %q, want the same key twice", keys)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(keys[0]) || strings.Contains(keys[0], r.client) {
		t.Fatalf("key %q is not a hash", keys[0])
	}
	tok, err := jwt.ParseInsecure([]byte(a))
	if err != nil {
		t.Fatal(err)
	}
	jti, _ := tok.JwtID()
	if strings.Contains(keys[0], jti) {
		t.Fatal("the key contains the jti")
	}
	// The assertion lives a minute; it is remembered for that plus two
	// minutes of skew (less the time the test took).
	if ttls[0] <= 2*time.Minute || ttls[0] > 3*time.Minute {
		t.Fatalf("ttl = %v, want within (2m, 3m]", ttls[0])
	}
}
