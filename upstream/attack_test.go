package upstream_test

// Attacks on the authorization server, each over real HTTP on loopback.
// Every test here is named for the attack it tries.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/upstream"
	"github.com/mcpauth-go/mcpauth/upstream/upstreamtest"
)

// authorizeLocation sends one authorization request in browser b and
// returns the status and Location (without following it).
func (e *env) authorizeLocation(b *http.Client, u string) (int, string) {
	e.t.Helper()
	resp := e.get(b, u)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// TestConsentDoesNotCoverWiderScopeOrOtherResource: a client the user
// approved for one scope and resource must not get a wider scope, or a
// token for another resource, without the consent page (the remembered
// consent is for what the user saw).
func TestConsentDoesNotCoverWiderScopeOrOtherResource(t *testing.T) {
	const other = "https://mcp2.example.com/mcp"
	e := newEnv(t, func(_ *env, c *upstream.Config) { c.Resources = []string{resource, other} })
	redirect := "http://127.0.0.1:9999/callback"
	clientID := e.publicClient(redirect)
	verifier, challenge := pkce()
	code := e.login(clientID, redirect, challenge, url.Values{"scope": {"mcp:tools"}})
	e.exchange(clientID, redirect, code, verifier)

	consentPage := e.issuer + "/consent?"
	for _, tc := range []struct {
		name  string
		extra url.Values
		ask   bool
	}{
		{"same scope and resource", url.Values{"scope": {"mcp:tools"}}, false},
		{"narrower (default) scope", url.Values{"scope": nil}, false},
		{"wider scope", url.Values{"scope": {"mcp:tools mcp:admin"}}, true},
		{"other scope", url.Values{"scope": {"files:read"}}, true},
		{"other resource", url.Values{"scope": {"mcp:tools"}, "resource": {other}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := pkce()
			st, loc := e.authorizeLocation(e.browser, e.authorizeURL(clientID, redirect, ch, tc.extra))
			asked := st == http.StatusSeeOther && strings.HasPrefix(loc, consentPage)
			if asked != tc.ask {
				t.Fatalf("%d %s: consent page shown = %v, want %v", st, loc, asked, tc.ask)
			}
			if asked {
				page := readBody(t, e.get(e.browser, loc))
				if !strings.Contains(page, "Authorize") || !strings.Contains(page, `id="scopes"`) {
					t.Fatal("the consent page does not ask for approval")
				}
			}
		})
	}
}

// TestConfigAndServerNeverPrintKeysOrSecrets: printing the Config, a
// SigningKey or the Server (fmt verbs, slog, JSON) never shows the private
// signing key or the upstream client secret.
func TestConfigAndServerNeverPrintKeysOrSecrets(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pemOf(t, ecKey)
	const secret = "upstream-client-secret-value"
	cfg := upstream.Config{
		Issuer: "https://as.example.com", Resources: []string{resource},
		Upstreams: []upstream.Provider{{Name: "corp", Type: upstream.OIDC, Issuer: "https://idp.example.com",
			ClientID: "c", ClientSecret: secret}},
		SigningKeys: []upstream.SigningKey{{PEM: pemKey}, {Signer: ecKey}},
		Logger:      slog.New(slog.DiscardHandler),
	}
	srv, err := upstream.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := ecKey.D.String()
	dHex := fmt.Sprintf("%x", ecKey.D.Bytes())
	pemBody := strings.Split(string(pemKey), "\n")[1]
	pemBytes := strings.Trim(fmt.Sprint(pemKey[40:80]), "[]") // %v of a []byte
	var logged bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logged, nil))
	logger.Info("config", "cfg", cfg, "key", cfg.SigningKeys[0], "signer", cfg.SigningKeys[1], "srv", srv)
	logger.Info("config", slog.Any("cfg", &cfg))
	js, _ := json.Marshal(cfg.SigningKeys)
	for _, out := range []string{
		fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.SigningKeys),
		fmt.Sprintf("%v %+v %#v", &cfg, cfg.SigningKeys[0], cfg.SigningKeys[1]),
		fmt.Sprintf("%v %+v %#v", srv, srv, srv),
		fmt.Sprintf("%v %+v", []*upstream.Server{srv}, map[string]any{"s": srv}),
		logged.String(), string(js),
	} {
		for _, s := range []string{pemBody, pemBytes, d, dHex, secret} {
			if strings.Contains(out, s) {
				t.Fatalf("a private key or client secret is printed:\n%.300s", out)
			}
		}
	}
}

