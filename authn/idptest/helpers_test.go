package idptest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// get fetches url with the server's client and returns status and body.
func get(t *testing.T, s *idptest.Server, u string) (int, []byte, http.Header) {
	t.Helper()
	resp, err := s.Client().Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", u, err)
	}
	return resp.StatusCode, b, resp.Header
}

// postForm posts form to u, optionally with HTTP Basic client credentials,
// and decodes a JSON response.
func postForm(t *testing.T, s *idptest.Server, u string, form url.Values, basicID, basicSecret string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("POST %s: decoding response (status %d): %v", u, resp.StatusCode, err)
	}
	return resp.StatusCode, m
}

// keySet fetches and parses the server's JWKS with jwx.
func keySet(t *testing.T, s *idptest.Server) jwk.Set {
	t.Helper()
	status, body, _ := get(t, s, s.JWKSURL())
	if status != http.StatusOK {
		t.Fatalf("JWKS status %d", status)
	}
	set, err := jwk.Parse(body)
	if err != nil {
		t.Fatalf("parsing JWKS: %v", err)
	}
	return set
}

// verify checks tok's signature against set with jwx (no claim validation).
func verify(tok string, set jwk.Set) (jwt.Token, error) {
	return jwt.Parse([]byte(tok), jwt.WithKeySet(set), jwt.WithValidate(false))
}

// parts decodes a compact JWS's header and claims without verifying.
func parts(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		t.Fatalf("token has %d parts", len(p))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(p[i])
		if err != nil {
			t.Fatalf("decoding part %d: %v", i, err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatalf("decoding part %d: %v", i, err)
		}
	}
	return header, claims
}

func kids(t *testing.T, set jwk.Set) []string {
	t.Helper()
	var out []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		kid, _ := k.KeyID()
		out = append(out, kid)
	}
	return out
}
