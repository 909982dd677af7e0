package upstream_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/upstream"
)

// TestOAuth2UpstreamWithIdptest logs in at authn/idptest as a plain OAuth
// 2.0 provider (code + PKCE), reading the user id from a userinfo endpoint
// that answers with a number, as GitHub's does.
func TestOAuth2UpstreamWithIdptest(t *testing.T) {
	var idp *idptest.Server
	e := newEnv(t, func(e *env, c *upstream.Config) {
		idp = idptest.NewServer(t, idptest.Config{Audience: []string{"https://api.github.example/"},
			Clients: []idptest.Client{{ID: "gh-app", Secret: "gh-secret", RedirectURIs: []string{e.issuer + "/callback"}}}})
		v, err := authn.NewVerifier(authn.Config{Issuer: idp.Issuer(), Audience: []string{"https://api.github.example/"}})
		if err != nil {
			t.Fatal(err)
		}
		userinfo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info, err := v.Verify(r.Context(), strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
			if err != nil {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			ids := map[string]int{"octocat": 583231}
			_ = json.NewEncoder(w).Encode(map[string]any{"login": info.Subject, "id": ids[info.Subject]})
		}))
		t.Cleanup(userinfo.Close)
		c.Upstreams = []upstream.Provider{{Name: "github", Type: upstream.OAuth2, AuthURL: idp.AuthorizeURL(),
			TokenURL: idp.TokenURL(), UserinfoURL: userinfo.URL, ClientID: "gh-app", ClientSecret: "gh-secret",
			Scopes: []string{"read:user"}, AuthParams: map[string]string{"login_hint": "octocat"}}}
	})
	redirect := "http://127.0.0.1:9999/callback"
	clientID := e.publicClient(redirect)
	verifier, challenge := pkce()
	code := e.login(clientID, redirect, challenge, nil)
	if got, _ := idp.LastRequest(idptest.EndpointAuthorize); got.Get("code_challenge_method") != "S256" || got.Get("code_challenge") == "" || got.Get("state") == "" {
		t.Fatal("the upstream leg does not use its own PKCE and state")
	}
	m := e.exchange(clientID, redirect, code, verifier)
	info, err := e.verifier().Verify(t.Context(), m["access_token"].(string))
	if err != nil || info.Subject != "github:583231" {
		t.Fatalf("subject %v: %v", info, err)
	}
	sess, err := e.store.GetSession(t.Context(), info.Claims["tsid"].(string))
	if err != nil || sess.AccessToken == "" || sess.RefreshToken == "" {
		t.Fatalf("upstream tokens not stored under tsid: %v", err)
	}
	if _, err := v(idp).Verify(t.Context(), sess.AccessToken); err != nil {
		t.Fatalf("the stored upstream access token is not the provider's: %v", err)
	}
}

func v(idp *idptest.Server) *authn.Verifier {
	vv, _ := authn.NewVerifier(authn.Config{Issuer: idp.Issuer(), Audience: []string{"https://api.github.example/"}})
	return vv
}

func TestOIDCNonceMismatchRefused(t *testing.T) {
	e := newEnv(t, nil)
	e.idp.SetBadNonce(true)
	redirect := "http://127.0.0.1:9999/callback"
	clientID := e.publicClient(redirect)
	_, challenge := pkce()
	u := e.follow(e.browser, e.authorizeURL(clientID, redirect, challenge, nil), redirect)
	q := u.Query()
	if q.Get("error") != "access_denied" || q.Get("code") != "" || q.Get("iss") != e.issuer || q.Get("state") != "st-123" {
		t.Fatalf("ID token with a wrong nonce: %v", redactQuery(q))
	}
	if !strings.Contains(e.logs.String(), "nonce") {
		t.Fatal("the cause is not logged")
	}
}

