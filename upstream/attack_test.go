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
