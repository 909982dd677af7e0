package idptest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

const (
	tokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	accessType    = "urn:ietf:params:oauth:token-type:access_token"
	redirectURI   = "http://127.0.0.1:9999/callback"
)

func newTokenServer(t *testing.T, clk *clock) *idptest.Server {
	t.Helper()
	return idptest.NewServer(t, idptest.Config{
		Algorithms:  []string{"ES256"},
		Audience:    []string{"https://default.example/"},
		TokenTTL:    time.Hour,
		ExchangeTTL: 5 * time.Minute,
		Now:         clk.Now,
		Clients: []idptest.Client{
			{ID: "svc", Secret: "svc-secret"},
			{ID: "other", Secret: "other-secret"},
			{ID: "app", RedirectURIs: []string{redirectURI, "http://127.0.0.1:9999/alt"}},
			{ID: "app2", RedirectURIs: []string{redirectURI}},
		},
	})
}

func wantOAuthError(t *testing.T, status int, m map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus || m["error"] != wantCode {
		t.Errorf("got %d %v, want %d error=%s", status, m["error"], wantStatus, wantCode)
	}
	if _, ok := m["access_token"]; ok {
		t.Error("error response carries an access_token")
	}
}

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := newTokenServer(t, clk)
	set := keySet(t, s)
	base := url.Values{"grant_type": {"client_credentials"}}

	t.Run("basic", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read write"}, "resource": {"https://api.example/"}}
		status, m := postForm(t, s, s.TokenURL(), form, "svc", "svc-secret")
		if status != 200 {
			t.Fatalf("status %d: %v", status, m)
		}
		if m["token_type"] != "Bearer" || m["expires_in"] != float64(300) || m["scope"] != "read write" {
			t.Errorf("token_type=%v expires_in=%v scope=%v", m["token_type"], m["expires_in"], m["scope"])
		}
		tok, _ := m["access_token"].(string)
		if _, err := verify(tok, set); err != nil {
			t.Fatalf("issued token does not verify: %v", err)
		}
		_, c := parts(t, tok)
		if c["sub"] != "svc" || c["client_id"] != "svc" || c["aud"] != "https://api.example/" || c["scope"] != "read write" {
			t.Errorf("claims = %v", c)
		}
		if c["exp"] != float64(clk.Now().Add(5*time.Minute).Unix()) {
			t.Errorf("exp = %v, want now+ExchangeTTL", c["exp"])
		}
		if got := s.LastTokenRequest(); got.Get("grant_type") != "client_credentials" || got.Get("resource") != "https://api.example/" {
			t.Errorf("LastTokenRequest = %v", got)
		}
	})
	t.Run("post without resource uses default audience", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {"svc-secret"}}
		status, m := postForm(t, s, s.TokenURL(), form, "", "")
		if status != 200 {
			t.Fatalf("status %d: %v", status, m)
		}
		if _, c := parts(t, m["access_token"].(string)); c["aud"] != "https://default.example/" {
			t.Errorf("aud = %v", c["aud"])
		}
	})
	failures := []struct {
		name       string
		form       url.Values
		id, secret string
		status     int
		code       string
	}{
		{"wrong secret", base, "svc", "wrong", 401, "invalid_client"},
		{"unknown client", base, "nobody", "x", 401, "invalid_client"},
		{"no client", base, "", "", 401, "invalid_client"},
		{"public client", url.Values{"grant_type": {"client_credentials"}, "client_id": {"app"}}, "", "", 400, "unauthorized_client"},
		{"relative resource", url.Values{"grant_type": {"client_credentials"}, "resource": {"/api"}}, "svc", "svc-secret", 400, "invalid_target"},
		{"resource with fragment", url.Values{"grant_type": {"client_credentials"}, "resource": {"https://api.example/#x"}}, "svc", "svc-secret", 400, "invalid_target"},
		{"two auth methods", url.Values{"grant_type": {"client_credentials"}, "client_secret": {"svc-secret"}}, "svc", "svc-secret", 400, "invalid_request"},
		{"unsupported grant", url.Values{"grant_type": {"password"}}, "svc", "svc-secret", 400, "unsupported_grant_type"},
		{"missing grant", url.Values{}, "svc", "svc-secret", 400, "invalid_request"},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			status, m := postForm(t, s, s.TokenURL(), tt.form, tt.id, tt.secret)
			wantOAuthError(t, status, m, tt.status, tt.code)
		})
	}
	t.Run("GET refused", func(t *testing.T) {
		if resp, _, err := do(s, http.MethodGet, s.TokenURL(), 5*time.Second); err != nil || resp.StatusCode != 405 {
			t.Errorf("GET token endpoint: %v %v", resp, err)
		}
	})
}

