package upstream_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/mcpauth-go/mcpauth/upstream"
)

// docServer serves a Client ID Metadata Document over TLS on loopback.
type docServer struct {
	srv      *httptest.Server
	requests atomic.Int64
	handler  atomic.Value // func(w, r)
}

func newDocServer(t *testing.T) *docServer {
	d := &docServer{}
	d.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.requests.Add(1)
		d.handler.Load().(func(http.ResponseWriter, *http.Request))(w, r)
	}))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *docServer) clientID() string { return d.srv.URL + "/oauth/client.json" }

func (d *docServer) serve(doc map[string]any, cacheControl string) {
	d.handler.Store(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		_ = json.NewEncoder(w).Encode(doc)
	})
}

func (d *docServer) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(d.srv.Certificate())
	return p
}

func TestClientIDMetadataDocument(t *testing.T) {
	redirect := "http://127.0.0.1:9999/callback"
	d := newDocServer(t)
	doc := map[string]any{"client_id": d.clientID(), "client_name": "CIMD App", "redirect_uris": []string{redirect},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"}}
	allow := func(_ *env, c *upstream.Config) {
		c.ClientMetadata = upstream.ClientMetadataConfig{RootCAs: d.pool(),
			AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	}

	t.Run("allowed and cached", func(t *testing.T) {
		d.serve(doc, "max-age=3600")
		d.requests.Store(0)
		e := newEnv(t, allow)
		verifier, challenge := pkce()
		code := e.login(d.clientID(), redirect, challenge, nil)
		m := e.exchange(d.clientID(), redirect, code, verifier)
		info, err := e.verifier().Verify(t.Context(), m["access_token"].(string))
		if err != nil || info.ClientID != d.clientID() {
			t.Fatalf("CIMD client token: %v", err)
		}
		if n := d.requests.Load(); n != 1 {
			t.Fatalf("document fetched %d times for one login, want 1 (cached per Cache-Control)", n)
		}
		e.clock.Advance(2 * time.Hour)
		_, challenge = pkce()
		resp := e.get(newBrowser(), e.authorizeURL(d.clientID(), redirect, challenge, nil))
		resp.Body.Close()
		if n := d.requests.Load(); n != 2 {
			t.Fatalf("after max-age passed the document was fetched %d times in all, want 2", n)
		}
	})

	t.Run("concurrent first requests share one fetch", func(t *testing.T) {
		d.handler.Store(func(w http.ResponseWriter, _ *http.Request) {
			time.Sleep(200 * time.Millisecond)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(doc)
		})
		d.requests.Store(0)
		e := newEnv(t, allow)
		_, challenge := pkce()
		var wg sync.WaitGroup
		codes := make([]int, 8)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := newBrowser().Get(e.authorizeURL(d.clientID(), redirect, challenge, nil))
				if err == nil {
					resp.Body.Close()
					codes[i] = resp.StatusCode
				}
			}()
		}
		wg.Wait()
		for _, c := range codes {
			if c != http.StatusSeeOther {
				t.Fatalf("statuses %v, want every request sent to the consent page", codes)
			}
		}
		if n := d.requests.Load(); n != 1 {
			t.Fatalf("%d fetches for 8 concurrent requests, want 1", n)
		}
	})

	for _, tc := range []struct {
		name  string
		mod   func(e *env, c *upstream.Config)
		serve func()
		fetch bool // whether the document server may be reached
	}{
		{"private address without allow-list", func(_ *env, c *upstream.Config) {
			c.ClientMetadata = upstream.ClientMetadataConfig{RootCAs: d.pool()}
		}, func() { d.serve(doc, "") }, false},
		{"allow-list for another network", func(_ *env, c *upstream.Config) {
			c.ClientMetadata = upstream.ClientMetadataConfig{RootCAs: d.pool(), AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
		}, func() { d.serve(doc, "") }, false},
		{"client_id inside differs", allow, func() {
			bad := map[string]any{}
			for k, v := range doc {
				bad[k] = v
			}
			bad["client_id"] = d.srv.URL + "/other.json"
			d.serve(bad, "")
		}, true},
		{"redirect refused", allow, func() {
			d.handler.Store(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere.json", http.StatusFound)
			})
		}, true},
		{"oversize document", allow, func() {
			big := map[string]any{}
			for k, v := range doc {
				big[k] = v
			}
			big["padding"] = strings.Repeat("x", 70<<10)
			d.serve(big, "")
		}, true},
		{"client secret method", allow, func() {
			bad := map[string]any{}
			for k, v := range doc {
				bad[k] = v
			}
			bad["token_endpoint_auth_method"] = "client_secret_basic"
			d.serve(bad, "")
		}, true},
		{"slow document server", func(e *env, c *upstream.Config) {
			allow(e, c)
			c.ClientMetadata.Timeout = 100 * time.Millisecond
		}, func() {
			d.handler.Store(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-time.After(2 * time.Second):
				case <-r.Context().Done():
				}
			})
		}, true},
		{"no client_name", allow, func() {
			bad := map[string]any{}
			for k, v := range doc {
				bad[k] = v
			}
			delete(bad, "client_name")
			d.serve(bad, "")
		}, true},
		{"metadata documents disabled", func(e *env, c *upstream.Config) { allow(e, c); c.DisableClientMetadataDocuments = true },
			func() { d.serve(doc, "") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.serve()
			d.requests.Store(0)
			e := newEnv(t, tc.mod)
			_, challenge := pkce()
			resp := e.get(newBrowser(), e.authorizeURL(d.clientID(), redirect, challenge, nil))
			body := readBody(t, resp)
			if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(body, "invalid_client") {
				t.Fatalf("%d Location=%q: want the unknown-client error page", resp.StatusCode, resp.Header.Get("Location"))
			}
			if n := d.requests.Load(); !tc.fetch && n != 0 {
				t.Fatalf("the document server was reached %d times", n)
			}
		})
	}
}

func TestClientAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	redirect := "http://127.0.0.1:9999/callback"
	secretClient := func(method string) (string, string) {
		st, m := e.register(map[string]any{"redirect_uris": []string{redirect}, "token_endpoint_auth_method": method})
		if st != 201 || m["client_secret"] == nil {
			t.Fatalf("register %s: %d %v", method, st, m["error"])
		}
		return m["client_id"].(string), m["client_secret"].(string)
	}
	codeFor := func(id string) (url.Values, string) {
		verifier, challenge := pkce()
		code := e.login(id, redirect, challenge, nil)
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}, code
	}
	t.Run("client_secret_basic", func(t *testing.T) {
		id, secret := secretClient("client_secret_basic")
		f, _ := codeFor(id)
		if st, m, _ := e.token(f, id, secret); st != 200 {
			t.Fatalf("%d %v", st, m)
		}
		f, _ = codeFor(id)
		st, m, h := e.token(f, id, "wrong-secret")
		wantOAuthError(t, "wrong secret", st, m, 401, "invalid_client")
		if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") {
			t.Fatalf("WWW-Authenticate = %q", h.Get("WWW-Authenticate"))
		}
		f, _ = codeFor(id)
		f.Set("client_id", id)
		st, m, _ = e.token(f) // no authentication at all
		wantOAuthError(t, "confidential client without secret", st, m, 401, "invalid_client")
	})
	t.Run("client_secret_post", func(t *testing.T) {
		id, secret := secretClient("client_secret_post")
		f, _ := codeFor(id)
		f.Set("client_id", id)
		f.Set("client_secret", secret)
		if st, m, _ := e.token(f); st != 200 {
			t.Fatalf("%d %v", st, m)
		}
	})
	t.Run("public client with an empty Basic password", func(t *testing.T) {
		id := e.publicClient(redirect)
		f, _ := codeFor(id)
		if st, m, _ := e.token(f, id, ""); st != 200 {
			t.Fatalf("%d %v", st, m)
		}
	})
	t.Run("public client cannot pretend to have a secret", func(t *testing.T) {
		id := e.publicClient(redirect)
		f, _ := codeFor(id)
		st, m, _ := e.token(f, id, "made-up")
		wantOAuthError(t, "secret for a public client", st, m, 401, "invalid_client")
	})
	t.Run("private_key_jwt", func(t *testing.T) {
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pub, _ := jwk.Import(priv.Public())
		_ = pub.Set(jwk.KeyIDKey, "k1")
		_ = pub.Set(jwk.AlgorithmKey, jwa.ES256())
		set := jwk.NewSet()
		_ = set.AddKey(pub)
		st, m := e.register(map[string]any{"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "private_key_jwt", "jwks": set})
		if st != 201 || m["client_secret"] != nil {
			t.Fatalf("register: %d %v", st, m)
		}
		id := m["client_id"].(string)
		assertion := func(key *ecdsa.PrivateKey, aud string) string {
			tok, _ := jwt.NewBuilder().Issuer(id).Subject(id).Audience([]string{aud}).
				Expiration(time.Now().Add(time.Minute)).JwtID(fmt.Sprint(time.Now().UnixNano())).Build()
			b, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), key))
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		withAssertion := func(f url.Values, a string) url.Values {
			f.Set("client_id", id)
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
			f.Set("client_assertion", a)
			return f
		}
		a := assertion(priv, e.issuer+"/token")
		f, _ := codeFor(id)
		if st, m, _ := e.token(withAssertion(f, a)); st != 200 {
			t.Fatalf("%d %v", st, m)
		}
		f, _ = codeFor(id)
		st, m2, _ := e.token(withAssertion(f, a))
		wantOAuthError(t, "replayed assertion", st, m2, 401, "invalid_client")
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		f, _ = codeFor(id)
		st, m2, _ = e.token(withAssertion(f, assertion(other, e.issuer+"/token")))
		wantOAuthError(t, "assertion signed by another key", st, m2, 401, "invalid_client")
		f, _ = codeFor(id)
		st, m2, _ = e.token(withAssertion(f, assertion(priv, "https://other.example.com/token")))
		wantOAuthError(t, "assertion for another audience", st, m2, 401, "invalid_client")
	})
}