func TestCallbackReplayAndForgery(t *testing.T) {
	e := newEnv(t, nil)
	redirect := "http://127.0.0.1:9999/callback"
	clientID := e.publicClient(redirect)
	_, challenge := pkce()
	// Walk to the upstream redirect back to us, then replay it.
	b := e.browser
	next := e.authorizeURL(clientID, redirect, challenge, nil)
	var callback string
	for range 8 {
		if strings.HasPrefix(next, e.issuer+"/callback") {
			callback = next
			break
		}
		resp := e.get(b, next)
		body := readBody(t, resp)
		if strings.Contains(body, `<form id="consent"`) {
			f := consentForm(t, body)
			req, _ := http.NewRequest(http.MethodPost, e.issuer+"/consent", strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, _ = b.Do(req)
			resp.Body.Close()
		}
		loc, _ := resp.Location()
		next = loc.String()
	}
	// Another browser cannot complete this login (login CSRF).
	resp := e.get(newBrowser(), callback)
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
		t.Fatalf("callback from another browser: %d", resp.StatusCode)
	}
	resp = e.get(b, callback)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("genuine callback: %d", resp.StatusCode)
	}
	resp = e.get(b, callback)
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
		t.Fatalf("replayed callback: %d", resp.StatusCode)
	}
	resp = e.get(b, e.issuer+"/callback?state=forged&code=x")
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("forged state: %d", resp.StatusCode)
	}
}

func pemOf(t *testing.T, k any) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func TestSigningKeysAndRotation(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ec1, _ := x509.MarshalECPrivateKey(ecKey)
	for name, p := range map[string][]byte{
		"RSA PKCS8": pemOf(t, rsaKey), "RSA PKCS1": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}),
		"EC SEC1": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ec1}), "Ed25519": pemOf(t, edKey),
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, func(_ *env, c *upstream.Config) { c.SigningKeys = []upstream.SigningKey{{PEM: p}} })
			if strings.Contains(e.logs.String(), "development") {
				t.Fatal("a configured key logs the development-key warning")
			}
			redirect := "http://127.0.0.1:9999/callback"
			id := e.publicClient(redirect)
			verifier, challenge := pkce()
			m := e.exchange(id, redirect, e.login(id, redirect, challenge, nil), verifier)
			if _, err := e.verifier().Verify(t.Context(), m["access_token"].(string)); err != nil {
				t.Fatalf("token signed with %s does not verify: %v", name, err)
			}
		})
	}
	t.Run("development key warns", func(t *testing.T) {
		e := newEnv(t, nil)
		if !strings.Contains(e.logs.String(), "development signing key") {
			t.Fatal("no warning for the generated development key")
		}
	})
	t.Run("rotation keeps live tokens valid", func(t *testing.T) {
		e := newEnv(t, func(_ *env, c *upstream.Config) { c.SigningKeys = []upstream.SigningKey{{Signer: ecKey}} })
		redirect := "http://127.0.0.1:9999/callback"
		id := e.publicClient(redirect)
		verifier, challenge := pkce()
		old := e.exchange(id, redirect, e.login(id, redirect, challenge, nil), verifier)
		if err := e.as.RotateSigningKey(upstream.SigningKey{PEM: pemOf(t, rsaKey)}); err != nil {
			t.Fatal(err)
		}
		verifier, challenge = pkce()
		fresh := e.exchange(id, redirect, e.login(id, redirect, challenge, nil), verifier)
		var jwks struct{ Keys []map[string]any }
		resp := e.get(http.DefaultClient, e.issuer+"/jwks")
		_ = json.NewDecoder(resp.Body).Decode(&jwks)
		resp.Body.Close()
		if len(jwks.Keys) != 2 {
			t.Fatalf("JWKS has %d keys after rotation, want the new and the previous", len(jwks.Keys))
		}
		vf := e.verifier()
		for name, tok := range map[string]string{"old": old["access_token"].(string), "new": fresh["access_token"].(string)} {
			if _, err := vf.Verify(t.Context(), tok); err != nil {
				t.Fatalf("%s token after rotation: %v", name, err)
			}
		}
		// Once every old token has expired, the old key leaves the JWKS.
		e.clock.Advance(16 * time.Minute)
		resp = e.get(http.DefaultClient, e.issuer+"/jwks")
		_ = json.NewDecoder(resp.Body).Decode(&jwks)
		resp.Body.Close()
		if len(jwks.Keys) != 1 || jwks.Keys[0]["kty"] != "RSA" {
			t.Fatalf("JWKS after the previous key's tokens expired: %v", jwks.Keys)
		}
	})
	t.Run("previous key published until PublishUntil", func(t *testing.T) {
		e := newEnv(t, func(e *env, c *upstream.Config) {
			c.SigningKeys = []upstream.SigningKey{{Signer: ecKey}, {PEM: pemOf(t, rsaKey), PublishUntil: e.clock.Now().Add(time.Hour)}}
		})
		count := func() int {
			var jwks struct{ Keys []any }
			resp := e.get(http.DefaultClient, e.issuer+"/jwks")
			_ = json.NewDecoder(resp.Body).Decode(&jwks)
			resp.Body.Close()
			return len(jwks.Keys)
		}
		if n := count(); n != 2 {
			t.Fatalf("%d keys", n)
		}
		e.clock.Advance(2 * time.Hour)
		if n := count(); n != 1 {
			t.Fatalf("%d keys after PublishUntil", n)
		}
	})
}

