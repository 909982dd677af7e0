package redisstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/upstream"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore/internal/redistest"
	"github.com/mcpauth-go/mcpauth/upstream/upstreamtest"
)

// assertionClient is a private_key_jwt client with an ES256 key. Its
// assertions are built by hand (the key set too), so this module needs no
// JOSE library of its own.
type assertionClient struct {
	id  string
	key *ecdsa.PrivateKey
}

func newAssertionClient(t *testing.T) *assertionClient {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &assertionClient{id: "batch-client", key: key}
}

// jwks is the client's public key set.
func (c *assertionClient) jwks(t *testing.T) []byte {
	t.Helper()
	pt, err := c.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	b, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
		"x": b64(pt[1:33]), "y": b64(pt[33:]),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertion returns a fresh ES256 client assertion (RFC 7523) for aud with
// jti, valid for a minute.
func (c *assertionClient) assertion(t *testing.T, aud, jti string) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": "k1", "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{"iss": c.id, "sub": c.id, "aud": aud, "jti": jti,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()})
	input := b64(hdr) + "." + b64(claims)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, c.key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64(sig)
}

// TestAssertionReplayAcrossReplicas: two Servers, each with its own
// client on one real Redis, behind one issuer address. A client assertion
// accepted by replica A is refused by replica B (RFC 7523 §3: a jti is used
// once), the jti is remembered under a hashed key with a TTL, and with
// Redis down a new assertion is refused with 503, not accepted unchecked.
func TestAssertionReplayAcrossReplicas(t *testing.T) {
	const resource = "https://mcp.example.com/mcp"
	srv := redistest.Start(t, redistest.Options{})
	idp := upstreamtest.NewProvider(t, upstreamtest.Config{})
	cl := newAssertionClient(t)
	key := newKey("k1")

	var replicas [2]http.Handler
	var next atomic.Int64
	lb := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		replicas[next.Load()].ServeHTTP(w, r)
	}))
	issuer := "http://" + lb.Listener.Addr().String()
	for i := range replicas {
		st, err := redisstore.New(redisstore.Config{Client: newClient(t, srv.Addr()), Keys: []redisstore.Key{key}, Prefix: "test:"})
		if err != nil {
			t.Fatal(err)
		}
		as, err := upstream.NewServer(upstream.Config{
			Issuer:    issuer,
			Resources: []string{resource},
			Upstreams: []upstream.Provider{idp.OIDC("corp")},
			Store:     st,
			Clients: []upstream.Client{{ID: cl.id, RedirectURIs: []string{"https://app.example.com/cb"},
				TokenEndpointAuthMethod: "private_key_jwt", JWKS: cl.jwks(t)}},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		replicas[i] = as
	}
	lb.Start()
	t.Cleanup(lb.Close)

	// token posts a refresh_token grant for an unknown refresh token to
	// replica i. Client authentication comes first: an authenticated client
	// gets 400 invalid_grant, a refused one 401 invalid_client.
	token := func(i int, assertion string) (int, string, http.Header) {
		t.Helper()
		next.Store(int64(i))
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nofamily.nothing"}, "client_id": {cl.id},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
		resp, err := http.Post(issuer+"/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m struct {
			Error       string `json:"error"`
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&m)
		if m.AccessToken != "" {
			t.Fatal("a token was issued")
		}
		return resp.StatusCode, m.Error, resp.Header
	}
	want := func(what string, i int, a string, status int, code string) {
		t.Helper()
		if st, e, _ := token(i, a); st != status || e != code {
			t.Fatalf("%s: %d %s, want %d %s", what, st, e, status, code)
		}
	}

	jti := "jti-" + rand.Text()
	a := cl.assertion(t, issuer+"/token", jti)
	want("first use on A (authenticated: the grant is what fails)", 0, a, 400, "invalid_grant")
	want("replay on B", 1, a, 401, "invalid_client")
	want("replay on A", 0, a, 401, "invalid_client")
	b := cl.assertion(t, issuer+"/token", "jti-"+rand.Text())
	want("a new assertion on B", 1, b, 400, "invalid_grant")
	want("its replay on A", 0, b, 401, "invalid_client")

	// Two once keys, hashed, each with a TTL: the assertion's minute plus
	// two minutes of skew, never more.
	c := newClient(t, srv.Addr())
	ctx := context.Background()
	keys, err := c.Keys(ctx, "test:once:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("%d once keys, want 2: %q", len(keys), keys)
	}
	for _, k := range keys {
		if strings.Contains(k, jti) || strings.Contains(k, cl.id) {
			t.Fatalf("key %q names the jti or the client", k)
		}
		if d := c.PTTL(ctx, k).Val(); d <= 2*time.Minute || d > 3*time.Minute {
			t.Fatalf("key %q has PTTL %v, want within (2m, 3m]", k, d)
		}
	}

	// Redis down: the check cannot be made, and the request is refused.
	srv.Kill()
	st, e, h := token(1, cl.assertion(t, issuer+"/token", "jti-"+rand.Text()))
	if st != http.StatusServiceUnavailable || e != "temporarily_unavailable" || h.Get("Retry-After") == "" {
		t.Fatalf("with Redis down: %d %s Retry-After=%q, want 503 temporarily_unavailable with Retry-After", st, e, h.Get("Retry-After"))
	}
}
