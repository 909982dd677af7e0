package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestEndToEnd runs the example as a user would and drives it like an MCP
// client: probe, 401, PRM, AS metadata, DCR, PKCE authorization, consent,
// upstream login, token, tools/call.
func TestEndToEnd(t *testing.T) {
	t.Run("dynamic registration", func(t *testing.T) { endToEnd(t, false) })
	t.Run("pre-registered client", func(t *testing.T) { endToEnd(t, true) })
}

func endToEnd(t *testing.T, static bool) {
	logs := &syncBuffer{}
	args := []string{"-addr", "127.0.0.1:0"}
	if static {
		// Registered on another port: loopback redirects match on any port.
		args = append(args, "-client-id", "conformance-client", "-client-redirect", "http://127.0.0.1:1/callback")
	}
	o, err := parseFlags(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := start(o, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	var usage bytes.Buffer
	a.printUsage(&usage)
	if !strings.Contains(usage.String(), a.resource) || !strings.Contains(usage.String(), a.issuer+"/callback") {
		t.Fatalf("usage does not say where things are:\n%s", usage.String())
	}

	// 1. Probe: 401 with the metadata URL.
	resp, err := http.Post(a.resource, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	chal := resp.Header.Get("WWW-Authenticate")
	m := regexp.MustCompile(`resource_metadata="([^"]+)"`).FindStringSubmatch(chal)
	if resp.StatusCode != 401 || m == nil {
		t.Fatalf("probe: %d %q", resp.StatusCode, chal)
	}
	// 2. PRM names the embedded authorization server.
	var prmDoc struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	getJSON(t, m[1], &prmDoc)
	if prmDoc.Resource != a.resource || len(prmDoc.AuthorizationServers) != 1 {
		t.Fatalf("PRM: %+v", prmDoc)
	}
	issuer := prmDoc.AuthorizationServers[0]
	// 3. AS metadata.
	var md map[string]any
	getJSON(t, issuer+"/.well-known/oauth-authorization-server", &md)
	if md["issuer"] != issuer {
		t.Fatalf("issuer %v", md["issuer"])
	}
	// 4. Dynamic registration of a public client (or the pre-registered one).
	redirect := "http://127.0.0.1:33418/callback"
	clientID, clientName := "conformance-client", "conformance-client"
	if !static {
		body, _ := json.Marshal(map[string]any{"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none",
			"grant_types": []string{"authorization_code", "refresh_token"}, "client_name": "e2e client"})
		resp, err = http.Post(md["registration_endpoint"].(string), "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var reg map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&reg)
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("register: %d %v", resp.StatusCode, reg)
		}
		clientID, clientName = reg["client_id"].(string), "e2e client"
	}
	conf := &oauth2.Config{ClientID: clientID, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: md["authorization_endpoint"].(string), TokenURL: md["token_endpoint"].(string),
			AuthStyle: oauth2.AuthStyleInParams}}
	// 5. Authorization with PKCE, through consent and the upstream login.
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", a.resource))
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	next, consented := authURL, false
	var final *url.URL
	for range 10 {
		if strings.HasPrefix(next, redirect) {
			final, _ = url.Parse(next)
			break
		}
		resp, err := browser.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && strings.Contains(string(page), `<form id="consent"`) {
			if !strings.Contains(string(page), clientName) || !strings.Contains(string(page), "127.0.0.1:33418") {
				t.Fatal("consent page does not name the client and redirect host")
			}
			form := url.Values{}
			consent := string(page)[strings.Index(string(page), `<form id="consent"`):strings.Index(string(page), `<form id="deny"`)]
			for _, f := range regexp.MustCompile(`name="([a-z_]+)" value="([^"]*)"`).FindAllStringSubmatch(consent, -1) {
				form.Set(f[1], f[2])
			}
			resp, err = browser.PostForm(issuer+"/consent", form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			consented = true
		}
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("GET %s: %d, no redirect", next, resp.StatusCode)
		}
		next = loc.String()
	}
	if final == nil || !consented {
		t.Fatal("the flow did not come back to the client through the consent page")
	}
	q := final.Query()
	if q.Get("iss") != issuer || q.Get("state") != "state-1" || q.Get("code") == "" {
		t.Fatalf("authorization response lacks iss/state/code: error=%q", q.Get("error"))
	}
	// 6. Token.
	tok, err := conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", a.resource))
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	// 7. tools/call with the official Go SDK client.
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "v0"}, nil)
	session, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint: a.resource, HTTPClient: conf.Client(t.Context(), tok), DisableStandaloneSSE: true, MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	defer session.Close()
	res, err := session.CallTool(t.Context(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("tools/call: %v", err)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var id identity
	_ = json.Unmarshal(b, &id)
	if id.Subject != "dev:alice" || id.ClientID != conf.ClientID || id.Issuer != issuer || id.Upstream != "dev" || !id.UpstreamToken {
		t.Fatalf("whoami = %s", b)
	}
	for _, secret := range []string{tok.AccessToken, tok.RefreshToken, q.Get("code"), verifier} {
		if strings.Contains(logs.String(), secret) {
			t.Fatal("a token, code or verifier was logged")
		}
	}
	if !strings.Contains(logs.String(), "development signing key") {
		t.Fatal("the development key warning is missing")
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-upstream", "nope"}, {"-upstream", "oidc"}, {"-upstream", "github"}, {"-cimd-allow", "x"}, {"extra"}, {"-client-id", "x"}} {
		if _, err := parseFlags(args, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	o, err := parseFlags([]string{"-upstream", "github", "-upstream-client-id", "x"}, func(k string) string {
		if k == secretEnv {
			return "s3cret"
		}
		return ""
	}, io.Discard)
	if err != nil || o.upstreamSecret != "s3cret" {
		t.Fatalf("secret from the environment: %v", err)
	}
}