func TestConfigValidation(t *testing.T) {
	good := func() upstream.Config {
		return upstream.Config{Issuer: "https://as.example.com", Resources: []string{resource},
			Upstreams: []upstream.Provider{{Name: "corp", Type: upstream.OIDC, Issuer: "https://idp.example.com", ClientID: "c"}},
			Logger:    slog.New(slog.DiscardHandler)}
	}
	if _, err := upstream.NewServer(good()); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mod := range map[string]func(c *upstream.Config){
		"no issuer":                              func(c *upstream.Config) { c.Issuer = "" },
		"http issuer":                            func(c *upstream.Config) { c.Issuer = "http://as.example.com" },
		"issuer with slash":                      func(c *upstream.Config) { c.Issuer = "https://as.example.com/" },
		"issuer with query":                      func(c *upstream.Config) { c.Issuer = "https://as.example.com?x=1" },
		"no resources":                           func(c *upstream.Config) { c.Resources = nil },
		"relative resource":                      func(c *upstream.Config) { c.Resources = []string{"/mcp"} },
		"no upstreams":                           func(c *upstream.Config) { c.Upstreams = nil },
		"no type":                                func(c *upstream.Config) { c.Upstreams[0].Type = "" },
		"oauth2 no userinfo":                     func(c *upstream.Config) { c.Upstreams[0].Type = upstream.OAuth2 },
		"bad name":                               func(c *upstream.Config) { c.Upstreams[0].Name = "a:b" },
		"duplicate name":                         func(c *upstream.Config) { c.Upstreams = append(c.Upstreams, c.Upstreams[0]) },
		"default unsupported":                    func(c *upstream.Config) { c.ScopesSupported = []string{"a"}; c.DefaultScopes = []string{"b"} },
		"long code ttl":                          func(c *upstream.Config) { c.CodeTTL = time.Hour },
		"unused client ttl shorter than a login": func(c *upstream.Config) { c.UnusedClientTTL = 10 * time.Minute },
		"negative unused client ttl":             func(c *upstream.Config) { c.UnusedClientTTL = -time.Hour },
		"bad pem":                                func(c *upstream.Config) { c.SigningKeys = []upstream.SigningKey{{PEM: []byte("nope")}} },
		"small rsa": func(c *upstream.Config) {
			k, _ := rsa.GenerateKey(rand.Reader, 1024)
			c.SigningKeys = []upstream.SigningKey{{Signer: k}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := good()
			mod(&c)
			_, err := upstream.NewServer(c)
			if err == nil || !strings.HasPrefix(err.Error(), "upstream: ") || strings.Contains(err.Error(), "upstream: upstream:") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestProviderNeverPrintsSecret(t *testing.T) {
	p := upstream.Provider{Name: "gh", ClientID: "id", ClientSecret: "super-secret-value"}
	out := fmt.Sprintf("%v %+v %#v %s", p, p, p, &p)
	if strings.Contains(out, "super-secret-value") {
		t.Fatal(out)
	}
}

// failingStore is a MemoryStore whose storage fails on demand.
type failingStore struct {
	*upstream.MemoryStore
	fail bool
}

var errDown = fmt.Errorf("test: %w: connection refused", upstream.ErrUnavailable)

func (f *failingStore) ConsumeCode(ctx context.Context, k string) (*upstream.Code, error) {
	if f.fail {
		return nil, errDown
	}
	return f.MemoryStore.ConsumeCode(ctx, k)
}

func (f *failingStore) GetFamily(ctx context.Context, id string) (*upstream.Family, error) {
	if f.fail {
		return nil, errDown
	}
	return f.MemoryStore.GetFamily(ctx, id)
}

func TestStorageOutageIs503(t *testing.T) {
	fs := &failingStore{MemoryStore: upstream.NewMemoryStore()}
	e := newEnv(t, func(_ *env, c *upstream.Config) { c.Store = fs })
	redirect := "http://127.0.0.1:9999/callback"
	id := e.publicClient(redirect)
	verifier, challenge := pkce()
	code := e.login(id, redirect, challenge, nil)
	fs.fail = true
	st, m, h := e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {verifier}})
	if st != 503 || h.Get("Retry-After") == "" || m["error"] != "temporarily_unavailable" {
		t.Fatalf("storage down: %d %v, want 503 with Retry-After", st, m)
	}
	st, _, _ = e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {id}, "refresh_token": {"fam.x"}})
	if st != 503 {
		t.Fatalf("refresh with storage down: %d", st)
	}
	fs.fail = false
	// The code survived the outage (it was never consumed).
	if st, m, _ := e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {verifier}}); st != 200 {
		t.Fatalf("after the outage: %d %v", st, m)
	}
	if strings.Contains(e.logs.String(), code) {
		t.Fatal("code in the log")
	}
	_ = errors.Is
}