func pkcePair() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorize calls the authorization endpoint without following the
// redirect and returns the status and the redirect's query.
func authorize(t *testing.T, s *idptest.Server, q url.Values) (int, url.Values, string) {
	t.Helper()
	c := *s.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(s.AuthorizeURL() + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return resp.StatusCode, nil, ""
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	target := loc.Scheme + "://" + loc.Host + loc.Path
	return resp.StatusCode, loc.Query(), target
}

func authQuery(challenge string) url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {"app"},
		"redirect_uri":          {redirectURI},
		"state":                 {"st-123"},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"scope":                 {"tools:read tools:call"},
		"resource":              {"https://mcp.example/"},
		"login_hint":            {"alice"},
	}
}

func redeem(t *testing.T, s *idptest.Server, code, verifier, client string) (int, map[string]any) {
	t.Helper()
	return postForm(t, s, s.TokenURL(), url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"redirect_uri": {redirectURI}, "client_id": {client},
	}, "", "")
}

func TestAuthorizationCode(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := newTokenServer(t, clk)
	set := keySet(t, s)

	t.Run("flow", func(t *testing.T) {
		verifier, challenge := pkcePair()
		status, q, target := authorize(t, s, authQuery(challenge))
		if status != http.StatusFound || target != redirectURI {
			t.Fatalf("authorize: %d to %s", status, target)
		}
		if q.Get("state") != "st-123" || q.Get("iss") != s.Issuer() || q.Get("code") == "" || q.Has("error") {
			// Never print the code itself.
			t.Fatalf("authorization response: state=%q iss=%q code present=%v error=%q", q.Get("state"), q.Get("iss"), q.Get("code") != "", q.Get("error"))
		}
		status, m := redeem(t, s, q.Get("code"), verifier, "app")
		if status != 200 {
			t.Fatalf("token: %d %v", status, m["error"])
		}
		tok, _ := m["access_token"].(string)
		if _, err := verify(tok, set); err != nil {
			t.Fatalf("access token does not verify: %v", err)
		}
		_, c := parts(t, tok)
		if c["sub"] != "alice" || c["aud"] != "https://mcp.example/" || c["scope"] != "tools:read tools:call" || c["client_id"] != "app" {
			t.Errorf("claims = %v", c)
		}
		if rt, _ := m["refresh_token"].(string); rt == "" {
			t.Error("no refresh_token")
		}
		// Single use.
		status, m = redeem(t, s, q.Get("code"), verifier, "app")
		wantOAuthError(t, status, m, 400, "invalid_grant")
	})

	t.Run("wrong verifier burns the code", func(t *testing.T) {
		verifier, challenge := pkcePair()
		other, _ := pkcePair()
		_, q, _ := authorize(t, s, authQuery(challenge))
		status, m := redeem(t, s, q.Get("code"), other, "app")
		wantOAuthError(t, status, m, 400, "invalid_grant")
		status, m = redeem(t, s, q.Get("code"), verifier, "app")
		wantOAuthError(t, status, m, 400, "invalid_grant")
	})

	redeemFailures := []struct {
		name   string
		mutate func(form url.Values)
		code   string
	}{
		{"missing verifier", func(f url.Values) { f.Del("code_verifier") }, "invalid_grant"},
		{"other client", func(f url.Values) { f.Set("client_id", "app2") }, "invalid_grant"},
		{"redirect mismatch", func(f url.Values) { f.Set("redirect_uri", "http://127.0.0.1:9999/alt") }, "invalid_grant"},
		{"resource not authorized", func(f url.Values) { f.Set("resource", "https://elsewhere.example/") }, "invalid_target"},
		{"unknown code", func(f url.Values) { f.Set("code", "made-up") }, "invalid_grant"},
	}
	for _, tt := range redeemFailures {
		t.Run(tt.name, func(t *testing.T) {
			verifier, challenge := pkcePair()
			_, q, _ := authorize(t, s, authQuery(challenge))
			form := url.Values{
				"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "code_verifier": {verifier},
				"redirect_uri": {redirectURI}, "client_id": {"app"},
			}
			tt.mutate(form)
			status, m := postForm(t, s, s.TokenURL(), form, "", "")
			wantOAuthError(t, status, m, 400, tt.code)
		})
	}

	t.Run("expired code", func(t *testing.T) {
		clk := newClock()
		s := newTokenServer(t, clk)
		verifier, challenge := pkcePair()
		_, q, _ := authorize(t, s, authQuery(challenge))
		clk.Advance(11 * time.Minute)
		status, m := redeem(t, s, q.Get("code"), verifier, "app")
		wantOAuthError(t, status, m, 400, "invalid_grant")
	})

	t.Run("omitted redirect_uri with one registered", func(t *testing.T) {
		verifier, challenge := pkcePair()
		q := authQuery(challenge)
		q.Set("client_id", "app2")
		q.Del("redirect_uri")
		status, rq, target := authorize(t, s, q)
		if status != http.StatusFound || target != redirectURI {
			t.Fatalf("authorize: %d to %s", status, target)
		}
		status, m := postForm(t, s, s.TokenURL(), url.Values{
			"grant_type": {"authorization_code"}, "code": {rq.Get("code")}, "code_verifier": {verifier}, "client_id": {"app2"},
		}, "", "")
		if status != 200 {
			t.Errorf("token: %d %v", status, m["error"])
		}
	})

	// Errors the client must see at its redirect URI.
	redirected := []struct {
		name   string
		mutate func(q url.Values)
		code   string
	}{
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		{"no PKCE method", func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request"},
		{"no PKCE", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request"},
		{"implicit", func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
		{"bad resource", func(q url.Values) { q.Set("resource", "mcp") }, "invalid_target"},
	}
	for _, tt := range redirected {
		t.Run(tt.name, func(t *testing.T) {
			_, challenge := pkcePair()
			q := authQuery(challenge)
			tt.mutate(q)
			status, rq, target := authorize(t, s, q)
			if status != http.StatusFound || target != redirectURI {
				t.Fatalf("authorize: %d to %s", status, target)
			}
			if rq.Get("error") != tt.code || rq.Has("code") || rq.Get("state") != "st-123" || rq.Get("iss") != s.Issuer() {
				t.Errorf("error response: error=%q state=%q iss=%q code present=%v", rq.Get("error"), rq.Get("state"), rq.Get("iss"), rq.Has("code"))
			}
		})
	}
	// Errors that must not redirect.
	notRedirected := []struct {
		name   string
		mutate func(q url.Values)
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "nobody") }},
		{"unregistered redirect", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }},
		{"redirect prefix", func(q url.Values) { q.Set("redirect_uri", redirectURI+"/x") }},
		{"omitted redirect with two registered", func(q url.Values) { q.Del("redirect_uri") }},
	}
	for _, tt := range notRedirected {
		t.Run(tt.name, func(t *testing.T) {
			_, challenge := pkcePair()
			q := authQuery(challenge)
			tt.mutate(q)
			if status, _, _ := authorize(t, s, q); status != http.StatusBadRequest {
				t.Errorf("status %d, want 400 without redirect", status)
			}
		})
	}
}

