package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines to write to.
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

// readyPattern is the READY line the command prints first, as a script
// would parse it.
var readyPattern = regexp.MustCompile(`^READY url=(\S+) resource=(\S+) metadata=(\S+) issuer=(\S+) mode=(stateful|stateless)\n`)

// ready is the parsed READY line.
type ready struct{ url, resource, metadata, issuer, mode string }

// noEnv is a getenv with nothing set.
func noEnv(string) string { return "" }

// launch runs the command with args until the test ends and returns its
// READY line and its standard output so far.
func launch(t *testing.T, args ...string) (ready, string) {
	t.Helper()
	return launchEnv(t, noEnv, args...)
}

// launchEnv is launch with an environment.
func launchEnv(t *testing.T, getenv func(string) string, args ...string) (ready, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), getenv, &stdout, &stderr) }()
	t.Cleanup(func() {
		// The clients' unused keep-alive connections go first, so the
		// server's graceful shutdown has nothing to wait for.
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := stdout.String()
		if m := readyPattern.FindStringSubmatch(out); m != nil && strings.Contains(out, "Press Ctrl-C") {
			return ready{url: m[1], resource: m[2], metadata: m[3], issuer: m[4], mode: m[5]}, out
		}
		select {
		case err := <-done:
			t.Fatalf("run returned %v before READY; stderr:\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no READY line; stdout:\n%s\nstderr:\n%s", out, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// printedTokens returns the NAME='value' assignments of the output.
func printedTokens(out string) map[string]string {
	m := map[string]string{}
	for _, kv := range regexp.MustCompile(`(?m)^  (\w+)='([^']*)'`).FindAllStringSubmatch(out, -1) {
		m[kv[1]] = kv[2]
	}
	return m
}

// tokenTransport sets a bearer token on every request.
type tokenTransport struct {
	mu    sync.Mutex
	token string
}

func (tt *tokenTransport) set(token string) { tt.mu.Lock(); tt.token = token; tt.mu.Unlock() }

func (tt *tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tt.mu.Lock()
	tok := tt.token
	tt.mu.Unlock()
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return http.DefaultTransport.RoundTrip(r)
}

// connect opens an MCP session with the official SDK client.
func connect(t *testing.T, url, token string) (*mcp.ClientSession, *tokenTransport) {
	t.Helper()
	tt := &tokenTransport{token: token}
	client := mcp.NewClient(&mcp.Implementation{Name: "gosdk-example-test", Version: "v0"}, nil)
	session, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint: url, HTTPClient: &http.Client{Transport: tt}, DisableStandaloneSSE: true, MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { session.Close() })
	return session, tt
}

func toolNames(t *testing.T, s *mcp.ClientSession) []string {
	t.Helper()
	res, err := s.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

// response is one raw HTTP answer to a JSON-RPC POST.
type response struct {
	status int
	header http.Header
	body   string // the JSON-RPC message (the data of an event stream)
}

// post sends one tools/call as a raw HTTP client, on session sessionID
// (stateful mode) or on its own (stateless).
func post(t *testing.T, url, token string, s *mcp.ClientSession, stateless bool, tool string) response {
	t.Helper()
	params := map[string]any{"name": tool, "arguments": argsFor(tool)}
	if stateless {
		// Without a session, a 2026-07-28 request names its version itself.
		params["_meta"] = map[string]any{
			mcp.MetaKeyProtocolVersion:    s.InitializeResult().ProtocolVersion,
			mcp.MetaKeyClientInfo:         map[string]any{"name": "raw", "version": "v0"},
			mcp.MetaKeyClientCapabilities: map[string]any{},
		}
	}
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 42, "method": "tools/call", "params": params})
	body := string(msg)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", s.InitializeResult().ProtocolVersion)
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", tool)
	if !stateless {
		req.Header.Set("Mcp-Session-Id", s.ID())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	msg = raw
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		for line := range strings.SplitSeq(string(raw), "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				msg = []byte(d)
			}
		}
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(msg)}
}

// argsFor returns the arguments the tests pass to tool.
func argsFor(tool string) map[string]any {
	if tool == "echo" || tool == "write_note" {
		return map[string]any{"text": "hi"}
	}
	return map[string]any{}
}

func callText(t *testing.T, s *mcp.ClientSession, tool string) string {
	t.Helper()
	res, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: tool, Arguments: argsFor(tool)})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	if res.IsError {
		t.Fatalf("%s: tool error %s", tool, res.Content[0].(*mcp.TextContent).Text)
	}
	if res.StructuredContent != nil {
		raw, _ := json.Marshal(res.StructuredContent)
		return string(raw)
	}
	return res.Content[0].(*mcp.TextContent).Text
}

