package upstream_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/upstream"
)

func TestDiscoveryDocuments(t *testing.T) {
	for _, path := range []string{"", "/tenant1"} {
		t.Run("issuer path "+path, func(t *testing.T) {
			e := newEnv(t, func(e *env, c *upstream.Config) { c.Issuer = e.issuer + path })
			iss := e.issuer + path
			var urls []string
			if path == "" {
				urls = []string{e.issuer + "/.well-known/oauth-authorization-server", e.issuer + "/.well-known/openid-configuration"}
			} else {
				urls = []string{e.issuer + "/.well-known/oauth-authorization-server" + path,
					e.issuer + "/.well-known/openid-configuration" + path, iss + "/.well-known/openid-configuration"}
			}
			for _, u := range urls {
				resp := e.get(http.DefaultClient, u)
				var md map[string]any
				err := json.NewDecoder(resp.Body).Decode(&md)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("%s: %d %v", u, resp.StatusCode, err)
				}
				if md["issuer"] != iss {
					t.Fatalf("%s: issuer %v, want byte-exact %q", u, md["issuer"], iss)
				}
				if md["authorization_endpoint"] != iss+"/authorize" || md["token_endpoint"] != iss+"/token" ||
					md["jwks_uri"] != iss+"/jwks" || md["registration_endpoint"] != iss+"/register" {
					t.Fatalf("%s: endpoints %v", u, md)
				}
				if b, _ := json.Marshal(md["code_challenge_methods_supported"]); string(b) != `["S256"]` {
					t.Fatalf("code_challenge_methods_supported = %s", b)
				}
				if md["authorization_response_iss_parameter_supported"] != true || md["client_id_metadata_document_supported"] != true {
					t.Fatalf("iss / CIMD support not advertised: %v", md)
				}
				if b, _ := json.Marshal(md["token_endpoint_auth_methods_supported"]); !strings.Contains(string(b), `"none"`) ||
					!strings.Contains(string(b), `"private_key_jwt"`) {
					t.Fatalf("token_endpoint_auth_methods_supported = %s", b)
				}
			}
			// Endpoints live under the issuer path: an authorize at the root is not served.
			if path != "" {
				resp := e.get(http.DefaultClient, e.issuer+"/authorize")
				resp.Body.Close()
				if resp.StatusCode != 404 {
					t.Fatalf("root /authorize with an issuer path: %d", resp.StatusCode)
				}
			}
		})
	}
	t.Run("registration endpoint absent when DCR is off", func(t *testing.T) {
		e := newEnv(t, func(_ *env, c *upstream.Config) { c.DisableDynamicRegistration = true })
		resp := e.get(http.DefaultClient, e.issuer+"/.well-known/oauth-authorization-server")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "registration_endpoint") {
			t.Fatal("registration_endpoint advertised with DCR disabled")
		}
		st, _ := e.register(map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}})
		if st != 404 {
			t.Fatalf("register with DCR disabled: %d", st)
		}
	})
}