func TestRefreshToken(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := newTokenServer(t, clk)
	first := func(t *testing.T) string {
		t.Helper()
		verifier, challenge := pkcePair()
		_, q, _ := authorize(t, s, authQuery(challenge))
		status, m := redeem(t, s, q.Get("code"), verifier, "app")
		if status != 200 {
			t.Fatalf("token: %d %v", status, m["error"])
		}
		return m["refresh_token"].(string)
	}
	refresh := func(t *testing.T, rt, client string, extra url.Values) (int, map[string]any) {
		t.Helper()
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {client}}
		for k, v := range extra {
			form[k] = v
		}
		return postForm(t, s, s.TokenURL(), form, "", "")
	}

	t.Run("rotation", func(t *testing.T) {
		rt1 := first(t)
		status, m := refresh(t, rt1, "app", nil)
		if status != 200 {
			t.Fatalf("refresh: %d %v", status, m["error"])
		}
		rt2, _ := m["refresh_token"].(string)
		if rt2 == "" || rt2 == rt1 {
			t.Fatal("refresh token not rotated")
		}
		_, c := parts(t, m["access_token"].(string))
		if c["sub"] != "alice" || c["aud"] != "https://mcp.example/" || c["scope"] != "tools:read tools:call" {
			t.Errorf("claims = %v", c)
		}
		status, m = refresh(t, rt1, "app", nil)
		wantOAuthError(t, status, m, 400, "invalid_grant")
		if status, _ := refresh(t, rt2, "app", nil); status != 200 {
			t.Errorf("rotated refresh token refused: %d", status)
		}
	})
	t.Run("other client", func(t *testing.T) {
		rt := first(t)
		status, m := refresh(t, rt, "app2", nil)
		wantOAuthError(t, status, m, 400, "invalid_grant")
		if status, _ := refresh(t, rt, "app", nil); status != 200 {
			t.Errorf("a foreign client's attempt burned the token: %d", status)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		rt := first(t)
		s.Revoke(rt)
		status, m := refresh(t, rt, "app", nil)
		wantOAuthError(t, status, m, 400, "invalid_grant")
	})
	t.Run("narrower scope", func(t *testing.T) {
		status, m := refresh(t, first(t), "app", url.Values{"scope": {"tools:read"}})
		if status != 200 || m["scope"] != "tools:read" {
			t.Errorf("refresh: %d %v", status, m["scope"])
		}
	})
	t.Run("resource within grant", func(t *testing.T) {
		status, m := refresh(t, first(t), "app", url.Values{"resource": {"https://mcp.example/"}})
		if status != 200 {
			t.Errorf("refresh: %d %v", status, m["error"])
		}
	})
	t.Run("resource outside grant", func(t *testing.T) {
		status, m := refresh(t, first(t), "app", url.Values{"resource": {"https://other.example/"}})
		wantOAuthError(t, status, m, 400, "invalid_target")
	})
	t.Run("wider scope", func(t *testing.T) {
		status, m := refresh(t, first(t), "app", url.Values{"scope": {"tools:read admin"}})
		wantOAuthError(t, status, m, 400, "invalid_scope")
	})
	t.Run("missing", func(t *testing.T) {
		status, m := refresh(t, "", "app", nil)
		wantOAuthError(t, status, m, 400, "invalid_request")
	})
}

