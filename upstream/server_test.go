package upstream_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/upstream"
)

func TestEndToEndOIDC(t *testing.T) {
	e := newEnv(t, nil)
	redirect := "http://127.0.0.1:9999/callback"
	clientID := e.publicClient(redirect)
	verifier, challenge := pkce()
	code := e.login(clientID, redirect, challenge, url.Values{"scope": {"offline_access mcp:tools files:read openid"}})
	m := e.exchange(clientID, redirect, code, verifier)
	if m["token_type"] != "Bearer" || m["scope"] != "mcp:tools files:read" || m["refresh_token"] == nil {
		t.Fatalf("token response fields: %v", m["scope"])
	}
	info, err := e.verifier().Verify(t.Context(), m["access_token"].(string))
	if err != nil {
		t.Fatalf("authn rejects the issued token: %v", err)
	}
	if info.Issuer != e.issuer || info.Subject != "corp:alice" || info.ClientID != clientID ||
		len(info.Audience) != 1 || info.Audience[0] != resource || !info.HasScope("files:read") {
		t.Fatalf("claims: %v", info)
	}
	tsid, _ := info.Claims["tsid"].(string)
	jti, _ := info.Claims["jti"].(string)
	if tsid == "" || jti == "" || info.IssuedAt.IsZero() || info.Expiry.Sub(info.IssuedAt) != 10*time.Minute {
		t.Fatalf("tsid/jti/iat/exp: %v", info.Claims)
	}
	sess, err := e.store.GetSession(t.Context(), tsid)
	if err != nil {
		t.Fatalf("no upstream session under tsid: %v", err)
	}
	if sess.AccessToken == "" || sess.RefreshToken == "" || sess.IDToken == "" || sess.Upstream != "corp" || sess.Subject != "corp:alice" {
		t.Fatalf("session: %v", sess)
	}
	// Refresh: rotated, new access token with the same tsid.
	st, r2, _ := e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {m["refresh_token"].(string)}})
	if st != http.StatusOK || r2["refresh_token"] == m["refresh_token"] {
		t.Fatalf("refresh: %d %v", st, r2["error"])
	}
	info2, err := e.verifier().Verify(t.Context(), r2["access_token"].(string))
	if err != nil || info2.Claims["tsid"] != tsid {
		t.Fatalf("refreshed token: %v", err)
	}
	// The log never holds the code or tokens.
	logs := e.logs.String()
	for _, secret := range []string{code, verifier, m["access_token"].(string), m["refresh_token"].(string), sess.AccessToken, sess.RefreshToken} {
		if strings.Contains(logs, secret) {
			t.Fatal("a code, verifier or token appears in the log")
		}
	}
}

func TestReplayedCodeRevokesWhatItIssued(t *testing.T) {
	e := newEnv(t, nil)
	redirect := "http://127.0.0.1:9999/callback"
	clientID := e.publicClient(redirect)
	verifier, challenge := pkce()
	code := e.login(clientID, redirect, challenge, nil)
	m := e.exchange(clientID, redirect, code, verifier)
	info, err := e.verifier().Verify(t.Context(), m["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	st, r, _ := e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {verifier}})
	wantOAuthError(t, "replayed code", st, r, http.StatusBadRequest, "invalid_grant")
	st, r, _ = e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {m["refresh_token"].(string)}})
	wantOAuthError(t, "refresh token issued from a replayed code", st, r, http.StatusBadRequest, "invalid_grant")
	if _, err := e.store.GetSession(t.Context(), info.Claims["tsid"].(string)); !errors.Is(err, upstream.ErrNotFound) {
		t.Fatalf("the upstream session of a replayed code survives: %v", err)
	}
}

