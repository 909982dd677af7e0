package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/internal/testport"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The embedded authorization server (package upstream, run as
// examples/embedded-as) against real third-party software: its upstream
// identity provider is oidc-provider, its clients are the official MCP
// TypeScript and Go SDKs, and the official MCP conformance suite checks it
// as an authorization server.

const (
	// asUpstreamClient is the embedded authorization server's client_id at
	// oidc-provider (its secret is generated per test).
	asUpstreamClient = "mcpauth-embedded-as"
	// asUpstreamName is the name examples/embedded-as gives an OIDC
	// upstream: issued subjects are "<name>:<upstream sub>".
	asUpstreamName = "oidc"
	// asScope is the scope examples/embedded-as supports, grants by default
	// and requires.
	asScope = "mcp:tools"
)

// embeddedAS is a running examples/embedded-as whose upstream is a fresh
// oidc-provider, and an https server holding Client ID Metadata Documents
// that the authorization server may fetch and trusts.
type embeddedAS struct {
	issuer   string // the embedded authorization server, http://127.0.0.1:PORT[/path]
	resource string // its MCP endpoint, http://127.0.0.1:PORT/mcp
	idp      *idp   // the upstream
	cimd     *cimdServer
}

// cimdServer serves Client ID Metadata Documents over https on 127.0.0.1,
// one per path, and counts the fetches.
type cimdServer struct {
	srv     *httptest.Server
	docs    map[string][]byte // path -> document
	fetches atomic.Int64
	caFile  string // PEM of its certificate, for SSL_CERT_FILE
}

// url returns the client_id of the document at path.
func (c *cimdServer) url(path string) string { return c.srv.URL + path }