func TestTokenExchange(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := newTokenServer(t, clk)
	set := keySet(t, s)
	subject := s.Token(map[string]any{"sub": "alice", "scope": "files:read files:write", "aud": "https://mcp.example/"})
	exchange := func(t *testing.T, extra url.Values, id, secret string) (int, map[string]any) {
		t.Helper()
		form := url.Values{"grant_type": {tokenExchange}, "subject_token": {subject}, "subject_token_type": {accessType}}
		for k, v := range extra {
			form[k] = v
		}
		return postForm(t, s, s.TokenURL(), form, id, secret)
	}

	t.Run("basic", func(t *testing.T) {
		status, m := exchange(t, url.Values{"audience": {"https://backend.example/"}, "resource": {"https://files.example/"}}, "svc", "svc-secret")
		if status != 200 {
			t.Fatalf("exchange: %d %v", status, m["error"])
		}
		if m["issued_token_type"] != accessType || m["token_type"] != "Bearer" || m["expires_in"] != float64(300) {
			t.Errorf("issued_token_type=%v token_type=%v expires_in=%v", m["issued_token_type"], m["token_type"], m["expires_in"])
		}
		tok := m["access_token"].(string)
		if _, err := verify(tok, set); err != nil {
			t.Fatalf("issued token does not verify: %v", err)
		}
		_, c := parts(t, tok)
		if c["sub"] != "alice" || fmt.Sprint(c["aud"]) != "[https://backend.example/ https://files.example/]" ||
			c["scope"] != "files:read files:write" || c["client_id"] != "svc" || c["iss"] != s.Issuer() {
			t.Errorf("claims = %v", c)
		}
		if c["exp"] != float64(clk.Now().Add(5*time.Minute).Unix()) {
			t.Errorf("exp = %v, want now+ExchangeTTL", c["exp"])
		}
		if _, ok := c["act"]; ok {
			t.Error("act without actor_token")
		}
		if got := s.LastTokenRequest(); got.Get("subject_token") != subject || got.Get("audience") != "https://backend.example/" {
			t.Error("LastTokenRequest did not record the exchange form")
		}
	})
	t.Run("scope param and default audience", func(t *testing.T) {
		status, m := exchange(t, url.Values{"scope": {"files:read"}}, "", "")
		if status != 200 {
			t.Fatalf("exchange: %d %v", status, m["error"])
		}
		_, c := parts(t, m["access_token"].(string))
		if c["scope"] != "files:read" || c["aud"] != "https://default.example/" || m["scope"] != "files:read" {
			t.Errorf("claims = %v", c)
		}
		if _, ok := c["client_id"]; ok {
			t.Error("client_id claim for an anonymous request")
		}
	})
	t.Run("actor", func(t *testing.T) {
		actor := s.Token(map[string]any{"sub": "agent-7"})
		status, m := exchange(t, url.Values{"actor_token": {actor}, "actor_token_type": {accessType}}, "svc", "svc-secret")
		if status != 200 {
			t.Fatalf("exchange: %d %v", status, m["error"])
		}
		_, c := parts(t, m["access_token"].(string))
		if fmt.Sprint(c["act"]) != "map[sub:agent-7]" {
			t.Errorf("act = %v", c["act"])
		}
	})
	t.Run("delegation chain", func(t *testing.T) {
		delegated := s.Token(map[string]any{"sub": "alice", "act": map[string]any{"sub": "first"}})
		actor := s.Token(map[string]any{"sub": "second"})
		status, m := postForm(t, s, s.TokenURL(), url.Values{
			"grant_type": {tokenExchange}, "subject_token": {delegated}, "subject_token_type": {accessType},
			"actor_token": {actor}, "actor_token_type": {accessType},
		}, "", "")
		if status != 200 {
			t.Fatalf("exchange: %d %v", status, m["error"])
		}
		_, c := parts(t, m["access_token"].(string))
		if fmt.Sprint(c["act"]) != "map[act:map[sub:first] sub:second]" {
			t.Errorf("act = %v", c["act"])
		}
	})
	t.Run("opaque subject", func(t *testing.T) {
		opaque := s.OpaqueToken(map[string]any{"sub": "bob"})
		status, m := postForm(t, s, s.TokenURL(), url.Values{
			"grant_type": {tokenExchange}, "subject_token": {opaque}, "subject_token_type": {accessType},
		}, "", "")
		if status != 200 {
			t.Fatalf("exchange: %d %v", status, m["error"])
		}
		if _, c := parts(t, m["access_token"].(string)); c["sub"] != "bob" {
			t.Errorf("sub = %v", c["sub"])
		}
	})
	t.Run("issued token introspects", func(t *testing.T) {
		_, m := exchange(t, nil, "", "")
		if in := introspect(t, s, m["access_token"].(string)); in["active"] != true || in["sub"] != "alice" {
			t.Errorf("introspection = %v", in)
		}
	})

	foreign, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	revoked := s.Token(map[string]any{"sub": "alice"})
	s.Revoke(revoked)
	failures := []struct {
		name       string
		form       url.Values
		id, secret string
		status     int
		code       string
	}{
		{"forged subject", url.Values{"subject_token": {s.TokenWith(idptest.TokenOptions{Key: foreign})}}, "", "", 400, "invalid_grant"},
		{"expired subject", url.Values{"subject_token": {s.Token(map[string]any{"exp": clk.Now().Add(-time.Second)})}}, "", "", 400, "invalid_grant"},
		{"revoked subject", url.Values{"subject_token": {revoked}}, "", "", 400, "invalid_grant"},
		{"unknown opaque subject", url.Values{"subject_token": {"opaque-nobody-issued"}}, "", "", 400, "invalid_grant"},
		{"subject without sub", url.Values{"subject_token": {s.Token(map[string]any{"sub": nil})}}, "", "", 400, "invalid_grant"},
		{"forged actor", url.Values{"actor_token": {s.TokenWith(idptest.TokenOptions{Key: foreign})}, "actor_token_type": {accessType}}, "", "", 400, "invalid_grant"},
		{"actor without type", url.Values{"actor_token": {s.Token(nil)}}, "", "", 400, "invalid_request"},
		{"actor type without actor", url.Values{"actor_token_type": {accessType}}, "", "", 400, "invalid_request"},
		{"missing subject_token", url.Values{"subject_token": {""}}, "", "", 400, "invalid_request"},
		{"missing subject_token_type", url.Values{"subject_token_type": {""}}, "", "", 400, "invalid_request"},
		{"bad subject_token_type", url.Values{"subject_token_type": {"urn:example:saml"}}, "", "", 400, "invalid_request"},
		{"bad requested_token_type", url.Values{"requested_token_type": {"urn:ietf:params:oauth:token-type:refresh_token"}}, "", "", 400, "invalid_request"},
		{"bad resource", url.Values{"resource": {"not a uri"}}, "", "", 400, "invalid_target"},
		{"wrong client secret (basic)", nil, "svc", "nope", 401, "invalid_client"},
		{"wrong client secret (post)", url.Values{"client_id": {"svc"}, "client_secret": {"nope"}}, "", "", 401, "invalid_client"},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			status, m := exchange(t, tt.form, tt.id, tt.secret)
			wantOAuthError(t, status, m, tt.status, tt.code)
			if d, _ := m["error_description"].(string); strings.Contains(d, "eyJ") {
				t.Error("error_description contains token material")
			}
		})
	}
}
