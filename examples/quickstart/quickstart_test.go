package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/internal/testport"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines to log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// noEnv is a getenv with nothing set.
func noEnv(string) string { return "" }

// env returns a getenv with the given variables.
func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// jwtPattern matches anything that looks like a compact JWS.
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.`)

// assertNoToken fails if s contains something shaped like a JWT or any of
// the given secrets.
func assertNoToken(t *testing.T, what, s string, secrets ...string) {
	t.Helper()
	if jwtPattern.MatchString(s) {
		t.Errorf("%s contains a token:\n%s", what, s)
	}
	for _, secret := range secrets {
		if secret != "" && strings.Contains(s, secret) {
			t.Errorf("%s contains a secret", what)
		}
	}
}

// runDemoArgs runs the command with -demo and args and returns its output.
func runDemoArgs(t *testing.T, getenv func(string) string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut syncBuffer
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err = run(ctx, append([]string{"-demo"}, args...), getenv, &out, &errOut)
	return out.String(), errOut.String(), err
}

// line returns the line of out starting with prefix.
func line(t *testing.T, out, prefix string) string {
	t.Helper()
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no line starting with %q in:\n%s", prefix, out)
	return ""
}

// The demo's round trip against the embedded IdP, step by step.
func TestDemoEmbedded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		args       []string
		wantScopes string // in the challenge, PRM and token
	}{
		{name: "no scopes"},
		{name: "scopes", args: []string{"-scopes", "mcp:tools, mcp:read"}, wantScopes: "mcp:tools mcp:read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, errOut, err := runDemoArgs(t, noEnv, tc.args...)
			if err != nil {
				t.Fatalf("demo failed: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
			}
			assertNoToken(t, "stdout", out)
			assertNoToken(t, "stderr", errOut)

			// Step 1: 401 whose challenge names the metadata URL.
			m := regexp.MustCompile(`^1\. POST (http://127\.0\.0\.1:\d+/mcp) without a token: 401 Unauthorized$`).
				FindStringSubmatch(line(t, out, "1. "))
			if m == nil {
				t.Fatalf("step 1 line unexpected:\n%s", out)
			}
			resource := m[1]
			metadataURL := strings.Replace(resource, "/mcp", "/.well-known/oauth-protected-resource/mcp", 1)
			challenge := line(t, out, "   WWW-Authenticate: ")
			if !strings.Contains(challenge, `resource_metadata="`+metadataURL+`"`) {
				t.Errorf("challenge %q lacks resource_metadata=%q", challenge, metadataURL)
			}
			if strings.Contains(challenge, "error=") {
				t.Errorf("challenge without a token has an error code: %q", challenge)
			}
			if tc.wantScopes != "" && !strings.Contains(challenge, `scope="`+tc.wantScopes+`"`) {
				t.Errorf("challenge %q lacks scope=%q", challenge, tc.wantScopes)
			}

			// Step 2: the metadata is for this very resource.
			prmLine := line(t, out, "2. ")
			if !strings.Contains(prmLine, "resource="+resource+" ") {
				t.Errorf("PRM line %q does not name resource %s", prmLine, resource)
			}
			if !strings.Contains(prmLine, "scopes_supported=["+tc.wantScopes+"]") {
				t.Errorf("PRM line %q: want scopes_supported [%s]", prmLine, tc.wantScopes)
			}
			if !strings.Contains(line(t, out, "4. "), `scope="`+tc.wantScopes+`"`) {
				t.Errorf("token line lacks scope %q:\n%s", tc.wantScopes, out)
			}

			// Step 6: the tool saw the verified client.
			who := strings.TrimPrefix(line(t, out, "6. tools/call whoami: "), "6. tools/call whoami: ")
			var id identity
			if err := json.Unmarshal([]byte(who), &id); err != nil {
				t.Fatalf("whoami result %q: %v", who, err)
			}
			if id.Subject != demoClientID || id.ClientID != demoClientID {
				t.Errorf("whoami = %+v, want subject and client_id %q", id, demoClientID)
			}
			if got := strings.Join(id.Scopes, " "); got != tc.wantScopes {
				t.Errorf("whoami scopes = %q, want %q", got, tc.wantScopes)
			}
			line(t, out, "6. tools/call echo: hello from the demo client")
			line(t, out, "demo OK")
		})
	}
}