// TestEndToEnd runs the command as a user would, stateful and stateless,
// and walks the flows it prints: the challenge, the metadata, tools/list
// filtered by policy, a permitted and a forbidden call, the scope step-up,
// an admin, and (stateful) another user's token on a session.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	for _, stateless := range []bool{false, true} {
		mode := map[bool]string{false: "stateful", true: "stateless"}[stateless]
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			var args []string
			if stateless {
				args = append(args, "-stateless")
			}
			r, out := launch(t, args...)
			if r.mode != mode || r.url != r.resource || !strings.HasPrefix(r.url, "http://127.0.0.1:") || !strings.HasSuffix(r.url, "/mcp") {
				t.Fatalf("READY line %+v", r)
			}
			tokens := printedTokens(out)
			user, notes, admin := tokens["TOKEN"], tokens["NOTES_TOKEN"], tokens["ADMIN_TOKEN"]
			if user == "" || notes == "" || admin == "" {
				t.Fatalf("tokens not printed:\n%s", out)
			}

			// No token: the challenge names the metadata, which names the issuer.
			resp, err := http.Post(r.url, "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `resource_metadata="`+r.metadata+`"`) {
				t.Fatalf("without a token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			resp, err = http.Get(r.metadata)
			if err != nil {
				t.Fatal(err)
			}
			var md struct {
				Resource             string   `json:"resource"`
				AuthorizationServers []string `json:"authorization_servers"`
				ScopesSupported      []string `json:"scopes_supported"`
			}
			err = json.NewDecoder(resp.Body).Decode(&md)
			resp.Body.Close()
			if err != nil || md.Resource != r.resource || !slices.Equal(md.AuthorizationServers, []string{r.issuer}) ||
				!slices.Contains(md.ScopesSupported, stepUpScope) {
				t.Fatalf("metadata %+v, %v", md, err)
			}

			// The default user sees the everyday tools and write_note, which
			// is one step-up away (calling it gets insufficient_scope), and
			// calls the everyday tools; admin_reset is not listed.
			alice, tt := connect(t, r.url, user)
			if got, want := toolNames(t, alice), []string{"echo", "whoami", "write_note"}; !slices.Equal(got, want) {
				t.Errorf("dev-user's tools/list = %v, want %v", got, want)
			}
			if got := callText(t, alice, "whoami"); !strings.Contains(got, `"subject":"dev-user"`) ||
				!strings.Contains(got, `"user_id":"`+r.issuer+`#dev-user"`) {
				t.Errorf("whoami = %s", got)
			}
			if got := callText(t, alice, "echo"); got != "hi" {
				t.Errorf("echo = %q", got)
			}
			denied := post(t, r.url, user, alice, stateless, "admin_reset")
			if denied.status != http.StatusForbidden || !strings.Contains(denied.body, `"id":42`) ||
				strings.Contains(denied.header.Get("WWW-Authenticate"), "insufficient_scope") {
				t.Errorf("admin_reset as dev-user: %d %q %s", denied.status, denied.header.Get("WWW-Authenticate"), denied.body)
			}

			// write_note without notes:write: a step-up challenge naming it.
			stepUp := post(t, r.url, user, alice, stateless, "write_note")
			challenge := stepUp.header.Get("WWW-Authenticate")
			if stepUp.status != http.StatusForbidden || !strings.Contains(challenge, `error="insufficient_scope"`) ||
				!strings.Contains(challenge, `scope="`+stepUpScope+`"`) || !strings.Contains(challenge, `resource_metadata="`+r.metadata+`"`) {
				t.Errorf("write_note without the scope: %d %q", stepUp.status, challenge)
			}
			// The same user comes back with the scope, on the same session.
			tt.set(notes)
			if got := callText(t, alice, "write_note"); got != "note stored for dev-user: hi" {
				t.Errorf("write_note after step-up = %q", got)
			}
			if got, want := toolNames(t, alice), []string{"echo", "whoami", "write_note"}; !slices.Equal(got, want) {
				t.Errorf("tools/list with %s = %v, want %v", stepUpScope, got, want)
			}

			// An admin sees and calls admin_reset.
			adm, _ := connect(t, r.url, admin)
			if got := toolNames(t, adm); !slices.Contains(got, "admin_reset") {
				t.Errorf("admin's tools/list = %v", got)
			}
			if got := callText(t, adm, "admin_reset"); got != "reset done by dev-admin" {
				t.Errorf("admin_reset = %q", got)
			}

			// Another user's valid token on dev-user's session.
			hijack := post(t, r.url, admin, alice, stateless, "whoami")
			switch {
			case !stateless && hijack.status != http.StatusForbidden:
				t.Errorf("dev-admin on dev-user's session: %d %s; want 403", hijack.status, hijack.body)
			case stateless && (hijack.status != http.StatusOK || !strings.Contains(hijack.body, `\"subject\":\"dev-admin\"`)):
				// Stateless: no session to take over; the call is dev-admin's own.
				t.Errorf("stateless whoami with dev-admin's token: %d %s", hijack.status, hijack.body)
			}
		})
	}
}

