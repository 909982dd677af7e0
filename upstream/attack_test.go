package upstream_test

// Attacks on the authorization server, each over real HTTP on loopback.
// Every test here is named for the attack it tries.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/upstream"
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