// startTest starts the server as run would, logging into the returned
// buffer, and stops it when the test ends.
func startTest(t *testing.T, o options) (*quickstart, *syncBuffer) {
	t.Helper()
	if o.addr == "" {
		o.addr = "127.0.0.1:0"
	}
	var logs syncBuffer
	qs, err := start(o, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(qs.close)
	return qs, &logs
}

// callResult is one HTTP exchange with the server.
type callResult struct {
	status    int
	challenge string
	body      string
}

// callTool POSTs a tools/call for whoami to url with token (none if empty).
func callTool(t *testing.T, url, token string) callResult {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return callResult{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"), body: string(b)}
}

// Tokens the server must refuse, and the ones it must accept, against the
// embedded IdP.
func TestTokens(t *testing.T) {
	t.Parallel()
	qs, logs := startTest(t, options{scopes: []string{"mcp:tools"}})
	other := idptest.NewServer(t, idptest.Config{Audience: []string{qs.resource}})
	metadataURL := qs.url + "/.well-known/oauth-protected-resource/mcp"
	now := time.Now()

	for _, tc := range []struct {
		name       string
		url        string
		token      string
		wantStatus int
		wantError  string // error= in the challenge; "" means none
	}{
		{name: "valid", token: qs.idp.Token(map[string]any{"scope": "mcp:tools"}), wantStatus: 200},
		{name: "no token", wantStatus: 401},
		{name: "other audience", token: qs.idp.Token(map[string]any{"scope": "mcp:tools", "aud": "http://127.0.0.1:1/mcp"}),
			wantStatus: 401, wantError: "invalid_token"},
		{name: "expired", token: qs.idp.Token(map[string]any{"scope": "mcp:tools", "iat": now.Add(-2 * time.Hour), "exp": now.Add(-time.Hour)}),
			wantStatus: 401, wantError: "invalid_token"},
		{name: "other issuer", token: other.Token(map[string]any{"scope": "mcp:tools"}), wantStatus: 401, wantError: "invalid_token"},
		{name: "missing scope", token: qs.idp.Token(map[string]any{"scope": "mcp:read"}), wantStatus: 403, wantError: "insufficient_scope"},
		{name: "not a JWT", token: "opaque-canary-token", wantStatus: 401, wantError: "invalid_token"},
		{name: "other path with a valid token", url: qs.url + "/mcp/x", token: qs.idp.Token(map[string]any{"scope": "mcp:tools"}), wantStatus: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := tc.url
			if url == "" {
				url = qs.resource
			}
			got := callTool(t, url, tc.token)
			if got.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", got.status, tc.wantStatus, got.body)
			}
			switch {
			case got.status == 200:
				if !strings.Contains(got.body, `"subject":"user"`) {
					t.Errorf("whoami body %s lacks the token's subject", got.body)
				}
			case got.status == 404:
			default:
				if !strings.Contains(got.challenge, `resource_metadata="`+metadataURL+`"`) {
					t.Errorf("challenge %q lacks resource_metadata", got.challenge)
				}
				// The required scope is announced where it helps the client
				// ask for the right token: no token yet, or too few scopes.
				if tc.wantError != "invalid_token" && !strings.Contains(got.challenge, `scope="mcp:tools"`) {
					t.Errorf("challenge %q lacks the required scope", got.challenge)
				}
				hasError := strings.Contains(got.challenge, "error=")
				if tc.wantError == "" && hasError || tc.wantError != "" && !strings.Contains(got.challenge, `error="`+tc.wantError+`"`) {
					t.Errorf("challenge %q, want error %q", got.challenge, tc.wantError)
				}
			}
			if tc.token != "" && strings.Contains(got.body+got.challenge, tc.token) {
				t.Error("response echoes the token")
			}
		})
	}
	t.Cleanup(func() { assertNoToken(t, "log", logs.String(), "opaque-canary-token") })
}