func TestTokenEndpointRefusals(t *testing.T) {
	e := newEnv(t, nil)
	redirect := "http://127.0.0.1:9999/callback"
	clientID := e.publicClient(redirect)
	other := e.publicClient(redirect)
	base := func(code, verifier string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID}, "code": {code},
			"redirect_uri": {redirect}, "code_verifier": {verifier}}
	}
	for _, tc := range []struct {
		name   string
		mod    func(v url.Values)
		status int
		code   string
	}{
		{"forged code", func(v url.Values) { v.Set("code", "forged-code-value") }, 400, "invalid_grant"},
		{"wrong verifier", func(v url.Values) { v.Set("code_verifier", strings.Repeat("a", 43)) }, 400, "invalid_grant"},
		{"missing verifier", func(v url.Values) { v.Del("code_verifier") }, 400, "invalid_grant"},
		{"plain verifier equal to challenge", nil, 400, "invalid_grant"}, // set below
		{"wrong resource", func(v url.Values) { v.Set("resource", "https://other.example.com/mcp") }, 400, "invalid_target"},
		{"redirect mismatch", func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:9999/other") }, 400, "invalid_grant"},
		{"other client", func(v url.Values) { v.Set("client_id", other) }, 400, "invalid_grant"},
		{"unknown client", func(v url.Values) { v.Set("client_id", "nobody") }, 401, "invalid_client"},
		{"repeated parameter", func(v url.Values) { v.Add("code", "x") }, 400, "invalid_request"},
		{"bad grant type", func(v url.Values) { v.Set("grant_type", "password") }, 400, "unsupported_grant_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifier, challenge := pkce()
			code := e.login(clientID, redirect, challenge, nil)
			form := base(code, verifier)
			if tc.mod != nil {
				tc.mod(form)
			} else {
				form.Set("code_verifier", challenge)
			}
			st, m, _ := e.token(form)
			wantOAuthError(t, tc.name, st, m, tc.status, tc.code)
		})
	}
	t.Run("expired code", func(t *testing.T) {
		verifier, challenge := pkce()
		code := e.login(clientID, redirect, challenge, nil)
		e.clock.Advance(61 * time.Second)
		st, m, _ := e.token(base(code, verifier))
		wantOAuthError(t, "expired code", st, m, 400, "invalid_grant")
	})
	t.Run("code in the query", func(t *testing.T) {
		resp, err := http.Post(e.issuer+"/token?code=x", "application/x-www-form-urlencoded", strings.NewReader("grant_type=authorization_code"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

func TestRefreshTokenReuseRevokesFamily(t *testing.T) {
	e := newEnv(t, nil)
	redirect := "http://127.0.0.1:9999/callback"
	clientID := e.publicClient(redirect)
	verifier, challenge := pkce()
	m := e.exchange(clientID, redirect, e.login(clientID, redirect, challenge, nil), verifier)
	rt1 := m["refresh_token"].(string)
	refresh := func(rt string) (int, map[string]any) {
		st, r, _ := e.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {rt}})
		return st, r
	}
	st, r := refresh(rt1)
	if st != 200 {
		t.Fatalf("first refresh: %d %v", st, r)
	}
	rt2 := r["refresh_token"].(string)
	st, r = refresh(rt1) // reuse of a rotated-out token
	wantOAuthError(t, "reused refresh token", st, r, 400, "invalid_grant")
	st, r = refresh(rt2) // the whole family is gone
	wantOAuthError(t, "newest token of a revoked family", st, r, 400, "invalid_grant")
	st, r = refresh(strings.SplitN(rt2, ".", 2)[0] + ".forged")
	wantOAuthError(t, "forged refresh token", st, r, 400, "invalid_grant")
}

func TestInputBounds(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.get(newBrowser(), e.issuer+"/authorize?client_id=x&state="+strings.Repeat("a", 9<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestURITooLong || resp.Header.Get("Location") != "" {
		t.Fatalf("oversize authorization request: %d", resp.StatusCode)
	}
	st, m, _ := e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {"x"}, "pad": {strings.Repeat("a", 70<<10)}})
	wantOAuthError(t, "oversize token form", st, m, 400, "invalid_request")
	st, m, _ = e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {"x"}, "code": {strings.Repeat("a", 5<<10)}})
	wantOAuthError(t, "oversize parameter", st, m, 400, "invalid_request")
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/token", strings.NewReader("grant_type=refresh_token"))
	req.Header.Set("Content-Type", "application/json")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 400 {
		t.Fatalf("JSON token request: %d", r.StatusCode)
	}
}