func TestAuthorizeErrors(t *testing.T) {
	e := newEnv(t, func(_ *env, c *upstream.Config) {
		c.Resources = []string{resource, "https://mcp2.example.com/mcp"}
	})
	redirect := "http://127.0.0.1:9999/callback"
	clientID := e.publicClient(redirect)
	webRedirect := "https://app.example.com/cb"
	webClient := e.publicClient(webRedirect)
	_, challenge := pkce()

	// Errors that must never redirect: an error page instead.
	for _, tc := range []struct {
		name string
		u    string
	}{
		{"unknown client", e.authorizeURL("unknown-client", redirect, challenge, nil)},
		{"unregistered redirect", e.authorizeURL(clientID, "http://127.0.0.1:9999/evil", challenge, nil)},
		{"redirect on another host", e.authorizeURL(webClient, "https://evil.example.com/cb", challenge, nil)},
		{"web redirect on another port", e.authorizeURL(webClient, "https://app.example.com:8443/cb", challenge, nil)},
		{"redirect with fragment", e.authorizeURL(clientID, redirect+"#x", challenge, nil)},
		{"missing client_id", e.authorizeURL("", redirect, challenge, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.get(newBrowser(), tc.u)
			body := readBody(t, resp)
			if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(body, `id="error"`) {
				t.Fatalf("%d Location=%q: want a 400 error page, never a redirect", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}

	// Errors redirected with error, state and iss.
	for _, tc := range []struct {
		name  string
		extra url.Values
		code  string
	}{
		{"plain PKCE", url.Values{"code_challenge_method": {"plain"}}, "invalid_request"},
		{"missing challenge", url.Values{"code_challenge": nil}, "invalid_request"},
		{"missing method", url.Values{"code_challenge_method": nil}, "invalid_request"},
		{"short challenge", url.Values{"code_challenge": {"abc"}}, "invalid_request"},
		{"implicit", url.Values{"response_type": {"token"}}, "unsupported_response_type"},
		{"unknown resource", url.Values{"resource": {"https://evil.example.com/mcp"}}, "invalid_target"},
		{"two resources", url.Values{"resource": {resource, "https://mcp2.example.com/mcp"}}, "invalid_target"},
		{"missing resource with two configured", url.Values{"resource": nil}, "invalid_target"},
		{"unsupported scope", url.Values{"scope": {"root"}}, "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.get(newBrowser(), e.authorizeURL(clientID, redirect, challenge, tc.extra))
			resp.Body.Close()
			loc, err := resp.Location()
			if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), redirect+"?") {
				t.Fatalf("%d %v: want a redirect to the client", resp.StatusCode, err)
			}
			q := loc.Query()
			if q.Get("error") != tc.code || q.Get("state") != "st-123" || q.Get("iss") != e.issuer || q.Get("error_description") == "" {
				t.Fatalf("error response %v: want error=%s with state and iss", q, tc.code)
			}
		})
	}

	t.Run("loopback port flexibility", func(t *testing.T) {
		verifier, challenge := pkce()
		r := "http://127.0.0.1:51234/callback" // registered with port 9999
		code := e.login(clientID, r, challenge, nil)
		e.exchange(clientID, r, code, verifier)
	})
	t.Run("resource defaults when one is configured", func(t *testing.T) {
		e1 := newEnv(t, nil)
		id := e1.publicClient(redirect)
		verifier, challenge := pkce()
		code := e1.login(id, redirect, challenge, url.Values{"resource": nil, "scope": nil})
		st, m, _ := e1.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {code},
			"redirect_uri": {redirect}, "code_verifier": {verifier}})
		if st != 200 || m["scope"] != "mcp:tools" {
			t.Fatalf("%d %v", st, m["error"])
		}
		info, err := e1.verifier().Verify(t.Context(), m["access_token"].(string))
		if err != nil || info.Audience[0] != resource {
			t.Fatalf("defaulted resource: %v", err)
		}
	})
}

func TestConsentPage(t *testing.T) {
	e := newEnv(t, nil)
	redirect := "http://127.0.0.1:9999/callback"
	clientID := e.publicClient(redirect)
	_, challenge := pkce()
	b := newBrowser()
	resp := e.get(b, e.authorizeURL(clientID, redirect, challenge, nil))
	resp.Body.Close()
	consentURL, err := resp.Location()
	if err != nil || resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(consentURL.String(), e.issuer+"/consent?") {
		t.Fatalf("first authorization: %d %v, want the consent page", resp.StatusCode, err)
	}
	p1 := readBody(t, e.get(b, consentURL.String()))
	p2 := readBody(t, e.get(b, consentURL.String()))
	if p1 != p2 {
		t.Fatal("a second GET of the consent page differs from the first (not idempotent)")
	}
	if !strings.Contains(p1, "Test Client") || !strings.Contains(p1, "127.0.0.1:9999") || !strings.Contains(p1, clientID) {
		t.Fatal("the consent page does not name the client and its redirect host")
	}
	if !strings.Contains(p1, `id="loopback-warning"`) {
		t.Fatal("no warning for a loopback redirect URI")
	}
	form := consentForm(t, p1)
	post := func(c *http.Client, f url.Values, origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/consent", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		r, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r
	}
	for _, tc := range []struct {
		name   string
		c      *http.Client
		f      func() url.Values
		origin string
	}{
		{"missing csrf", b, func() url.Values {
			f := url.Values{}
			f.Set("login", form.Get("login"))
			f.Set("action", "approve")
			return f
		}, ""},
		{"wrong csrf", b, func() url.Values {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			f.Set("csrf", strings.Repeat("0", 64))
			return f
		}, ""},
		{"another browser", newBrowser(), func() url.Values { return form }, ""},
		{"cross-site origin", b, func() url.Values { return form }, "https://evil.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := post(tc.c, tc.f(), tc.origin)
			if r.StatusCode != http.StatusForbidden || r.Header.Get("Location") != "" {
				t.Fatalf("%d Location=%q: want 403", r.StatusCode, r.Header.Get("Location"))
			}
		})
	}
	// The genuine form still works after the refused attempts.
	r := post(b, form, e.issuer)
	loc, _ := r.Location()
	if r.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), e.idp.URL()) {
		t.Fatalf("approve: %d %v", r.StatusCode, loc)
	}
	// Consent is remembered for this client in this browser: no page next time.
	_, challenge2 := pkce()
	resp = e.get(b, e.authorizeURL(clientID, redirect, challenge2, nil))
	resp.Body.Close()
	loc, _ = resp.Location()
	if loc == nil || !strings.HasPrefix(loc.String(), e.idp.URL()) {
		t.Fatalf("second authorization: %v, want straight to the upstream", loc)
	}
	// Another browser is asked again.
	resp = e.get(newBrowser(), e.authorizeURL(clientID, redirect, challenge2, nil))
	resp.Body.Close()
	if loc, _ := resp.Location(); loc == nil || !strings.HasPrefix(loc.String(), e.issuer+"/consent") {
		t.Fatalf("another browser skipped consent: %v", loc)
	}
}

