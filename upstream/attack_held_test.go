package upstream_test

// Attacks on the authorization server that it withstood when reviewed;
// they stay as regression tests.

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/upstream"
)

// TestRedirectURITricks: every near-miss of a registered redirect URI gets
// the error page, never a redirect; loopback URIs differ only by port.
func TestRedirectURITricks(t *testing.T) {
	e := newEnv(t, nil)
	web := "https://app.example.com/cb"
	st, m := e.register(map[string]any{"token_endpoint_auth_method": "none", "redirect_uris": []string{
		web, "http://127.0.0.1:9999/callback", "http://localhost:8080/cb", "http://[::1]:7000/cb"}})
	if st != http.StatusCreated {
		t.Fatalf("register: %d %v", st, m)
	}
	id := m["client_id"].(string)
	_, challenge := pkce()
	for _, ru := range []string{
		web + "/extra", web + "x", web + "/", web + "?x=1", web + "?", web + "#", web + "#frag", web + "/../cb",
		"https://app.example.com/x/../cb", "https://app.example.com/cb/..%2f..%2fevil", "https://APP.example.com/cb",
		"https://app.example.com/CB", "https://app.example.com/%63b", "https://app.example.com:443/cb",
		"https://app.example.com:8443/cb", "https://app.example.com.evil.example/cb", "https://app.example.com@evil.example/cb",
		"https://evil.example@app.example.com/cb", "https://evil.example/?https://app.example.com/cb", "http://app.example.com/cb",
		"//app.example.com/cb", "https://app.example.com%2fcb", "https://app.example.com\\@evil.example/cb", " " + web, web + " ",
		"http://localhost:9999/callback", "http://[::1]:9999/callback", "http://127.0.0.2:9999/callback",
		"http://[::ffff:127.0.0.1]:9999/callback", "https://127.0.0.1:9999/callback", "http://127.0.0.1:1234/callback/",
		"http://127.0.0.1:1234/Callback", "http://127.0.0.1:1234/callback?x=1", "http://127.0.0.1:1234/callback?",
		"http://u@127.0.0.1:1234/callback", "http://u:p@127.0.0.1:1234/callback", "http://127.0.0.1.evil.example:9999/callback",
		"http://localhost.evil.example:8080/cb", "http://LOCALHOST:8080/cb", "http://127.0.0.1:1234/%2e%2e/callback",
		"http://127.0.0.1:1234/x/../callback", "http://[::1%25lo]:7000/cb", "http://0x7f.1:9999/callback",
		"http://2130706433:9999/callback", "javascript://127.0.0.1:9999/callback",
	} {
		t.Run(ru, func(t *testing.T) {
			resp := e.get(newBrowser(), e.authorizeURL(id, ru, challenge, nil))
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, `id="error"`) {
				t.Fatalf("%d Location=%q: want the error page", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
	for _, ru := range []string{web, "http://127.0.0.1:1/callback", "http://localhost:65000/cb", "http://[::1]:1/cb", "http://127.0.0.1/callback"} {
		t.Run("accepted "+ru, func(t *testing.T) {
			st, loc := e.authorizeLocation(newBrowser(), e.authorizeURL(id, ru, challenge, nil))
			if st != http.StatusSeeOther || !strings.HasPrefix(loc, e.issuer+"/consent?") {
				t.Fatalf("%d %s", st, loc)
			}
		})
	}
	t.Run("omitted with several registered", func(t *testing.T) {
		resp := e.get(newBrowser(), e.authorizeURL(id, "", challenge, url.Values{"redirect_uri": nil}))
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("registration refuses", func(t *testing.T) {
		for _, ru := range []string{"https://good.example@evil.example/cb", "http://evil.example/cb", "myapp:/cb", "myapp://cb",
			"http://localhost.evil.example/cb", "http://127.0.0.1.nip.io/cb", "https://a.example/cb#f", "data:text/html,x",
			"/relative/cb", "https:///cb", "http://[::1%25lo]/cb"} {
			st, m := e.register(map[string]any{"token_endpoint_auth_method": "none", "redirect_uris": []string{ru}})
			if st != http.StatusBadRequest || m["error"] != "invalid_redirect_uri" {
				t.Errorf("register %q: %d %v", ru, st, m["error"])
			}
		}
	})
}

// TestPKCEDowngradeAndMalformed: plain, missing or malformed challenges
// are refused at the authorization endpoint (with state and iss), and a
// verifier only redeems the code of its own challenge.
func TestPKCEDowngradeAndMalformed(t *testing.T) {
	e := newEnv(t, nil)
	redirect := "http://127.0.0.1:9999/callback"
	id := e.publicClient(redirect)
	_, challenge := pkce()
	for name, extra := range map[string]url.Values{
		"plain":              {"code_challenge_method": {"plain"}},
		"lowercase s256":     {"code_challenge_method": {"s256"}},
		"method omitted":     {"code_challenge_method": nil},
		"no challenge":       {"code_challenge": nil},
		"empty challenge":    {"code_challenge": {""}},
		"padded":             {"code_challenge": {challenge + "="}},
		"44 characters":      {"code_challenge": {challenge + "A"}},
		"42 characters":      {"code_challenge": {challenge[:42]}},
		"standard base64":    {"code_challenge": {"+" + challenge[1:]}},
		"dot in challenge":   {"code_challenge": {"." + challenge[1:]}},
		"repeated method":    {"code_challenge_method": {"S256", "plain"}},
		"verifier-sized":     {"code_challenge": {strings.Repeat("a", 128)}},
		"non-ascii":          {"code_challenge": {"é" + challenge[2:]}},
		"repeated challenge": {"code_challenge": {challenge, challenge}},
	} {
		t.Run(name, func(t *testing.T) {
			st, loc := e.authorizeLocation(newBrowser(), e.authorizeURL(id, redirect, challenge, extra))
			u, _ := url.Parse(loc)
			if strings.HasPrefix(name, "repeated") {
				if st != http.StatusBadRequest || loc != "" {
					t.Fatalf("%d %s: want the error page for a repeated parameter", st, loc)
				}
				return
			}
			if st != http.StatusFound || u == nil || u.Query().Get("error") != "invalid_request" ||
				u.Query().Get("iss") != e.issuer || u.Query().Get("state") != "st-123" {
				t.Fatalf("%d %s: want invalid_request with iss and state", st, loc)
			}
		})
	}
	t.Run("verifier of another code", func(t *testing.T) {
		v1, c1 := pkce()
		_, c2 := pkce()
		code1 := e.login(id, redirect, c1, nil)
		code2 := e.login(id, redirect, c2, nil)
		st, m, _ := e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {code2},
			"redirect_uri": {redirect}, "code_verifier": {v1}})
		wantOAuthError(t, "verifier of code 1 on code 2", st, m, 400, "invalid_grant")
		// code2 is burnt by the failed attempt; code1 still works once.
		e.exchange(id, redirect, code1, v1)
	})
	t.Run("verifier bounds", func(t *testing.T) {
		for name, v := range map[string]string{"42 chars": strings.Repeat("a", 42), "129 chars": strings.Repeat("a", 129),
			"bad charset": strings.Repeat("a", 42) + "+", "space": strings.Repeat("a", 42) + " "} {
			sum := sha256.Sum256([]byte(v))
			ch := base64.RawURLEncoding.EncodeToString(sum[:])
			code := e.login(id, redirect, ch, nil)
			st, m, _ := e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {code},
				"redirect_uri": {redirect}, "code_verifier": {v}})
			wantOAuthError(t, name, st, m, 400, "invalid_grant")
		}
	})
}

// TestCodeRaceAndCrossClient: of concurrent redemptions of one code exactly
// one wins; another client, or the right client for another resource or
// redirect, gets nothing.
func TestCodeRaceAndCrossClient(t *testing.T) {
	e := newEnv(t, nil)
	redirect := "http://127.0.0.1:9999/callback"
	id := e.publicClient(redirect)
	other := e.publicClient(redirect)
	form := func(client, code, verifier string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "client_id": {client}, "code": {code},
			"redirect_uri": {redirect}, "code_verifier": {verifier}}
	}
	t.Run("concurrent redemptions", func(t *testing.T) {
		verifier, challenge := pkce()
		code := e.login(id, redirect, challenge, nil)
		const n = 8
		var wg sync.WaitGroup
		var wins atomic.Int32
		start := make(chan struct{})
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				req, _ := http.NewRequest(http.MethodPost, e.issuer+"/token", strings.NewReader(form(id, code, verifier).Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					wins.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if w := wins.Load(); w != 1 {
			t.Fatalf("%d of %d concurrent redemptions won, want exactly 1", w, n)
		}
	})
	t.Run("another client with the right verifier", func(t *testing.T) {
		verifier, challenge := pkce()
		code := e.login(id, redirect, challenge, nil)
		st, m, _ := e.token(form(other, code, verifier))
		wantOAuthError(t, "code of another client", st, m, 400, "invalid_grant")
	})
	t.Run("another resource", func(t *testing.T) {
		verifier, challenge := pkce()
		code := e.login(id, redirect, challenge, nil)
		f := form(id, code, verifier)
		f["resource"] = []string{resource, "https://evil.example.com/mcp"}
		st, m, _ := e.token(f)
		wantOAuthError(t, "two resources", st, m, 400, "invalid_target")
	})
	t.Run("loopback redirect of another port", func(t *testing.T) {
		verifier, challenge := pkce()
		r1 := "http://127.0.0.1:1111/callback"
		code := e.login(id, r1, challenge, nil)
		f := form(id, code, verifier)
		f.Set("redirect_uri", "http://127.0.0.1:2222/callback")
		st, m, _ := e.token(f)
		wantOAuthError(t, "redirect of another port", st, m, 400, "invalid_grant")
	})
}

// TestRefreshAttacks: a refresh token is bound to its client, scope and
// resource; concurrent rotations of one token yield one successor.
func TestRefreshAttacks(t *testing.T) {
	const other = "https://mcp2.example.com/mcp"
	e := newEnv(t, func(_ *env, c *upstream.Config) { c.Resources = []string{resource, other} })
	redirect := "http://127.0.0.1:9999/callback"
	id := e.publicClient(redirect)
	thief := e.publicClient(redirect)
	grant := func() string {
		verifier, challenge := pkce()
		code := e.login(id, redirect, challenge, url.Values{"scope": {"mcp:tools files:read"}})
		st, m, _ := e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {code},
			"redirect_uri": {redirect}, "code_verifier": {verifier}})
		if st != 200 {
			t.Fatalf("token: %d %v", st, m)
		}
		return m["refresh_token"].(string)
	}
	refresh := func(client, rt string, extra url.Values) (int, map[string]any) {
		f := url.Values{"grant_type": {"refresh_token"}, "client_id": {client}, "refresh_token": {rt}}
		for k, v := range extra {
			f[k] = v
		}
		st, m, _ := e.token(f)
		return st, m
	}
	t.Run("another client", func(t *testing.T) {
		rt := grant()
		st, m := refresh(thief, rt, nil)
		wantOAuthError(t, "refresh by another client", st, m, 400, "invalid_grant")
		if st, m := refresh(id, rt, nil); st != 200 {
			t.Fatalf("the owner's refresh after a thief's attempt: %d %v", st, m)
		}
	})
	t.Run("scope escalation", func(t *testing.T) {
		rt := grant()
		st, m := refresh(id, rt, url.Values{"scope": {"mcp:tools mcp:admin"}})
		wantOAuthError(t, "wider scope", st, m, 400, "invalid_scope")
		st, m = refresh(id, rt, url.Values{"scope": {"files:read"}})
		if st != 200 || m["scope"] != "files:read" {
			t.Fatalf("narrower scope: %d %v", st, m["scope"])
		}
		info, err := e.verifier().Verify(t.Context(), m["access_token"].(string))
		if err != nil || info.HasScope("mcp:tools") {
			t.Fatalf("narrowed token: %v %v", info, err)
		}
	})
	t.Run("resource switch", func(t *testing.T) {
		rt := grant()
		st, m := refresh(id, rt, url.Values{"resource": {other}})
		wantOAuthError(t, "other resource", st, m, 400, "invalid_target")
	})
	t.Run("concurrent rotation", func(t *testing.T) {
		rt := grant()
		const n = 6
		var wg sync.WaitGroup
		var wins atomic.Int32
		start := make(chan struct{})
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				f := url.Values{"grant_type": {"refresh_token"}, "client_id": {id}, "refresh_token": {rt}}
				req, _ := http.NewRequest(http.MethodPost, e.issuer+"/token", strings.NewReader(f.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					wins.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if w := wins.Load(); w != 1 {
			t.Fatalf("%d of %d concurrent rotations of one token won, want 1", w, n)
		}
	})
	t.Run("expired family", func(t *testing.T) {
		rt := grant()
		e.clock.Advance(31 * 24 * time.Hour)
		st, m := refresh(id, rt, nil)
		wantOAuthError(t, "expired refresh token", st, m, 400, "invalid_grant")
	})
}