// The metadata document is public and names the configured resource and
// the embedded IdP.
func TestMetadata(t *testing.T) {
	t.Parallel()
	qs, _ := startTest(t, options{scopes: []string{"a", "b"}})
	resp, err := http.Get(qs.url + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || md.Resource != qs.resource || len(md.AuthorizationServers) != 1 ||
		md.AuthorizationServers[0] != qs.idp.Issuer() || strings.Join(md.ScopesSupported, " ") != "a b" {
		t.Errorf("GET metadata: %d %+v", resp.StatusCode, md)
	}
}

// An explicit -resource is what tokens must be issued for and what the
// metadata names; the MCP endpoint moves to its path.
func TestExplicitResource(t *testing.T) {
	t.Parallel()
	// The resource names the port before the server starts. A port the
	// kernel chose and released could be taken meanwhile as the local end
	// of any outbound connection on the machine, so the port comes from
	// below the ephemeral range (testport), and a start whose port was
	// taken anyway is retried on another.
	var qs *quickstart
	var addr, resource string
	testport.Start(t, func(a string) bool {
		addr, resource = a, "http://"+a+"/tenant/mcp"
		var err error
		qs, err = start(options{addr: addr, resource: resource}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if errors.Is(err, syscall.EADDRINUSE) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(qs.close)
		return true
	})
	if qs.resource != resource {
		t.Fatalf("resource = %q, want %q", qs.resource, resource)
	}
	if got := callTool(t, resource, qs.idp.Token(nil)); got.status != 200 {
		t.Errorf("token for %s: status %d %s", resource, got.status, got.body)
	}
	if got := callTool(t, "http://"+addr+"/mcp", qs.idp.Token(nil)); got.status != 404 {
		t.Errorf("default path with -resource elsewhere: status %d, want 404", got.status)
	}
	if got := callTool(t, resource, qs.idp.Token(map[string]any{"aud": "http://" + addr + "/mcp"})); got.status != 401 {
		t.Errorf("token for the default resource: status %d, want 401", got.status)
	}
}

// -issuer trusts an external IdP (here a separate idptest server): the demo
// discovers it from the metadata and gets its token there; the server
// discovers its keys from it.
func TestExternalIssuer(t *testing.T) {
	t.Parallel()
	const secret = "canary-client-secret-7f3a"
	ext := idptest.NewServer(t, idptest.Config{
		IssuerPath: "/realms/demo", // like Keycloak: discovery must honour the path
		Clients:    []idptest.Client{{ID: "ext-client", Secret: secret}},
	})

	t.Run("demo", func(t *testing.T) {
		t.Parallel()
		out, errOut, err := runDemoArgs(t, env(map[string]string{secretEnv: secret}),
			"-issuer", ext.Issuer(), "-client-id", "ext-client", "-scopes", "mcp:tools")
		if err != nil {
			t.Fatalf("demo failed: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
		}
		assertNoToken(t, "stdout", out, secret)
		assertNoToken(t, "stderr", errOut, secret)
		if l := line(t, out, "2. "); !strings.Contains(l, "authorization_servers=["+ext.Issuer()+"]") {
			t.Errorf("PRM does not name the external issuer: %s", l)
		}
		if l := line(t, out, "3. "); !strings.Contains(l, "token_endpoint="+ext.TokenURL()) {
			t.Errorf("token endpoint not discovered from the external issuer: %s", l)
		}
		who := line(t, out, "6. tools/call whoami: ")
		if !strings.Contains(who, `"subject":"ext-client"`) || !strings.Contains(who, `"issuer":"`+ext.Issuer()+`"`) {
			t.Errorf("whoami: %s", who)
		}
		if got := ext.LastTokenRequest().Get("resource"); !strings.HasPrefix(got, "http://127.0.0.1:") {
			t.Errorf("token request resource = %q, want the server's resource URI", got)
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		t.Parallel()
		out, errOut, err := runDemoArgs(t, env(map[string]string{secretEnv: "wrong"}),
			"-issuer", ext.Issuer(), "-client-id", "ext-client")
		if err == nil || !strings.Contains(err.Error(), "step 4") {
			t.Fatalf("err = %v, want a step 4 failure\n%s", err, out)
		}
		assertNoToken(t, "output", out+errOut+err.Error(), secret)
	})

	t.Run("no client", func(t *testing.T) {
		t.Parallel()
		_, _, err := runDemoArgs(t, noEnv, "-issuer", ext.Issuer())
		if err == nil || !strings.Contains(err.Error(), secretEnv) {
			t.Fatalf("err = %v, want a hint at -client-id and %s", err, secretEnv)
		}
	})

	t.Run("tokens", func(t *testing.T) {
		t.Parallel()
		qs, _ := startTest(t, options{issuer: ext.Issuer()})
		if qs.idp != nil {
			t.Fatal("embedded IdP started despite -issuer")
		}
		if got := callTool(t, qs.resource, ext.Token(map[string]any{"aud": qs.resource})); got.status != 200 {
			t.Errorf("external token: status %d %s", got.status, got.body)
		}
		if got := callTool(t, qs.resource, ext.Token(map[string]any{"aud": "https://other.example/mcp"})); got.status != 401 {
			t.Errorf("external token for another audience: status %d, want 401", got.status)
		}
		var out bytes.Buffer
		qs.printUsage(&out)
		assertNoToken(t, "usage", out.String())
		if strings.Contains(out.String(), "THROWAWAY") || !strings.Contains(out.String(), ext.Issuer()) {
			t.Errorf("usage with -issuer:\n%s", out.String())
		}
	})
}

// A demo that cannot complete exits with an error naming the failed step.
func TestDemoFailures(t *testing.T) {
	t.Parallel()
	down := idptest.NewServer(t, idptest.Config{})
	down.SetFault(idptest.EndpointDiscovery, idptest.Fault{Status: 500})
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		// The resource names a port nobody serves: the probe gets no 401.
		{name: "resource elsewhere", args: []string{"-resource", "http://127.0.0.1:1/mcp"}, want: "step 1"},
		// The IdP's discovery is broken: no token endpoint.
		{name: "issuer discovery down", args: []string{"-issuer", down.Issuer(), "-client-id", "c"},
			env: map[string]string{secretEnv: "s"}, want: "step 3"},
		{name: "bad flag", args: []string{"-nope"}, want: "flag provided but not defined"},
		{name: "stray argument", args: []string{"extra"}, want: "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := runDemoArgs(t, env(tc.env), tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// Without -demo the command prints a working call with a throwaway token,
// serves until its context ends, then shuts down cleanly.
func TestServeAndShutdown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	var errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"-addr", "127.0.0.1:0", "-scopes", "mcp:tools"}, noEnv, pw, &errOut)
		pw.CloseWithError(fmt.Errorf("run returned: %v", err))
		done <- err
	}()

	// Read the usage up to its last line, as a user would before pasting.
	var usage strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		usage.WriteString(sc.Text() + "\n")
		if sc.Text() == "Press Ctrl-C to stop." {
			break
		}
	}
	go io.Copy(io.Discard, pr) // drain the rest
	text := usage.String()
	if !strings.Contains(text, "THROWAWAY DEVELOPMENT TOKEN") {
		t.Fatalf("usage lacks the labelled dev token:\n%s\n%s", text, errOut.String())
	}
	token := regexp.MustCompile(`TOKEN='([^']+)'`).FindStringSubmatch(text)
	url := regexp.MustCompile(`curl -sS '([^']+)'`).FindStringSubmatch(text)
	if token == nil || url == nil {
		t.Fatalf("usage lacks TOKEN= or the curl call:\n%s", text)
	}
	got := callTool(t, url[1], token[1])
	if got.status != 200 || !strings.Contains(got.body, `"subject":"dev-user"`) || !strings.Contains(got.body, `"mcp:tools"`) {
		t.Errorf("printed call: status %d body %s", got.status, got.body)
	}
	if got := callTool(t, url[1], ""); got.status != 401 {
		t.Errorf("without the token: status %d, want 401", got.status)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
	assertNoToken(t, "log", errOut.String())
}

// Values holding the demo client's secret never print it.
func TestSecretsDoNotPrint(t *testing.T) {
	t.Parallel()
	const canary = "canary-secret-c4f1"
	p := demoParams{resource: "http://127.0.0.1/mcp", clientID: "c", secret: canary}
	qs := &quickstart{resource: "http://127.0.0.1/mcp", demoSecret: canary}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		for _, v := range []any{p, &p, qs, *qs} {
			if s := fmt.Sprintf(verb, v); strings.Contains(s, canary) || strings.Contains(s, fmt.Sprintf("%x", canary)) {
				t.Errorf("Sprintf(%s, %T) = %q reveals the secret", verb, v, s)
			}
		}
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, true},
		{&net.TCPAddr{IP: net.ParseIP("::1")}, true},
		{&net.TCPAddr{IP: net.ParseIP("0.0.0.0")}, false},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1")}, false},
		{&net.UnixAddr{Name: "/tmp/x"}, false},
	} {
		if got := isLoopback(tc.addr); got != tc.want {
			t.Errorf("isLoopback(%v) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://127.0.0.1:8080/mcp": `'http://127.0.0.1:8080/mcp'`,
		"a'b":                       `'a'\''b'`,
		"$(rm -rf)":                 `'$(rm -rf)'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestDiscoveryURLs(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]string{
		"https://idp.example": {"https://idp.example/.well-known/oauth-authorization-server",
			"https://idp.example/.well-known/openid-configuration"},
		"https://idp.example/realms/x/": {"https://idp.example/.well-known/oauth-authorization-server/realms/x",
			"https://idp.example/realms/x/.well-known/openid-configuration"},
	} {
		if got := discoveryURLs(in); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("discoveryURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

// tokenSwitch is a RoundTripper that sends the token currently in it.
type tokenSwitch struct {
	mu    sync.Mutex
	token string
}

func (s *tokenSwitch) set(token string) { s.mu.Lock(); s.token = token; s.mu.Unlock() }

func (s *tokenSwitch) RoundTrip(req *http.Request) (*http.Response, error) {
	s.mu.Lock()
	token := s.token
	s.mu.Unlock()
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+token)
	return http.DefaultTransport.RoundTrip(req)
}

// A tool sees the identity of the request that called it, not of whoever
// connected first: a client that changes its token (another user, a
// stepped-up scope) is never served under the old one.
func TestIdentityPerRequest(t *testing.T) {
	t.Parallel()
	qs, _ := startTest(t, options{})
	rt := &tokenSwitch{token: qs.idp.Token(map[string]any{"sub": "alice"})}
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "v0"}, nil)
	session, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint: qs.resource, HTTPClient: &http.Client{Transport: rt}, DisableStandaloneSSE: true, MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	for _, sub := range []string{"alice", "bob"} {
		rt.set(qs.idp.Token(map[string]any{"sub": sub}))
		res, err := session.CallTool(t.Context(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		if got := resultText(res); !strings.Contains(got, `"subject":"`+sub+`"`) {
			t.Errorf("whoami with %s's token = %s", sub, got)
		}
	}
}

func TestDefaultResource(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr    net.Addr
		want    string
		wantErr bool
	}{
		{addr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 8080}, want: "http://127.0.0.1:8080/mcp"},
		{addr: &net.TCPAddr{IP: net.ParseIP("::1"), Port: 8080}, want: "http://[::1]:8080/mcp"},
		{addr: &net.TCPAddr{IP: net.ParseIP("0.0.0.0"), Port: 8080}, wantErr: true},
		{addr: &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 8080}, wantErr: true},
	} {
		got, err := defaultResource(tc.addr)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("defaultResource(%v) = %q, %v; want %q, error %v", tc.addr, got, err, tc.want, tc.wantErr)
		}
	}
}
