package upstream_test

// Attacks on the authorization server that it withstood when reviewed;
// they stay as regression tests.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
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

// TestConsentAttacks: the consent page cannot be framed, skipped, forged
// from another site or browser, or turned to another client or login.
func TestConsentAttacks(t *testing.T) {
	e := newEnv(t, nil)
	redirect := "http://127.0.0.1:9999/callback"
	id := e.publicClient(redirect)
	evil := e.publicClient("https://evil.example.com/cb")
	start := func(b *http.Client, client, ru string) (string, url.Values) {
		t.Helper()
		_, challenge := pkce()
		st, loc := e.authorizeLocation(b, e.authorizeURL(client, ru, challenge, nil))
		if st != http.StatusSeeOther {
			t.Fatalf("authorize: %d", st)
		}
		resp := e.get(b, loc)
		page := readBody(t, resp)
		for h, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
			"X-Content-Type-Options": "nosniff"} {
			if resp.Header.Get(h) != want {
				t.Fatalf("consent page %s = %q, want %q", h, resp.Header.Get(h), want)
			}
		}
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Fatalf("consent page CSP %q: no frame-ancestors 'none'", resp.Header.Get("Content-Security-Policy"))
		}
		return loc, consentForm(t, page)
	}
	post := func(b *http.Client, f url.Values, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/consent", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	refused := func(name string, r *http.Response) {
		t.Helper()
		if r.StatusCode < 400 || r.Header.Get("Location") != "" {
			t.Fatalf("%s: %d %s, want refused without a redirect", name, r.StatusCode, r.Header.Get("Location"))
		}
	}

	b := newBrowser()
	_, good := start(b, id, redirect)
	_, bad := start(b, evil, "https://evil.example.com/cb")
	// The CSRF token of one login does not approve another.
	mixed := url.Values{"login": {bad.Get("login")}, "csrf": {good.Get("csrf")}, "action": {"approve"}}
	refused("csrf of another login", post(b, mixed, nil))
	refused("cross-site Sec-Fetch-Site", post(b, good, map[string]string{"Sec-Fetch-Site": "cross-site"}))
	refused("cross-origin Origin", post(b, good, map[string]string{"Origin": "http://127.0.0.1.evil.example"}))
	refused("form without cookie", post(&http.Client{CheckRedirect: b.CheckRedirect}, good, nil))
	refused("unknown upstream", post(b, func() url.Values {
		f := url.Values{}
		for k, v := range good {
			f[k] = v
		}
		f.Set("upstream", "elsewhere")
		return f
	}(), nil))
	// Skipping the page: the callback of a login never approved.
	resp := e.get(b, e.issuer+"/callback?state="+url.QueryEscape(bad.Get("login"))+"&code=x")
	resp.Body.Close()
	refused("callback without consent", resp)

	// Approving with a client_id of another client changes nothing: the
	// login's own client is approved, and the other still asks.
	b2 := newBrowser()
	_, f := start(b2, id, redirect)
	f.Set("client_id", evil)
	f.Set("redirect_uri", "https://evil.example.com/cb")
	r := post(b2, f, map[string]string{"Origin": e.issuer})
	if l, _ := r.Location(); l == nil || !strings.HasPrefix(l.String(), e.idp.URL()) {
		t.Fatalf("approve: %d %v", r.StatusCode, l)
	}
	_, challenge := pkce()
	if st, loc := e.authorizeLocation(b2, e.authorizeURL(evil, "https://evil.example.com/cb", challenge, nil)); st != http.StatusSeeOther ||
		!strings.HasPrefix(loc, e.issuer+"/consent?") {
		t.Fatalf("the other client skipped consent: %d %s", st, loc)
	}

	// Error pages are not framed either.
	resp = e.get(newBrowser(), e.authorizeURL("nobody", redirect, challenge, nil))
	resp.Body.Close()
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatal("error page can be framed")
	}
}