func TestRevocation(t *testing.T) {
	e := newEnv(t, nil)
	redirect := "http://127.0.0.1:9999/callback"
	id := e.publicClient(redirect)
	revoke := func(tok string) int {
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/revoke", strings.NewReader(url.Values{"token": {tok}, "client_id": {id}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("refresh token", func(t *testing.T) {
		verifier, challenge := pkce()
		m := e.exchange(id, redirect, e.login(id, redirect, challenge, nil), verifier)
		if st := revoke(m["refresh_token"].(string)); st != 200 {
			t.Fatalf("revoke: %d", st)
		}
		st, r, _ := e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {id}, "refresh_token": {m["refresh_token"].(string)}})
		wantOAuthError(t, "revoked refresh token", st, r, 400, "invalid_grant")
	})
	t.Run("access token revokes the upstream session", func(t *testing.T) {
		verifier, challenge := pkce()
		m := e.exchange(id, redirect, e.login(id, redirect, challenge, nil), verifier)
		info, _ := e.verifier().Verify(t.Context(), m["access_token"].(string))
		if st := revoke(m["access_token"].(string)); st != 200 {
			t.Fatalf("revoke: %d", st)
		}
		if _, err := e.store.GetSession(t.Context(), info.Claims["tsid"].(string)); !errors.Is(err, upstream.ErrNotFound) {
			t.Fatalf("session after revocation: %v", err)
		}
	})
	t.Run("unknown token is 200", func(t *testing.T) {
		if st := revoke("whatever"); st != 200 {
			t.Fatalf("%d", st)
		}
	})
}