// TestUpstreamMixUp: a login started at one upstream cannot be completed
// with a response from another (RFC 9207 iss, RFC 9700 §4.4): the code
// the other provider issued is never sent to the chosen provider's token
// endpoint.
func TestUpstreamMixUp(t *testing.T) {
	var gh *upstreamtest.Provider
	e := newEnv(t, func(_ *env, c *upstream.Config) {
		gh = newSecondProvider(t)
		c.Upstreams = append(c.Upstreams, gh.OAuth2("gh"))
	})
	redirect := "http://127.0.0.1:9999/callback"
	id := e.publicClient(redirect)
	for _, chosen := range []string{"gh", "corp"} {
		t.Run("chosen "+chosen, func(t *testing.T) {
			b := newBrowser()
			_, challenge := pkce()
			st, loc := e.authorizeLocation(b, e.authorizeURL(id, redirect, challenge, url.Values{"upstream": {chosen}}))
			if st != http.StatusSeeOther {
				t.Fatalf("authorize: %d", st)
			}
			page := readBody(t, e.get(b, loc))
			form := consentForm(t, page)
			form.Set("upstream", chosen)
			req, _ := http.NewRequest(http.MethodPost, e.issuer+"/consent", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := b.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			up, _ := resp.Location()
			state := up.Query().Get("state")
			// The attacker sends the browser to the other provider with
			// this login's state; it answers our callback with its code
			// and its iss.
			honest, honestIssuer := e.idp, e.idp.Issuer()
			if chosen == "corp" {
				honest, honestIssuer = gh, gh.Issuer()
			}
			_, ch := pkce()
			q := url.Values{"response_type": {"code"}, "client_id": {map[bool]string{true: "mcpauth-dev", false: "gh-client"}[chosen == "gh"]},
				"redirect_uri": {e.issuer + "/callback"}, "state": {state}, "code_challenge": {ch}, "code_challenge_method": {"S256"}}
			hr := e.get(b, honest.URL()+"/authorize?"+q.Encode())
			hr.Body.Close()
			cb, err := hr.Location()
			if err != nil || cb.Query().Get("iss") != honestIssuer || cb.Query().Get("code") == "" {
				t.Fatalf("the other provider did not answer with a code and its iss: %v", err)
			}
			chosenIdP := gh
			if chosen == "corp" {
				chosenIdP = e.idp
			}
			before := chosenIdP.TokenRequests()
			res := e.get(b, cb.String())
			res.Body.Close()
			if n := chosenIdP.TokenRequests() - before; n != 0 {
				t.Fatalf("the other provider's code was sent to %s's token endpoint (%d requests)", chosen, n)
			}
			l, _ := res.Location()
			if l == nil || l.Query().Get("error") != "access_denied" || l.Query().Get("code") != "" || l.Query().Get("iss") != e.issuer {
				t.Fatalf("mixed-up response: %d %v", res.StatusCode, redactLocation(l))
			}
		})
	}
	t.Run("iss stripped from an OIDC response that advertises it", func(t *testing.T) {
		b := newBrowser()
		_, challenge := pkce()
		_, loc := e.authorizeLocation(b, e.authorizeURL(id, redirect, challenge, url.Values{"upstream": {"corp"}}))
		form := consentForm(t, readBody(t, e.get(b, loc)))
		form.Set("upstream", "corp")
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/consent", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		up, _ := resp.Location()
		hr := e.get(b, up.String())
		hr.Body.Close()
		cb, _ := hr.Location()
		q := cb.Query()
		q.Del("iss")
		cb.RawQuery = q.Encode()
		before := e.idp.TokenRequests()
		res := e.get(b, cb.String())
		res.Body.Close()
		l, _ := res.Location()
		if e.idp.TokenRequests() != before || l == nil || l.Query().Get("error") != "access_denied" {
			t.Fatalf("a response without the advertised iss was accepted: %d %v", res.StatusCode, redactLocation(l))
		}
	})
}

// redactLocation returns a redirect's query without its code.
func redactLocation(u *url.URL) url.Values {
	if u == nil {
		return nil
	}
	return redactQuery(u.Query())
}

// TestStaticClientWithSecretNeedsIt: a statically configured client with a
// secret hash but no TokenEndpointAuthMethod is confidential, not a public
// client anyone can redeem codes for without the secret; contradictory
// static clients are refused at construction.
func TestStaticClientWithSecretNeedsIt(t *testing.T) {
	redirect := "http://127.0.0.1:9999/callback"
	const secret = "static-client-secret"
	e := newEnv(t, func(_ *env, c *upstream.Config) {
		c.Clients = []upstream.Client{{ID: "static-app", SecretHash: upstream.HashClientSecret(secret), RedirectURIs: []string{redirect}}}
	})
	verifier, challenge := pkce()
	code := e.login("static-app", redirect, challenge, nil)
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {"static-app"}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {verifier}}
	st, m, _ := e.token(form)
	wantOAuthError(t, "no client authentication", st, m, http.StatusUnauthorized, "invalid_client")
	verifier, challenge = pkce()
	form.Set("code", e.login("static-app", redirect, challenge, nil))
	form.Set("code_verifier", verifier)
	form.Del("client_id")
	if st, m, _ := e.token(form, "static-app", secret); st != http.StatusOK {
		t.Fatalf("with the secret: %d %v", st, m["error"])
	}

	for name, c := range map[string]upstream.Client{
		"none with a secret":             {ID: "a", SecretHash: upstream.HashClientSecret(secret), TokenEndpointAuthMethod: "none", RedirectURIs: []string{redirect}},
		"secret method without a secret": {ID: "a", TokenEndpointAuthMethod: "client_secret_basic", RedirectURIs: []string{redirect}},
		"private_key_jwt without keys":   {ID: "a", TokenEndpointAuthMethod: "private_key_jwt", RedirectURIs: []string{redirect}},
		"unknown method":                 {ID: "a", TokenEndpointAuthMethod: "tls_client_auth", RedirectURIs: []string{redirect}},
		"invalid redirect":               {ID: "a", RedirectURIs: []string{"http://app.example.com/cb"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := upstream.NewServer(upstream.Config{Issuer: "https://as.example.com", Resources: []string{resource},
				Upstreams: []upstream.Provider{{Name: "corp", Type: upstream.OIDC, Issuer: "https://idp.example.com", ClientID: "c"}},
				Clients:   []upstream.Client{c}, Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				t.Fatal("NewServer accepted the client")
			}
		})
	}
}

// TestRedirectHostHomographRefused: the consent page's trust signal is the
// redirect host (and URI), so a redirect URI whose host is not plain ASCII
// (an IDN homograph such as a Cyrillic "а", percent-encoded or not) or
// that holds any character outside printable ASCII (a bidirectional
// override reordering what follows, a space; RFC 3986 URIs are ASCII) is
// refused at registration: it would read as another on the page. IDNs
// register in their xn-- form.
func TestRedirectHostHomographRefused(t *testing.T) {
	e := newEnv(t, nil)
	for _, ru := range []string{"https://\u0430pp.example.com/cb", "https://%D0%B0pp.example.com/cb",
		"https://app.example.com\u202e/cb", "https://app.example.com\u200b/cb",
		"https://\uff41pp.example.com/cb", "https://app.example.com/\u202ebc.evil", "https://app.example.com/cb?\u2066x",
		"https://app.example.com/c b", "https://app.example.com/cb\x7f"} {
		st, m := e.register(map[string]any{"token_endpoint_auth_method": "none", "redirect_uris": []string{ru}})
		if st != http.StatusBadRequest || m["error"] != "invalid_redirect_uri" {
			t.Errorf("register %q: %d %v", ru, st, m["error"])
		}
	}
	ru := "https://xn--pp-8cd.example.com/cb"
	id := e.publicClient(ru)
	_, challenge := pkce()
	_, loc := e.authorizeLocation(e.browser, e.authorizeURL(id, ru, challenge, nil))
	if page := readBody(t, e.get(e.browser, loc)); !strings.Contains(page, "xn--pp-8cd.example.com") {
		t.Fatal("the consent page does not show the registered A-label host")
	}
}

// TestClientNameSpoofingRefused: a client_name with control, invisible or
// bidirectional formatting characters could reorder or hide the text
// around it on the consent page (the client ID beside it), so
// registration refuses it.
func TestClientNameSpoofingRefused(t *testing.T) {
	e := newEnv(t, nil)
	for _, name := range []string{"\u202eppA dooG", "Good App\u2066", "Good\u200bApp", "Good\nApp", "Good\x00App", "Good\u0085App", "\u061cGood"} {
		st, m := e.register(map[string]any{"token_endpoint_auth_method": "none", "redirect_uris": []string{"https://a.example/cb"},
			"client_name": name})
		if st != http.StatusBadRequest || m["error"] != "invalid_client_metadata" {
			t.Errorf("register client_name %q: %d %v", name, st, m["error"])
		}
	}
	if st, m := e.register(map[string]any{"token_endpoint_auth_method": "none", "redirect_uris": []string{"https://a.example/cb"},
		"client_name": "Ünïcödé App 日本語"}); st != http.StatusCreated {
		t.Fatalf("a plain Unicode name is refused: %d %v", st, m["error"])
	}
}

// TestConsentPageShowsUpstreamScopesAndRedirectURI: the MCP consent rules
// (security best practices, "Consent UI Requirements") require the page to
// show the third-party API scopes the login grants and the registered
// redirect URI the tokens go to, not only the MCP scopes and a host.
func TestConsentPageShowsUpstreamScopesAndRedirectURI(t *testing.T) {
	var got upstream.ConsentRequest
	e := newEnv(t, func(_ *env, c *upstream.Config) {
		c.Upstreams[0].Scopes = []string{"repo:write", "calendar.read"}
	})
	redirect := "http://127.0.0.1:9999/callback/path"
	id := e.publicClient(redirect)
	_, challenge := pkce()
	_, loc := e.authorizeLocation(e.browser, e.authorizeURL(id, redirect, challenge, nil))
	page := readBody(t, e.get(e.browser, loc))
	for _, want := range []string{"repo:write", "calendar.read", redirect} {
		if !strings.Contains(page, want) {
			t.Errorf("the consent page does not show %q", want)
		}
	}
	custom := newEnv(t, func(_ *env, c *upstream.Config) {
		c.Upstreams[0].Scopes = []string{"repo:write"}
		c.ConsentPage = func(w http.ResponseWriter, _ *http.Request, req upstream.ConsentRequest) { got = req }
	})
	id = custom.publicClient(redirect)
	_, loc = custom.authorizeLocation(custom.browser, custom.authorizeURL(id, redirect, challenge, nil))
	readBody(t, custom.get(custom.browser, loc))
	if len(got.Upstreams) != 1 || !slices.Contains(got.Upstreams[0].Scopes, "repo:write") {
		t.Fatalf("ConsentRequest.Upstreams %+v: no upstream scopes for a custom page", got.Upstreams)
	}
}