func TestConsentDenied(t *testing.T) {
	e := newEnv(t, nil)
	redirect := "http://127.0.0.1:9999/callback"
	clientID := e.publicClient(redirect)
	_, challenge := pkce()
	b := newBrowser()
	resp := e.get(b, e.authorizeURL(clientID, redirect, challenge, nil))
	resp.Body.Close()
	loc, _ := resp.Location()
	page := readBody(t, e.get(b, loc.String()))
	form := consentForm(t, page)
	form.Set("action", "deny")
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/consent", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	l, _ := r.Location()
	if l == nil || l.Query().Get("error") != "access_denied" || l.Query().Get("iss") != e.issuer || l.Query().Get("state") != "st-123" {
		t.Fatalf("deny: %v", l)
	}
}

func TestCustomConsentPage(t *testing.T) {
	var got upstream.ConsentRequest
	e := newEnv(t, func(_ *env, c *upstream.Config) {
		c.ConsentPage = func(w http.ResponseWriter, _ *http.Request, req upstream.ConsentRequest) {
			got = req
			_, _ = io.WriteString(w, "custom page")
		}
	})
	redirect := "http://127.0.0.1:9999/callback"
	clientID := e.publicClient(redirect)
	_, challenge := pkce()
	b := newBrowser()
	resp := e.get(b, e.authorizeURL(clientID, redirect, challenge, nil))
	resp.Body.Close()
	loc, _ := resp.Location()
	if body := readBody(t, e.get(b, loc.String())); body != "custom page" {
		t.Fatalf("body %q", body)
	}
	if got.ClientID != clientID || got.RedirectHost != "127.0.0.1:9999" || !got.NeedsConsent || got.Form["csrf"] == "" ||
		len(got.Upstreams) != 1 || got.Upstreams[0].Name != "corp" {
		t.Fatalf("ConsentRequest: %+v", got)
	}
}

func TestSeveralUpstreamsChosenPerLogin(t *testing.T) {
	var second interface{ URL() string }
	e := newEnv(t, func(e *env, c *upstream.Config) {
		p2 := newSecondProvider(t)
		second = p2
		c.Upstreams = append(c.Upstreams, p2.OAuth2("gh"))
	})
	redirect := "http://127.0.0.1:9999/callback"
	clientID := e.publicClient(redirect)
	verifier, challenge := pkce()
	// The consent page offers both; choose "gh" explicitly.
	b := newBrowser()
	resp := e.get(b, e.authorizeURL(clientID, redirect, challenge, nil))
	resp.Body.Close()
	loc, _ := resp.Location()
	page := readBody(t, e.get(b, loc.String()))
	if !strings.Contains(page, `value="corp"`) || !strings.Contains(page, `value="gh"`) {
		t.Fatal("consent page does not offer both upstreams")
	}
	form := consentForm(t, page)
	form.Set("upstream", "gh")
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/consent", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	l, _ := r.Location()
	if l == nil || !strings.HasPrefix(l.String(), second.URL()) {
		t.Fatalf("chose gh, went to %v", l)
	}
	u := e.follow(b, l.String(), redirect)
	m := e.exchange(clientID, redirect, u.Query().Get("code"), verifier)
	info, err := e.verifier().Verify(t.Context(), m["access_token"].(string))
	if err != nil || info.Subject != "gh:bob" {
		t.Fatalf("subject %v, want gh:bob (namespaced by upstream): %v", info, err)
	}
}