func TestDynamicRegistration(t *testing.T) {
	e := newEnv(t, nil)
	t.Run("narrower scope gets the defaults", func(t *testing.T) {
		st, m := e.register(map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none", "scope": "files:read"})
		if st != 201 || m["scope"] != "files:read mcp:tools" {
			t.Fatalf("%d scope=%v", st, m["scope"])
		}
		st, m = e.register(map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none"})
		if st != 201 || m["scope"] != "mcp:tools" {
			t.Fatalf("%d scope=%v", st, m["scope"])
		}
	})
	t.Run("default method is client_secret_basic with a secret", func(t *testing.T) {
		st, m := e.register(map[string]any{"redirect_uris": []string{"https://app.example.com/cb"}})
		if st != 201 || m["token_endpoint_auth_method"] != "client_secret_basic" || m["client_secret"] == nil {
			t.Fatalf("%d %v", st, m["token_endpoint_auth_method"])
		}
	})
	for _, tc := range []struct {
		name string
		md   map[string]any
		code string
	}{
		{"no redirect", map[string]any{}, "invalid_redirect_uri"},
		{"http non-loopback", map[string]any{"redirect_uris": []string{"http://app.example.com/cb"}}, "invalid_redirect_uri"},
		{"javascript", map[string]any{"redirect_uris": []string{"javascript:alert(1)"}}, "invalid_redirect_uri"},
		{"fragment", map[string]any{"redirect_uris": []string{"https://a.example.com/cb#x"}}, "invalid_redirect_uri"},
		{"implicit grant", map[string]any{"redirect_uris": []string{"https://a.example.com/cb"}, "grant_types": []string{"implicit"}}, "invalid_client_metadata"},
		{"unknown auth method", map[string]any{"redirect_uris": []string{"https://a.example.com/cb"}, "token_endpoint_auth_method": "tls_client_auth"}, "invalid_client_metadata"},
		{"private_key_jwt without keys", map[string]any{"redirect_uris": []string{"https://a.example.com/cb"}, "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, m := e.register(tc.md)
			wantOAuthError(t, tc.name, st, m, 400, tc.code)
		})
	}
	t.Run("private-use scheme refused (MCP: localhost or https only)", func(t *testing.T) {
		st, m := e.register(map[string]any{"redirect_uris": []string{"com.example.app:/oauth/cb"}, "token_endpoint_auth_method": "none"})
		wantOAuthError(t, "private-use scheme", st, m, 400, "invalid_redirect_uri")
	})
	t.Run("localhost accepted", func(t *testing.T) {
		st, _ := e.register(map[string]any{"redirect_uris": []string{"http://localhost:3000/cb"}, "token_endpoint_auth_method": "none"})
		if st != 201 {
			t.Fatalf("%d", st)
		}
	})
	t.Run("oversize body", func(t *testing.T) {
		st, m := e.register(map[string]any{"redirect_uris": []string{"https://a.example.com/cb"}, "client_name": strings.Repeat("x", 70<<10)})
		wantOAuthError(t, "oversize", st, m, 400, "invalid_client_metadata")
	})
}