// TestCIMDFetchRefusesPrivateTargets: the address check is on the address
// dialled, so a DNS name resolving to loopback, an IPv4-mapped IPv6
// literal or a private-key JWKS URL on loopback never reaches the server.
func TestCIMDFetchRefusesPrivateTargets(t *testing.T) {
	d := newDocServer(t)
	port := d.srv.Listener.Addr().(*net.TCPAddr).Port
	redirect := "http://127.0.0.1:9999/callback"
	e := newEnv(t, func(_ *env, c *upstream.Config) {
		c.ClientMetadata = upstream.ClientMetadataConfig{RootCAs: d.pool()}
	})
	for _, host := range []string{"localhost", "[::ffff:127.0.0.1]", "[::1]", "127.0.0.1", "[::ffff:7f00:1]"} {
		t.Run(host, func(t *testing.T) {
			id := fmt.Sprintf("https://%s:%d/oauth/client.json", host, port)
			d.serve(map[string]any{"client_id": id, "client_name": "x", "redirect_uris": []string{redirect}}, "")
			d.requests.Store(0)
			_, challenge := pkce()
			resp := e.get(newBrowser(), e.authorizeURL(id, redirect, challenge, nil))
			body := readBody(t, resp)
			if resp.StatusCode != 400 || !strings.Contains(body, "invalid_client") {
				t.Fatalf("%d: want the unknown-client page", resp.StatusCode)
			}
			if n := d.requests.Load(); n != 0 {
				t.Fatalf("the loopback server was reached %d times", n)
			}
		})
	}
	t.Run("jwks_uri on loopback", func(t *testing.T) {
		d.requests.Store(0)
		st, m := e.register(map[string]any{"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "private_key_jwt",
			"jwks_uri": fmt.Sprintf("https://localhost:%d/jwks.json", port)})
		if st != 201 {
			t.Fatalf("register: %d %v", st, m)
		}
		id := m["client_id"].(string)
		verifier, challenge := pkce()
		code := e.login(id, redirect, challenge, nil)
		st, r, _ := e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {code},
			"redirect_uri": {redirect}, "code_verifier": {verifier},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {"a.b.c"}})
		if st == 200 {
			t.Fatalf("token with an unverifiable assertion: %v", r["error"])
		}
		if n := d.requests.Load(); n != 0 {
			t.Fatalf("the loopback JWKS server was reached %d times", n)
		}
	})
}