// startCIMD serves a Client ID Metadata Document for each of redirects
// (path "/clients/<i>.json" for redirects[i]): a public client using
// PKCE, whose client_id is the document's own URL.
func startCIMD(t *testing.T, redirects ...string) *cimdServer {
	t.Helper()
	c := &cimdServer{docs: map[string][]byte{}}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, ok := c.docs[r.URL.Path]
		if !ok || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		c.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		w.Write(doc)
	}))
	c.srv.StartTLS() // on 127.0.0.1, with a certificate valid for it
	t.Cleanup(c.srv.Close)
	for i, redirect := range redirects {
		path := fmt.Sprintf("/clients/%d.json", i)
		c.docs[path] = mustJSON(t, map[string]any{
			"client_id":                  c.url(path),
			"client_name":                "mcpauth interop client " + strconv.Itoa(i),
			"redirect_uris":              []string{redirect},
			"grant_types":                []string{"authorization_code", "refresh_token"},
			"response_types":             []string{"code"},
			"token_endpoint_auth_method": "none",
		})
	}
	c.caFile = filepath.Join(t.TempDir(), "cimd-ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw})
	if err := os.WriteFile(c.caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// asOptions are the variations of startEmbeddedAS.
type asOptions struct {
	// issuerPath follows http://127.0.0.1:PORT in the issuer: "" or "/path".
	// The MCP endpoint is http://127.0.0.1:PORT/mcp either way.
	issuerPath string
	// cimdRedirects are the redirect URIs of the documents the cimd server
	// holds, one document each.
	cimdRedirects []string
	// preregistered, if not empty, is the client_id of a public client the
	// example registers at start (-client-id) with the redirect URI
	// http://127.0.0.1/callback, which matches on any port (RFC 8252 §7.3).
	preregistered string
}

// startEmbeddedAS runs oidc-provider with a confidential client for the
// embedded authorization server, then examples/embedded-as logging users
// in there, fetching Client ID Metadata Documents from loopback (the
// -cimd-allow list) and trusting cimd's certificate (SSL_CERT_FILE, read by
// Go's x509 system roots).
func startEmbeddedAS(t *testing.T, o asOptions) *embeddedAS {
	t.Helper()
	var s *embeddedAS
	testport.Start(t, func(addr string) bool {
		s = &embeddedAS{issuer: "http://" + addr + o.issuerPath, resource: "http://" + addr + "/mcp"}
		secret := rand.Text() + rand.Text()
		s.idp = startIdP(t, idpConfig{Clients: []map[string]any{{
			"client_id":                  asUpstreamClient,
			"client_secret":              secret,
			"token_endpoint_auth_method": "client_secret_basic",
			"grant_types":                []string{"authorization_code"},
			"response_types":             []string{"code"},
			"redirect_uris":              []string{s.issuer + "/callback"},
		}}})
		s.cimd = startCIMD(t, o.cimdRedirects...)
		// The example reads its upstream client secret from the environment
		// (never a flag); the child process inherits both variables.
		t.Setenv("MCPAUTH_UPSTREAM_CLIENT_SECRET", secret)
		t.Setenv("SSL_CERT_FILE", s.cimd.caFile)
		args := []string{"-addr", addr, "-issuer", s.issuer, "-scopes", asScope,
			"-upstream", "oidc", "-upstream-issuer", s.idp.Issuer, "-upstream-client-id", asUpstreamClient,
			"-cimd-allow", "127.0.0.0/8"}
		if o.preregistered != "" {
			args = append(args, "-client-id", o.preregistered, "-client-redirect", "http://127.0.0.1/callback")
		}
		return startExample(t, "embedded-as", s.resource, args...)
	})
	return s
}

// origin is the scheme and host of the example's listener.
func (s *embeddedAS) origin() string { return strings.TrimSuffix(s.resource, "/mcp") }

// discovery returns the first requests of an MCP client's login, as
// "METHOD URL STATUS": the unauthenticated probe, the protected resource
// metadata, and the authorization server metadata at its RFC 8414 location
// (the path of the issuer after the well-known name).
func (s *embeddedAS) discovery() []string {
	return []string{
		"POST " + s.resource + " 401",
		"GET " + s.origin() + "/.well-known/oauth-protected-resource/mcp 200",
		"GET " + s.origin() + "/.well-known/oauth-authorization-server" + strings.TrimPrefix(s.issuer, s.origin()) + " 200",
	}
}

// whoami is the result of examples/embedded-as's whoami tool.
type whoami struct {
	Subject       string   `json:"subject"`
	ClientID      string   `json:"client_id"`
	Issuer        string   `json:"issuer"`
	Scopes        []string `json:"scopes"`
	Upstream      string   `json:"upstream"`
	UpstreamToken bool     `json:"upstream_token"`
}

// check asserts that the caller whoami reports is user, logged in at the
// oidc-provider upstream (whose token the server keeps), with a token this
// authorization server issued to a client with clientID (any, if empty).
func (w whoami) check(t *testing.T, s *embeddedAS, user, clientID string) {
	t.Helper()
	if w.Subject != asUpstreamName+":"+user || w.Issuer != s.issuer || w.Upstream != asUpstreamName ||
		!w.UpstreamToken || !slices.Equal(w.Scopes, []string{asScope}) || w.ClientID == "" ||
		(clientID != "" && w.ClientID != clientID) {
		t.Errorf("whoami = %+v; want subject %q, issuer %q, upstream %q holding a token, scopes [%s], client %q",
			w, asUpstreamName+":"+user, s.issuer, asUpstreamName, asScope, clientID)
	}
}

// assertNoDetours fails the test when a client met an error on its way
// (a metadata location it had to fall back from, a refused registration or
// token request) other than the 401 it starts from and the 405 of a
// stateless MCP endpoint to the GET that would open an event stream.
func assertNoDetours(t *testing.T, s *embeddedAS, xs []exchange) {
	t.Helper()
	for i, x := range xs {
		switch {
		case x.Status < 400:
		case i == 0 && x.String() == "POST "+s.resource+" 401":
		case x.String() == "GET "+s.resource+" 405":
		default:
			t.Errorf("the client met %s on its way", x)
		}
	}
}

// registrationExchanges returns the requests to the registration endpoint.
func registrationExchanges(s *embeddedAS, xs []exchange) []exchange {
	var out []exchange
	for _, x := range xs {
		if x.URL == s.issuer+"/register" {
			out = append(out, x)
		}
	}
	return out
}

// TestTypeScriptSDKEmbeddedAS: the official TypeScript SDK client logs in
// to examples/embedded-as through its embedded authorization server, which
// logs the user in at oidc-provider: probe → 401 → PRM → AS metadata →
// registration (DCR, or a Client ID Metadata Document on https) → PKCE
// authorize → consent → upstream login → token → tools/call, then the
// SDK's refresh (refresh_token grant, rotated) → tools/call.
func TestTypeScriptSDKEmbeddedAS(t *testing.T) {
	root := startEmbeddedAS(t, asOptions{cimdRedirects: []string{clientRedir}})
	withPath := startEmbeddedAS(t, asOptions{issuerPath: "/as"})
	for _, tc := range []struct {
		name, user, clientMetadataURL string
		s                             *embeddedAS
	}{
		{name: "DCR", user: "erin", s: root},
		{name: "CIMD", user: "grace", clientMetadataURL: root.cimd.url("/clients/0.json"), s: root},
		{name: "DCR, issuer with a path", user: "oscar", s: withPath},
	} {
		s := tc.s
		t.Run(tc.name, func(t *testing.T) {
			cfg := map[string]any{"flow": "authorization_code", "user": tc.user, "redirect": clientRedir,
				"url": s.resource, "calls": []toolCall{{Name: "whoami"}}, "refresh": true}
			if tc.clientMetadataURL != "" {
				cfg["clientMetadataUrl"] = tc.clientMetadataURL
			}
			fetches := s.cimd.fetches.Load()
			r := runTSClient(t, cfg)
			want := s.discovery()
			if tc.clientMetadataURL == "" {
				want = append(want, "POST "+s.issuer+"/register 201")
			}
			// The code grant, calls, the refresh grant, calls again.
			want = append(want, "POST "+s.issuer+"/token 200", "POST "+s.resource+" 200",
				"POST "+s.issuer+"/token 200", "POST "+s.resource+" 200")
			assertSequence(t, r.HTTP, want...)
			assertNoDetours(t, s, r.HTTP)
			regs := registrationExchanges(s, r.HTTP)
			if tc.clientMetadataURL != "" {
				if len(regs) != 0 {
					t.Errorf("the client registered (%v) although it has a Client ID Metadata Document", regs)
				}
				if s.cimd.fetches.Load() == fetches {
					t.Error("the authorization server never fetched the Client ID Metadata Document")
				}
			}
			if !slices.Contains(r.Tools, "whoami") {
				t.Errorf("tools/list = %v, want whoami among them", r.Tools)
			}
			if len(r.Calls) != 1 || r.Calls[0].Error != "" || r.Calls[0].IsError {
				t.Fatalf("tools/call results = %+v", r.Calls)
			}
			var w whoami
			if err := json.Unmarshal([]byte(r.Calls[0].Text), &w); err != nil {
				t.Fatalf("whoami %q: %v", r.Calls[0].Text, err)
			}
			w.check(t, s, tc.user, tc.clientMetadataURL)
			// The refresh token works for the SDK without a new login, is
			// rotated (a public client), and the new access token is for
			// the same user and client.
			if f := r.Refresh; f == nil || f.Result != "AUTHORIZED" || f.Login || !f.NewAccessToken || !f.NewRefreshToken {
				t.Errorf("refresh = %+v; want AUTHORIZED without a login, a new access token and a rotated refresh token", f)
			} else if len(f.Calls) != 1 || f.Calls[0].Error != "" || f.Calls[0].IsError {
				t.Errorf("tools/call after the refresh = %+v", f.Calls)
			} else {
				var again whoami
				if err := json.Unmarshal([]byte(f.Calls[0].Text), &again); err != nil {
					t.Fatalf("whoami after the refresh %q: %v", f.Calls[0].Text, err)
				}
				again.check(t, s, tc.user, w.ClientID)
			}
			// One login, for the resource and the scope the PRM names.
			if len(r.Authorizations) != 1 || r.Authorizations[0].Resource != s.resource || r.Authorizations[0].Scope != asScope {
				t.Errorf("authorization requests = %+v, want one for resource %q, scope %q", r.Authorizations, s.resource, asScope)
			}
		})
	}
}

// goSDKMetadataDocumentHandler is the Go SDK's authorization code handler
// using the Client ID Metadata Document at clientID, whose "browser" logs
// in as user.
func goSDKMetadataDocumentHandler(t *testing.T, hc *http.Client, clientID, user string, logins *int) *auth.AuthorizationCodeHandler {
	t.Helper()
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		ClientIDMetadataDocumentConfig: &auth.ClientIDMetadataDocumentConfig{URL: clientID},
		RedirectURL:                    clientRedir,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			*logins++
			q, err := newBrowser().authorize(ctx, args.URL, clientRedir, user)
			if err != nil {
				return nil, err
			}
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
		Client: hc,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestGoSDKClientEmbeddedAS: the official Go SDK client's authorization
// code handler (PKCE, RFC 9207 iss check), with a fetcher that drives the
// consent page and oidc-provider's login form, logs in to
// examples/embedded-as through its embedded authorization server: probe →
// 401 → PRM → AS metadata → registration (DCR, or a Client ID Metadata
// Document on https) → authorize → consent → upstream login → token →
// tools/call.
func TestGoSDKClientEmbeddedAS(t *testing.T) {
	root := startEmbeddedAS(t, asOptions{cimdRedirects: []string{clientRedir}})
	withPath := startEmbeddedAS(t, asOptions{issuerPath: "/as"})
	for _, tc := range []struct {
		name, user, clientMetadataURL string
		s                             *embeddedAS
	}{
		{name: "DCR", user: "heidi", s: root},
		{name: "CIMD", user: "ivan", clientMetadataURL: root.cimd.url("/clients/0.json"), s: root},
		{name: "DCR, issuer with a path", user: "peggy", s: withPath},
	} {
		s := tc.s
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			hc := &http.Client{Transport: rec}
			var h auth.OAuthHandler
			logins := 0
			if tc.clientMetadataURL == "" {
				h = goSDKCodeHandler(t, hc, tc.user, &logins)
			} else {
				h = goSDKMetadataDocumentHandler(t, hc, tc.clientMetadataURL, tc.user, &logins)
			}
			fetches := s.cimd.fetches.Load()
			cs, err := connectGoSDK(t, s.resource, h, hc)
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
			if err != nil || res.IsError {
				t.Fatalf("tools/call whoami: %v %q", err, textOf(res))
			}
			var w whoami
			if err := json.Unmarshal([]byte(textOf(res)), &w); err != nil {
				t.Fatalf("whoami %q: %v", textOf(res), err)
			}
			w.check(t, s, tc.user, tc.clientMetadataURL)
			if logins != 1 {
				t.Errorf("the SDK sent the user to the authorization endpoint %d times, want once", logins)
			}
			want := s.discovery()
			if tc.clientMetadataURL == "" {
				want = append(want, "POST "+s.issuer+"/register 201")
			}
			want = append(want, "POST "+s.issuer+"/token 200", "POST "+s.resource+" 200")
			t.Logf("Go SDK HTTP exchanges:\n%s", formatExchanges(rec.exchanges()))
			assertSequence(t, rec.exchanges(), want...)
			assertNoDetours(t, s, rec.exchanges())
			if tc.clientMetadataURL != "" {
				if regs := registrationExchanges(s, rec.exchanges()); len(regs) != 0 {
					t.Errorf("the client registered (%v) although it has a Client ID Metadata Document", regs)
				}
				if s.cimd.fetches.Load() == fetches {
					t.Error("the authorization server never fetched the Client ID Metadata Document")
				}
			}
		})
	}
}

// conformanceTotal is the closing line of the conformance suite's
// authorization command.
var conformanceTotal = regexp.MustCompile(`(?m)^Total: (\d+) passed, (\d+) failed$`)

// TestConformanceAuthorizationServer runs the official MCP conformance
// suite's authorization-server scenarios against the embedded
// authorization server of examples/embedded-as: its metadata
// (authorization-server-metadata-endpoint, including the Client ID
// Metadata Document support check) and one authorization code grant with
// PKCE and RFC 8707 resource (authorization-code-grant), whose
// authorization URL the suite prints and this test opens, approving the
// client on the consent page and logging in at oidc-provider, until the
// suite's callback server gets the code. The client is registered
// dynamically, is a Client ID Metadata Document, or is pre-registered with
// a port-less loopback redirect URI (the suite's callback port differs);
// the issuer is the server's origin, or has a path (metadata at
// /.well-known/oauth-authorization-server/<path>). Each run must end
// "Total: 3 passed, 0 failed".
func TestConformanceAuthorizationServer(t *testing.T) {
	ports := []string{freePort(t), freePort(t), freePort(t)}
	callback := func(port string) string { return "http://127.0.0.1:" + port + "/callback" }
	root := startEmbeddedAS(t, asOptions{cimdRedirects: []string{callback(ports[1])}})
	const preregistered = "conformance-suite"
	withPath := startEmbeddedAS(t, asOptions{issuerPath: "/as", preregistered: preregistered})
	for i, tc := range []struct {
		name, user string
		s          *embeddedAS
		clientID   func(t *testing.T, redirect string) string
	}{
		{name: "DCR", user: "judy", s: root, clientID: root.register},
		{name: "CIMD", user: "mallory", s: root, clientID: func(*testing.T, string) string { return root.cimd.url("/clients/0.json") }},
		{name: "pre-registered, issuer with a path", user: "niaj", s: withPath,
			clientID: func(*testing.T, string) string { return preregistered }},
	} {
		s := tc.s
		t.Run(tc.name, func(t *testing.T) {
			port := ports[i]
			id := tc.clientID(t, callback(port))
			start := time.Now()
			out, err := runConformanceAS(t, s, id, port, tc.user)
			t.Logf("conformance authorization (%s): %.1fs, closing line %q", tc.name, time.Since(start).Seconds(),
				conformanceTotal.FindString(out))
			if err != nil {
				t.Fatalf("conformance authorization: %v\n%s", err, tail(out, 40))
			}
			m := conformanceTotal.FindStringSubmatch(out)
			if m == nil || m[1] != "3" || m[2] != "0" {
				t.Fatalf("conformance authorization did not end with 3 passed, 0 failed:\n%s", tail(out, 40))
			}
		})
	}
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// register registers a public client for redirect (RFC 7591) and returns
// its client_id.
func (s *embeddedAS) register(t *testing.T, redirect string) string {
	t.Helper()
	resp, err := http.Post(s.issuer+"/register", "application/json", bytes.NewReader(mustJSON(t, map[string]any{
		"client_name":                "MCP conformance suite",
		"redirect_uris":              []string{redirect},
		"grant_types":                []string{"authorization_code"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	})))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reg struct {
		ClientID string `json:"client_id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&reg); err != nil ||
		resp.StatusCode != http.StatusCreated || reg.ClientID == "" {
		t.Fatalf("registration: HTTP %d, %v", resp.StatusCode, err)
	}
	return reg.ClientID
}

// runConformanceAS runs the conformance suite's authorization command
// against s for client id with its callback server on port. When the suite
// prints the authorization URL, a plain HTTP client (newBrowser) opens it,
// approves the client, logs in at the upstream as user and delivers the
// redirect to the suite's callback server, as a browser would. It returns
// the suite's stdout and its exit error; every check the suite saved must
// be SUCCESS.
func runConformanceAS(t *testing.T, s *embeddedAS, id, port, user string) (string, error) {
	t.Helper()
	node := requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	// Every value joined to its option with "=": a dynamically registered
	// client_id is random base64url and starts with "-" one time in 64,
	// which the suite's argument parser would take for options ("-V…"
	// printed the version and exited 0, having checked nothing).
	cmd := exec.CommandContext(ctx, node, "node_modules/@modelcontextprotocol/conformance/dist/index.js",
		"authorization", "--url="+s.issuer, "--client-id="+id, "--resource="+s.resource, "--port="+port, "-o", dir)
	cmd.Dir = nodeDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("conformance stderr:\n%s", stderr.String())
		}
	})

	// The suite prints "Access the following URL in your browser ..." and
	// the authorization URL on the next line.
	out := &syncBuffer{}
	authURL := make(chan string, 1)
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		prompt := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(out, line)
			if prompt {
				authURL <- strings.TrimSpace(line)
				prompt = false
			}
			if strings.HasPrefix(line, "Access the following URL") {
				prompt = true
			}
		}
	}()
	redirect := "http://127.0.0.1:" + port + "/callback"
	select {
	case u := <-authURL:
		if !strings.HasPrefix(u, s.issuer+"/authorize?") {
			cmd.Cancel()
			<-read
			cmd.Wait()
			return out.String(), fmt.Errorf("the suite printed %q as the authorization URL", u)
		}
		q, err := newBrowser().authorize(ctx, u, redirect, user)
		if err != nil {
			cmd.Cancel()
			<-read
			cmd.Wait()
			return out.String(), fmt.Errorf("authorization: %w", err)
		}
		// The browser lands on the suite's callback server with the
		// authorization response.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, redirect+"?"+q.Encode(), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cmd.Cancel()
			<-read
			cmd.Wait()
			return out.String(), fmt.Errorf("callback: %w", err)
		}
		resp.Body.Close()
	case <-read:
		// The suite ended without asking for a login.
	}
	<-read
	err = cmd.Wait()
	checkConformanceResults(t, dir)
	return out.String(), err
}

// checkConformanceResults asserts that every check saved under dir
// succeeded (no FAILURE, no WARNING such as a missing
// client_id_metadata_document_supported, no SKIPPED).
func checkConformanceResults(t *testing.T, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "checks.json" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var checks []struct{ ID, Status, ErrorMessage string }
		if err := json.Unmarshal(b, &checks); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, c := range checks {
			n++
			if c.Status != "SUCCESS" {
				t.Errorf("conformance check %s: %s %s", c.ID, c.Status, c.ErrorMessage)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Error(err)
	}
	if n == 0 {
		t.Errorf("the conformance suite saved no checks under %s", dir)
	}
}

// TestInspectorCLIEmbeddedAS: the MCP Inspector CLI 2.12.0 logs in to
// examples/embedded-as through its embedded authorization server (its own
// discovery and DCR, PKCE, its loopback callback listener; the consent
// page and oidc-provider's login driven by the test) and calls whoami; a
// second run calls it again with the stored authorization, without a login.
func TestInspectorCLIEmbeddedAS(t *testing.T) {
	s := startEmbeddedAS(t, asOptions{})
	home := t.TempDir()
	for i, wantLogins := range []int{1, 0} {
		run := runInspector(t, home, s.resource, "", "olivia", "", "--method", "tools/call", "--tool-name", "whoami")
		if run.err != nil || run.logins != wantLogins {
			t.Fatalf("run %d: tools/call whoami: %v, %d logins, want %d", i+1, run.err, run.logins, wantLogins)
		}
		var out struct {
			Result struct {
				StructuredContent whoami `json:"structuredContent"`
				IsError           bool   `json:"isError"`
			} `json:"result"`
		}
		if err := json.Unmarshal(run.stdout, &out); err != nil || out.Result.IsError {
			t.Fatalf("run %d: tools/call whoami output %s: %v", i+1, run.stdout, err)
		}
		out.Result.StructuredContent.check(t, s, "olivia", "")
		if run.logins == 1 && len(run.scopes) == 1 && run.scopes[0] != asScope {
			t.Errorf("the Inspector asked for scope %q, want %q (from the protected resource metadata)", run.scopes[0], asScope)
		}
	}
}
