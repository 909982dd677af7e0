package outbound

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mcpauth-go/mcpauth/authn"
)

const (
	short = "canary-token" // shorter than minSubstringLen: matched whole only
	// long is long enough for substring matching and has characters that
	// are escaped in a query.
	long = "eyJhbGciOi.canary+long/token=="
)

func mustNew(t testing.TB, cfg Config) *Guard {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestCheckPassthrough(t *testing.T) {
	t.Parallel()
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	owning := mustNew(t, Config{Prefix: "test", Header: "Authorization"})
	bare := mustNew(t, Config{Prefix: "test"})
	for _, tc := range []struct {
		name    string
		g       *Guard
		token   string
		url     string
		host    string // Host override
		headers map[string]string
		trailer map[string]string
		where   string // "" means not refused
	}{
		{"no token", bare, "", "https://b/?t=x", "", map[string]string{"Authorization": "Bearer x"}, nil, ""},
		{"clean", bare, short, "https://b/?q=1", "", map[string]string{"Authorization": "Bearer other", "X-Api-Key": "k"}, nil, ""},
		{"owned header skipped", owning, short, "https://b/", "", map[string]string{"Authorization": "Bearer " + short}, nil, ""},
		{"owned header skipped, any spelling", owning, short, "https://b/", "", map[string]string{"authorization": "Bearer " + short}, nil, ""},
		{"owned header skipped, Basic", owning, short, "https://b/", "", map[string]string{"Authorization": basic("u", short)}, nil, ""},
		{"bearer in unowned Authorization", bare, short, "https://b/", "", map[string]string{"Authorization": "Bearer " + short}, nil, "header Authorization"},
		{"bearer, spaces and case", bare, short, "https://b/", "", map[string]string{"Authorization": "bearer \t" + short + " "}, nil, "header Authorization"},
		{"bare in custom header", owning, short, "https://b/", "", map[string]string{"X-Upstream-Token": " " + short}, nil, "header X-Upstream-Token"},
		{"proxy authorization", owning, short, "https://b/", "", map[string]string{"Proxy-Authorization": "Bearer " + short}, nil, "header Proxy-Authorization"},
		{"basic password", owning, short, "https://b/", "", map[string]string{"X-Legacy": basic("x", short)}, nil, "header X-Legacy"},
		{"basic user", owning, short, "https://b/", "", map[string]string{"X-Legacy": basic(short, "p")}, nil, "header X-Legacy"},
		{"basic token alone", owning, short, "https://b/", "", map[string]string{"X-Legacy": "Basic " + base64.StdEncoding.EncodeToString([]byte(short))}, nil, "header X-Legacy"},
		{"basic long token inside user", owning, long, "https://b/", "", map[string]string{"X-Legacy": basic("pre"+long, "p")}, nil, "header X-Legacy"},
		{"cookie value", owning, short, "https://b/", "", map[string]string{"Cookie": "a=b; session=\"" + short + "\""}, nil, "header Cookie"},
		{"cookie name", owning, short, "https://b/", "", map[string]string{"Cookie": "a=b; " + short + "=1"}, nil, "header Cookie"},
		{"long token in JSON header", owning, long, "https://b/", "", map[string]string{"X-Ctx": `{"t":"` + long + `"}`}, nil, "header X-Ctx"},
		{"trailer", owning, short, "https://b/", "", nil, map[string]string{"Authorization": short}, "trailer Authorization"},
		{"query value", owning, short, "https://b/?access_token=" + short, "", nil, nil, "query parameter"},
		{"query name", owning, short, "https://b/?" + short, "", nil, nil, "query parameter"},
		{"query after ;", owning, short, "https://b/?a=1;t=" + short, "", nil, nil, "query parameter"},
		{"query escaped", owning, long, "https://b/?t=" + url.QueryEscape(long), "", nil, nil, "query parameter"},
		{"query escaped name", owning, long, "https://b/?" + url.QueryEscape(long) + "=1", "", nil, nil, "query parameter"},
		{"query escaped, lower-case hex", owning, long, "https://b/?t=" + strings.NewReplacer("%2F", "%2f", "%2B", "%2b", "%3D", "%3d").Replace(url.QueryEscape(long)), "", nil, nil, "query parameter"},
		{"query escaped beside a bad escape", owning, long, "https://b/?t=%zz" + url.QueryEscape(long), "", nil, nil, "query parameter"},
		{"query escaped inside JSON", owning, long, "https://b/?s=" + url.QueryEscape(`{"t":"`+long+`"}`), "", nil, nil, "query parameter"},
		{"user info user", owning, short, "https://" + short + "@b/", "", nil, nil, "URL user info"},
		{"user info password", owning, short, "https://u:" + short + "@b/", "", nil, nil, "URL user info"},
		{"path", owning, long, "https://b/api/" + url.PathEscape(long) + "/x", "", nil, nil, "URL path"},
		{"host", owning, "0123456789abcdefghij", "https://0123456789abcdefghij.b.example/", "", nil, nil, "URL host"},
		{"Host override", owning, "0123456789abcdefghij", "https://b/", "0123456789abcdefghij.b.example", nil, nil, "header Host"},
		{"short token inside a value is not refused", owning, short, "https://b/?q=x" + short + "x", "", map[string]string{"X-Note": "my" + short + "s"}, nil, ""},
		{"prefix of the token is not refused", owning, short, "https://b/", "", map[string]string{"X-A": "Bearer canary-toke"}, nil, ""},
		{"token plus suffix is not refused", owning, short, "https://b/", "", map[string]string{"X-A": "Bearer canary-tokens"}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tc.host
			for k, v := range tc.headers {
				req.Header[k] = []string{v} // keep non-canonical keys as given
			}
			if tc.trailer != nil {
				req.Trailer = http.Header{}
				for k, v := range tc.trailer {
					req.Trailer.Set(k, v)
				}
			}
			err = tc.g.CheckPassthrough(req, tc.token)
			if tc.where == "" {
				if err != nil {
					t.Fatalf("CheckPassthrough = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrPassthrough) {
				t.Fatalf("CheckPassthrough = %v, want ErrPassthrough", err)
			}
			if !strings.HasPrefix(err.Error(), "test: ") || !strings.HasSuffix(err.Error(), ": "+tc.where) {
				t.Errorf("error %q does not start with the prefix and end with %q", err, tc.where)
			}
			if strings.Contains(err.Error(), tc.token) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

// The check of a typical request under a verified identity allocates
// nothing.
func TestCheckPassthroughAllocates(t *testing.T) {
	g := mustNew(t, Config{Header: "Authorization"})
	req, _ := http.NewRequest(http.MethodPost, "https://backend.internal/v1/tools?x=1&y=a%20b", nil)
	req.Header.Set("Authorization", "Bearer inbound")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cookie", "theme=dark; session=3b1f5c0e; lang=en")
	req.Header.Set("X-Legacy", "Basic "+base64.StdEncoding.EncodeToString([]byte("svc:pw")))
	for _, tok := range []string{short, "eyJhbGciOiJFUzI1NiJ9.inbound-token-of-typical-length.signature"} {
		if n := testing.AllocsPerRun(100, func() {
			if err := g.CheckPassthrough(req, tok); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("token of %d bytes: %v allocations, want 0", len(tok), n)
		}
	}
}

func TestCheckDestination(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		cfg    Config
		url    string
		host   string
		refuse string // substring of the error; "" means allowed
	}{
		{"https", Config{}, "https://api.example.com/x", "", ""},
		{"http loopback", Config{}, "http://127.0.0.1:8080/x", "", ""},
		{"http localhost", Config{}, "http://localhost/x", "", ""},
		{"http public", Config{}, "http://api.example.com/x", "", "plain http"},
		{"http public allowed", Config{InsecureAllowHTTP: true}, "http://api.example.com/x", "", ""},
		{"other scheme", Config{InsecureAllowHTTP: true}, "ftp://api.example.com/x", "", "not https"},
		{"listed", Config{Hosts: []string{"api.example.com"}}, "https://API.example.com:8443/x", "", ""},
		{"listed port", Config{Hosts: []string{"api.example.com:8443"}}, "https://api.example.com:8443/x", "", ""},
		{"listed IPv6", Config{Hosts: []string{"::1"}}, "https://[::1]:8443/x", "", ""},
		{"other port", Config{Hosts: []string{"api.example.com:8443"}}, "https://api.example.com/x", "", "not in Hosts"},
		{"not listed", Config{Hosts: []string{"api.example.com"}}, "https://evil.example/x", "", "not in Hosts"},
		{"subdomain not listed", Config{Hosts: []string{"api.example.com"}}, "https://x.api.example.com/x", "", "not in Hosts"},
		{"Host override not listed", Config{Hosts: []string{"api.example.com"}}, "https://api.example.com/x", "evil.example", "Host header"},
		{"Host override listed", Config{Hosts: []string{"api.example.com", "b.example.com"}}, "https://api.example.com/x", "b.example.com", ""},
		{"listed but plain http", Config{Hosts: []string{"api.example.com"}}, "http://api.example.com/x", "", "plain http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.Prefix = "test"
			g := mustNew(t, tc.cfg)
			req, err := http.NewRequest(http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tc.host
			err = g.CheckDestination(req)
			if tc.refuse == "" {
				if err != nil {
					t.Fatalf("CheckDestination = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrDestination) || !strings.Contains(err.Error(), tc.refuse) || !strings.HasPrefix(err.Error(), "test: ") {
				t.Fatalf("CheckDestination = %v, want ErrDestination mentioning %q", err, tc.refuse)
			}
		})
	}
	if err := mustNew(t, Config{}).CheckDestination(&http.Request{}); !errors.Is(err, ErrDestination) {
		t.Errorf("request without URL: %v", err)
	}
}

// A redirect an http.Client follows keeps the credential only for the
// original host and its subdomains, unless Hosts says otherwise.
func TestCheckDestinationRedirect(t *testing.T) {
	t.Parallel()
	redirected := func(from, to string) *http.Request {
		first, _ := http.NewRequest(http.MethodGet, from, nil)
		req, _ := http.NewRequest(http.MethodGet, to, nil)
		req.Response = &http.Response{Request: first}
		return req
	}
	g := mustNew(t, Config{})
	if err := g.CheckDestination(redirected("https://api.example.com/a", "https://eu.api.example.com/b")); err != nil {
		t.Errorf("redirect to a subdomain: %v", err)
	}
	if err := g.CheckDestination(redirected("https://api.example.com/a", "https://evil.example/b")); !errors.Is(err, ErrDestination) || !strings.Contains(err.Error(), "redirect") {
		t.Errorf("redirect to another host: %v", err)
	}
	if err := g.CheckDestination(redirected("https://api.example.com/a", "https://example.com/b")); !errors.Is(err, ErrDestination) {
		t.Errorf("redirect to the parent domain: %v", err)
	}
	pinned := mustNew(t, Config{Hosts: []string{"api.example.com", "files.example.net"}})
	if err := pinned.CheckDestination(redirected("https://api.example.com/a", "https://files.example.net/b")); err != nil {
		t.Errorf("redirect to a listed host: %v", err)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"", "https://api.example.com", "api.example.com/x", "user@api.example.com", "a b"} {
		if _, err := New(Config{Prefix: "test", Hosts: []string{h}}); err == nil || !strings.HasPrefix(err.Error(), "test: Hosts entry") {
			t.Errorf("Hosts entry %q: err = %v", h, err)
		}
	}
	for name, ok := range map[string]bool{
		"Authorization": true, "x-api-key": true, "X_Token.v1": true,
		"Connection": false, "keep-alive": false, "Proxy-Authorization": false, "Proxy-Authenticate": false,
		"Proxy-Connection": false, "TE": false, "Trailer": false, "Transfer-Encoding": false, "Upgrade": false,
		"Host": false, "content-length": false, "Content-Type": false, "Cookie": false, "Set-Cookie": false,
		"X Api": false, "X-Api:": false, "X-Ä": false, "X-\r\nA": false,
	} {
		g, err := New(Config{Prefix: "test", Header: name})
		if ok != (err == nil) {
			t.Errorf("Header %q: err = %v, want ok=%v", name, err, ok)
			continue
		}
		if ok && g.Header() != http.CanonicalHeaderKey(name) {
			t.Errorf("Header %q canonicalised to %q", name, g.Header())
		}
		if !ok && !strings.HasPrefix(err.Error(), "test: ") {
			t.Errorf("Header %q: error %q lacks the prefix", name, err)
		}
	}
}

type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

type recorder struct{ last *http.Request }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.last = req
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
}

// Send follows the RoundTripper contract: the caller's request is never
// modified, the owned header is replaced whatever its spelling, and a
// credential that carries the inbound token is not sent.
func TestSend(t *testing.T) {
	t.Parallel()
	g := mustNew(t, Config{Prefix: "test", Header: "authorization"})
	base := &recorder{}
	req, _ := http.NewRequest(http.MethodPost, "https://b/x", &closeRecorder{Reader: strings.NewReader("x")})
	req.Header["authorization"] = []string{"Bearer stale"}
	req.Header["Authorization"] = []string{"Bearer inbound"}
	req.Header.Set("X-Trace", "1")
	resp, err := g.Send(base, req, "Bearer fresh", "inbound")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := base.last.Header; len(got) != 2 || len(got["Authorization"]) != 1 || got.Get("Authorization") != "Bearer fresh" || got.Get("X-Trace") != "1" {
		t.Errorf("sent header %v", got)
	}
	if req.Header.Get("Authorization") != "Bearer inbound" || req.Header["authorization"][0] != "Bearer stale" || len(req.Header) != 3 {
		t.Errorf("caller's header modified: %v", req.Header)
	}
	// A later transport appending to a shared value slice must not write
	// into the caller's backing array.
	base.last.Header["X-Trace"] = append(base.last.Header["X-Trace"], "2")
	if v := req.Header["X-Trace"]; len(v) != 1 {
		t.Errorf("caller's value slice changed: %q", v)
	}

	body := &closeRecorder{Reader: strings.NewReader("x")}
	req, _ = http.NewRequest(http.MethodPost, "https://b/x", body)
	base.last = nil
	_, err = g.Send(base, req, "Bearer "+long, long)
	if !errors.Is(err, ErrPassthrough) || !body.closed.Load() || base.last != nil {
		t.Errorf("credential carrying the inbound token: err %v, body closed %v, sent %v", err, body.closed.Load(), base.last != nil)
	}
	if strings.Contains(err.Error(), long) {
		t.Errorf("error %q contains the token", err)
	}
}

func TestRefuseClosesBody(t *testing.T) {
	t.Parallel()
	body := &closeRecorder{Reader: strings.NewReader("x")}
	req, _ := http.NewRequest(http.MethodPost, "https://b/", body)
	want := errors.New("no")
	if resp, err := Refuse(req, want); resp != nil || err != want || !body.closed.Load() {
		t.Errorf("Refuse = %v, %v; body closed %v", resp, err, body.closed.Load())
	}
	if _, err := Refuse(&http.Request{}, want); err != want {
		t.Error("Refuse without a body")
	}
}

func TestInboundToken(t *testing.T) {
	t.Parallel()
	if tok := InboundToken(context.Background()); tok != "" {
		t.Errorf("no identity: %q", tok)
	}
	ctx := authn.NewContext(context.Background(), (&authn.TokenInfo{Subject: "u"}).WithToken("raw"))
	if tok := InboundToken(ctx); tok != "raw" {
		t.Errorf("InboundToken = %q", tok)
	}
}

// Issue 7 item 13: an error wrapped again by its own package names the
// prefix once; errors.Is still sees the wrapped error.
func TestWrapDoesNotDoublePrefix(t *testing.T) {
	t.Parallel()
	inner := errors.New("credentials: empty secret")
	err := Wrap("credentials", "secret source", inner)
	if got, want := err.Error(), "credentials: secret source: empty secret"; got != want {
		t.Errorf("Wrap = %q, want %q", got, want)
	}
	if !errors.Is(err, inner) {
		t.Error("Wrap hides the wrapped error")
	}
	if got := Wrap("credentials", "secret source", errors.New("vault: sealed")).Error(); got != "credentials: secret source: vault: sealed" {
		t.Errorf("foreign error: %q", got)
	}
}