// TestCIMDSlowBody: a document server trickling its body is cut off by the
// fetch timeout (slowloris), not waited for.
func TestCIMDSlowBody(t *testing.T) {
	d := newDocServer(t)
	redirect := "http://127.0.0.1:9999/callback"
	e := newEnv(t, func(_ *env, c *upstream.Config) {
		c.ClientMetadata = upstream.ClientMetadataConfig{RootCAs: d.pool(), Timeout: 300 * time.Millisecond,
			AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	})
	d.handler.Store(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"client_id":"`+d.clientID()+`","client_name":"slow","redirect_uris":["`+redirect+`"]`)
		w.(http.Flusher).Flush()
		for range 100 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			_, _ = io.WriteString(w, " ")
			w.(http.Flusher).Flush()
		}
		_, _ = io.WriteString(w, "}")
	})
	_, challenge := pkce()
	t0 := time.Now()
	resp := e.get(newBrowser(), e.authorizeURL(d.clientID(), redirect, challenge, nil))
	resp.Body.Close()
	if el := time.Since(t0); el > 2*time.Second || resp.StatusCode != 400 {
		t.Fatalf("%d after %v: want the unknown-client page within the timeout", resp.StatusCode, el)
	}
}

// TestDynamicRegistrationBounds: registration input is bounded.
func TestDynamicRegistrationBounds(t *testing.T) {
	e := newEnv(t, nil)
	many := make([]string, 21)
	for i := range many {
		many[i] = fmt.Sprintf("https://app.example.com/cb%d", i)
	}
	for name, md := range map[string]map[string]any{
		"21 redirect URIs":       {"redirect_uris": many},
		"long redirect URI":      {"redirect_uris": []string{"https://app.example.com/" + strings.Repeat("a", 2000)}},
		"long client_name":       {"redirect_uris": []string{"https://a.example/cb"}, "client_name": strings.Repeat("n", 201)},
		"long scope":             {"redirect_uris": []string{"https://a.example/cb"}, "scope": strings.Repeat("s ", 1001)},
		"client_credentials":     {"redirect_uris": []string{"https://a.example/cb"}, "grant_types": []string{"client_credentials"}},
		"token response type":    {"redirect_uris": []string{"https://a.example/cb"}, "response_types": []string{"token"}},
		"http jwks_uri":          {"redirect_uris": []string{"https://a.example/cb"}, "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://a.example/jwks"},
		"javascript client_uri":  {"redirect_uris": []string{"https://a.example/cb"}, "client_uri": "javascript:alert(1)"},
		"redirect_uris a string": {"redirect_uris": "https://a.example/cb"},
	} {
		t.Run(name, func(t *testing.T) {
			st, m := e.register(md)
			if st != http.StatusBadRequest || m["error"] == nil {
				t.Fatalf("%d %v", st, m["error"])
			}
		})
	}
	t.Run("oversize body", func(t *testing.T) {
		body := `{"redirect_uris":["https://a.example/cb"],"pad":"` + strings.Repeat("x", 65<<10) + `"}`
		resp, err := http.Post(e.issuer+"/register", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
	t.Run("registration never takes a client_id or secret", func(t *testing.T) {
		st, m := e.register(map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "client_id": "chosen",
			"client_secret": "chosen-secret"})
		if st != 201 || m["client_id"] == "chosen" || m["client_secret"] == "chosen-secret" {
			t.Fatalf("%d %v", st, m["client_id"])
		}
	})
}

// TestIssuedTokenProperties: aud is the authorized resource only, tsid is
// long and random, token responses are never cached, and errors never echo
// what was sent.
func TestIssuedTokenProperties(t *testing.T) {
	e := newEnv(t, nil)
	redirect := "http://127.0.0.1:9999/callback"
	id := e.publicClient(redirect)
	seen := map[string]bool{}
	for range 3 {
		verifier, challenge := pkce()
		m := e.exchange(id, redirect, e.login(id, redirect, challenge, nil), verifier)
		parts := strings.Split(m["access_token"].(string), ".")
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var claims map[string]any
		if err := json.Unmarshal(raw, &claims); err != nil {
			t.Fatal(err)
		}
		if claims["aud"] != resource {
			t.Fatalf("aud = %v, want exactly %q", claims["aud"], resource)
		}
		tsid, _ := claims["tsid"].(string)
		if len(tsid) < 32 || seen[tsid] {
			t.Fatalf("tsid %d characters or repeated", len(tsid))
		}
		seen[tsid] = true
	}
	const probe = "probe-secret-value-1234567890"
	for name, f := range map[string]url.Values{
		"forged code":    {"grant_type": {"authorization_code"}, "client_id": {id}, "code": {probe}, "code_verifier": {probe + probe}},
		"forged refresh": {"grant_type": {"refresh_token"}, "client_id": {id}, "refresh_token": {"fam." + probe}},
		"bad grant":      {"grant_type": {probe}, "client_id": {id}},
		"bad client":     {"grant_type": {"authorization_code"}, "client_id": {probe}, "client_secret": {probe}},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/token", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode < 400 || resp.Header.Get("Cache-Control") != "no-store" || strings.Contains(body, probe) {
			t.Fatalf("%s: %d Cache-Control=%q echoes input=%v", name, resp.StatusCode, resp.Header.Get("Cache-Control"), strings.Contains(body, probe))
		}
	}
	if strings.Contains(e.logs.String(), probe) {
		t.Fatal("a submitted code, token or secret reached the log")
	}
}

// TestIssAndStateOnUpstreamOutage: even when the upstream is down, the
// client gets an error response with state and iss, not a dead end.
func TestIssAndStateOnUpstreamOutage(t *testing.T) {
	e := newEnv(t, nil)
	redirect := "http://127.0.0.1:9999/callback"
	id := e.publicClient(redirect)
	e.idp.Close()
	_, challenge := pkce()
	u := e.follow(e.browser, e.authorizeURL(id, redirect, challenge, nil), redirect)
	q := u.Query()
	if q.Get("error") != "temporarily_unavailable" || q.Get("state") != "st-123" || q.Get("iss") != e.issuer || q.Get("code") != "" {
		t.Fatalf("upstream outage: %v", redactQuery(q))
	}
}

// TestRepeatedRotationKeepsEveryLiveKey: two rotations in a row keep both
// previous keys published while tokens they signed are live.
func TestRepeatedRotationKeepsEveryLiveKey(t *testing.T) {
	e := newEnv(t, nil)
	redirect := "http://127.0.0.1:9999/callback"
	id := e.publicClient(redirect)
	var tokens []string
	for i := range 3 {
		if i > 0 {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.as.RotateSigningKey(upstream.SigningKey{Signer: k}); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(time.Minute)
		}
		verifier, challenge := pkce()
		m := e.exchange(id, redirect, e.login(id, redirect, challenge, nil), verifier)
		tokens = append(tokens, m["access_token"].(string))
	}
	vf := e.verifier()
	for i, tok := range tokens {
		if _, err := vf.Verify(t.Context(), tok); err != nil {
			t.Fatalf("token %d after two rotations: %v", i, err)
		}
	}
}