// TestExternalIssuer trusts an issuer outside the process, as the interop
// tests do with a real IdP: no token is printed, the issuer's tokens for
// the resource work, its tokens for another resource do not.
func TestExternalIssuer(t *testing.T) {
	t.Parallel()
	const introspector, secret = "mcp-server", "introspection-secret"
	idp := idptest.NewServer(t, idptest.Config{Clients: []idptest.Client{{ID: introspector, Secret: secret}}})
	getenv := func(k string) string { return map[string]string{secretEnv: secret}[k] }
	r, out := launchEnv(t, getenv, "-issuer", idp.Issuer(), "-scopes", "mcp:tools", "-introspection-client-id", introspector)
	if r.issuer != idp.Issuer() {
		t.Fatalf("READY issuer %q, want %q", r.issuer, idp.Issuer())
	}
	if len(printedTokens(out)) != 0 || strings.Contains(out, "eyJ") {
		t.Errorf("a token was printed with -issuer:\n%s", out)
	}
	s, _ := connect(t, r.url, idp.Token(map[string]any{"sub": "carol", "aud": r.resource, "scope": "mcp:tools"}))
	if got := callText(t, s, "whoami"); !strings.Contains(got, `"subject":"carol"`) {
		t.Errorf("whoami = %s", got)
	}
	// An opaque token, checked at the issuer's introspection endpoint.
	opaque, _ := connect(t, r.url, idp.OpaqueToken(map[string]any{"sub": "dave", "aud": r.resource, "scope": "mcp:tools"}))
	if got := callText(t, opaque, "whoami"); !strings.Contains(got, `"subject":"dave"`) {
		t.Errorf("whoami with an opaque token = %s", got)
	}
	for name, tok := range map[string]string{
		"opaque, other resource": idp.OpaqueToken(map[string]any{"sub": "dave", "aud": "http://127.0.0.1:1/mcp", "scope": "mcp:tools"}),
		"opaque, unknown":        "not-a-token-the-issuer-knows",
	} {
		if resp := post(t, r.url, tok, s, false, "whoami"); resp.status != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, resp.status)
		}
	}
	if strings.Contains(out, secret) {
		t.Error("the introspection secret was printed")
	}
	for name, claims := range map[string]map[string]any{
		"other resource": {"sub": "carol", "aud": "http://127.0.0.1:1/mcp", "scope": "mcp:tools"},
		"missing scope":  {"sub": "carol", "aud": r.resource},
	} {
		resp := post(t, r.url, idp.Token(claims), s, false, "whoami")
		want := map[string]int{"other resource": http.StatusUnauthorized, "missing scope": http.StatusForbidden}[name]
		if resp.status != want {
			t.Errorf("%s: status %d, want %d", name, resp.status, want)
		}
	}
}

func TestFlagErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-resource", "not-a-uri"},
		{"extra"},
		{"-addr", "127.0.0.1:0", "-issuer", "http://127.0.0.1:1", "-resource", "http://127.0.0.1:1/mcp#frag"},
	} {
		var out, errOut syncBuffer
		if err := run(t.Context(), append([]string{"-addr", "127.0.0.1:0"}, args...), noEnv, &out, &errOut); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
		if strings.Contains(out.String(), "READY") {
			t.Errorf("run(%q) printed READY", args)
		}
	}
}
