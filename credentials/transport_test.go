package credentials

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mcpauth-go/mcpauth/authn"
)

// echoServer is a backend that answers every request with a JSON object of
// the header values it received, and counts requests.
type echoServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newEchoServer(t *testing.T) *echoServer {
	t.Helper()
	e := &echoServer{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(e.Close)
	return e
}

// do sends a GET through rt and returns the headers the backend received.
func do(t *testing.T, rt http.RoundTripper, req *http.Request) http.Header {
	t.Helper()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	defer resp.Body.Close()
	var h http.Header
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

func newReq(t *testing.T, ctx context.Context, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestTransportInjectsHeader(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	for _, tc := range []struct {
		name   string
		cfg    Config
		header string
		want   string
	}{
		{"bearer", Config{Secret: Literal("abc.DEF-123_~+/==")}, "Authorization", "Bearer abc.DEF-123_~+/=="},
		{"bearer explicit Authorization", Config{Scheme: Bearer, Header: "authorization", Secret: Literal("tok")}, "Authorization", "Bearer tok"},
		{"basic", Config{Scheme: Basic, Username: Literal("Aladdin"), Password: Literal("open sesame")}, "Authorization", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="}, // RFC 7617 §2 example
		{"basic utf-8 and colon in password", Config{Scheme: Basic, Username: Literal("test"), Password: Literal("123£:x")}, "Authorization",
			"Basic " + base64.StdEncoding.EncodeToString([]byte("test:123£:x"))},
		{"api key", Config{Scheme: Header, Header: "x-api-key", Secret: Literal(canary)}, "X-Api-Key", canary},
		{"custom scheme", Config{Scheme: Header, Header: "Authorization", Prefix: "Token ", Secret: Literal(canary)}, "Authorization", "Token " + canary},
		{"value with inner space", Config{Scheme: Header, Header: "X-Key", Secret: Literal("a b\tc")}, "X-Key", "a b\tc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr, err := NewTransport(tc.cfg, srv.Client().Transport)
			if err != nil {
				t.Fatal(err)
			}
			req := newReq(t, context.Background(), http.MethodGet, srv.URL, nil)
			req.Header.Set(tc.header, "caller-value") // replaced, not appended
			req.Header.Set("X-Other", "kept")
			got := do(t, tr, req)
			if v := got.Values(tc.header); len(v) != 1 || v[0] != tc.want {
				t.Errorf("backend got %s = %q, want [%q]", tc.header, v, tc.want)
			}
			if got.Get("X-Other") != "kept" {
				t.Errorf("other header lost: %v", got)
			}
			// The caller's request is untouched.
			if v := req.Header.Values(tc.header); len(v) != 1 || v[0] != "caller-value" {
				t.Errorf("caller's request modified: %s = %q", tc.header, v)
			}
		})
	}
}

func TestTransportDoesNotModifyCallersRequest(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	tr, err := NewTransport(Config{Secret: Literal("tok")}, srv.Client().Transport)
	if err != nil {
		t.Fatal(err)
	}
	req := newReq(t, context.Background(), http.MethodPost, srv.URL+"/p?q=1", strings.NewReader("body"))
	values := make([]string, 1, 4) // spare capacity: an append must not write into it
	values[0] = "a"
	req.Header["X-Multi"] = values
	before := req.Header.Clone()
	url := *req.URL
	// A later transport that appends to a header must not reach the caller's array.
	appender := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r.Header["X-Multi"] = append(r.Header["X-Multi"], "appended")
		return srv.Client().Transport.RoundTrip(r)
	})
	tr2, _ := NewTransport(Config{Secret: Literal("tok")}, appender)
	for _, rt := range []http.RoundTripper{tr, tr2} {
		req := req.Clone(req.Context())
		req.Header = before.Clone()
		req.Header["X-Multi"] = values
		req.Body = io.NopCloser(strings.NewReader("body"))
		got := do(t, rt, req)
		if got.Get("Authorization") != "Bearer tok" {
			t.Errorf("backend got %q", got.Get("Authorization"))
		}
		if len(req.Header) != len(before) || req.Header.Get("Authorization") != "" {
			t.Errorf("caller's headers modified: %v", req.Header)
		}
		if *req.URL != url {
			t.Errorf("caller's URL modified")
		}
	}
	if values[:2][1] != "" {
		t.Errorf("a downstream append wrote into the caller's header array: %q", values[:2])
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTransportNilBaseUsesDefaultTransport(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	tr, err := NewTransport(Config{Secret: Literal("tok")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := do(t, tr, newReq(t, context.Background(), http.MethodGet, srv.URL, nil))
	if got.Get("Authorization") != "Bearer tok" {
		t.Errorf("got %q", got.Get("Authorization"))
	}
	if srv.hits.Load() != 1 {
		t.Errorf("hits = %d", srv.hits.Load())
	}
}

func TestNewTransportRefuses(t *testing.T) {
	t.Parallel()
	src := Literal("x")
	cases := map[string]Config{
		"no source":                {},
		"bearer with username":     {Secret: src, Username: src},
		"bearer with other header": {Secret: src, Header: "X-API-Key"},
		"bearer with prefix":       {Secret: src, Prefix: "Token "},
		"basic without password":   {Scheme: Basic, Username: src},
		"basic without username":   {Scheme: Basic, Password: src},
		"basic with secret":        {Scheme: Basic, Username: src, Password: src, Secret: src},
		"basic with prefix":        {Scheme: Basic, Username: src, Password: src, Prefix: "x"},
		"header without name":      {Scheme: Header, Secret: src},
		"header without source":    {Scheme: Header, Header: "X-API-Key"},
		"header with username":     {Scheme: Header, Header: "X-API-Key", Secret: src, Password: src},
		"unknown scheme":           {Scheme: Scheme(42), Secret: src},
		"name with space":          {Scheme: Header, Header: "X API", Secret: src},
		"name with colon":          {Scheme: Header, Header: "X:API", Secret: src},
		"name with CRLF":           {Scheme: Header, Header: "X-API\r\nEvil", Secret: src},
		"name non-ASCII":           {Scheme: Header, Header: "X-Clé", Secret: src},
		"pseudo header":            {Scheme: Header, Header: ":authority", Secret: src},
		"prefix with CRLF":         {Scheme: Header, Header: "X-API-Key", Prefix: "a\r\nEvil: b", Secret: src},
		"prefix with NUL":          {Scheme: Header, Header: "X-API-Key", Prefix: "a\x00", Secret: src},
	}
	for _, h := range []string{"Connection", "keep-alive", "Proxy-Authenticate", "proxy-authorization",
		"Proxy-Connection", "TE", "Trailer", "transfer-encoding", "Upgrade", "Host", "content-length", "Cookie", "Set-Cookie"} {
		cases["refused "+h] = Config{Scheme: Header, Header: h, Secret: src}
	}
	for name, cfg := range cases {
		if tr, err := NewTransport(cfg, nil); err == nil || tr != nil {
			t.Errorf("%s: NewTransport = %v, %v; want an error", name, tr, err)
		}
	}
}

// closeRecorder is a request body that records whether it was closed.
type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

func TestTransportErrorsCloseBodyAndHideSecret(t *testing.T) {
	t.Parallel()
	srcErr := errors.New("vault unavailable")
	for _, tc := range []struct {
		name string
		cfg  Config
		is   error
	}{
		{"source error", Config{Secret: SourceFunc(func(context.Context) (Secret, error) { return Secret{}, srcErr })}, srcErr},
		{"username source error", Config{Scheme: Basic, Username: SourceFunc(func(context.Context) (Secret, error) { return Secret{}, srcErr }), Password: Literal(canary)}, srcErr},
		{"password source error", Config{Scheme: Basic, Username: Literal("u"), Password: SourceFunc(func(context.Context) (Secret, error) { return Secret{}, srcErr })}, srcErr},
		{"empty from func", Config{Secret: SourceFunc(func(context.Context) (Secret, error) { return Secret{}, nil })}, ErrEmptySecret},
		{"empty basic password", Config{Scheme: Basic, Username: Literal("u"), Password: SourceFunc(func(context.Context) (Secret, error) { return NewSecret(""), nil })}, ErrEmptySecret},
		{"bearer with space", Config{Secret: Literal(canary + " x")}, nil},
		{"bearer with CRLF", Config{Secret: Literal(canary + "\r\nX-Evil: 1")}, nil},
		{"bearer with = inside", Config{Secret: Literal("a=" + canary)}, nil},
		{"bearer non-ASCII", Config{Secret: Literal(canary + "é")}, nil},
		{"header with CRLF", Config{Scheme: Header, Header: "X-Key", Secret: Literal(canary + "\r\nX-Evil: 1")}, nil},
		{"header with LF", Config{Scheme: Header, Header: "X-Key", Secret: Literal(canary + "\n")}, nil},
		{"header with NUL", Config{Scheme: Header, Header: "X-Key", Secret: Literal(canary + "\x00")}, nil},
		{"header with DEL", Config{Scheme: Header, Header: "X-Key", Secret: Literal(canary + "\x7f")}, nil},
		{"header leading space", Config{Scheme: Header, Header: "X-Key", Secret: Literal(" " + canary)}, nil},
		{"header trailing tab", Config{Scheme: Header, Header: "X-Key", Secret: Literal(canary + "\t")}, nil},
		{"basic colon in user", Config{Scheme: Basic, Username: Literal(canary + ":x"), Password: Literal(canary)}, nil},
		{"basic CTL in password", Config{Scheme: Basic, Username: Literal("u"), Password: Literal(canary + "\n")}, nil},
		{"basic CTL in user", Config{Scheme: Basic, Username: Literal("u\x01"), Password: Literal(canary)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sent atomic.Bool
			base := roundTripFunc(func(*http.Request) (*http.Response, error) {
				sent.Store(true)
				return nil, errors.New("must not be called")
			})
			tr, err := NewTransport(tc.cfg, base)
			if err != nil {
				t.Fatal(err)
			}
			body := &closeRecorder{Reader: strings.NewReader("payload")}
			req := newReq(t, context.Background(), http.MethodPost, "http://127.0.0.1:1/", body)
			resp, err := tr.RoundTrip(req)
			if err == nil || resp != nil {
				t.Fatalf("RoundTrip = %v, %v; want an error", resp, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
			if !strings.HasPrefix(err.Error(), "credentials: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			assertNoCanary(t, "error", err.Error())
			assertNoCanary(t, "error %+v", fmt.Sprintf("%+v", err))
			if !body.closed.Load() {
				t.Error("request body not closed on error")
			}
			if sent.Load() {
				t.Error("request was sent")
			}
		})
	}
}

func TestTransportBaseErrorPassesThrough(t *testing.T) {
	t.Parallel()
	want := errors.New("dial failed")
	var gotBody io.ReadCloser
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		gotBody = r.Body
		_ = r.Body.Close() // the base owns the body, as the contract says
		return nil, want
	})
	tr, _ := NewTransport(Config{Secret: Literal("tok")}, base)
	body := &closeRecorder{Reader: strings.NewReader("x")}
	_, err := tr.RoundTrip(newReq(t, context.Background(), http.MethodPost, "http://127.0.0.1:1/", body))
	if !errors.Is(err, want) {
		t.Errorf("err = %v", err)
	}
	if gotBody != io.ReadCloser(body) || !body.closed.Load() {
		t.Error("base did not receive the caller's body")
	}
}

func TestTransportRotation(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	path := filepath.Join(t.TempDir(), "token")
	writeFile(t, path, "token-v1\n")
	tr, err := NewTransport(Config{Secret: FileWithOptions(path, FileOptions{CheckInterval: -1})}, srv.Client().Transport)
	if err != nil {
		t.Fatal(err)
	}
	get := func() string {
		return do(t, tr, newReq(t, context.Background(), http.MethodGet, srv.URL, nil)).Get("Authorization")
	}
	if got := get(); got != "Bearer token-v1" {
		t.Fatalf("got %q", got)
	}
	replaceFile(t, path, "token-v2\n")
	if got := get(); got != "Bearer token-v2" {
		t.Errorf("after rotation got %q", got)
	}
	// A rotated file whose value is invalid fails the request rather than
	// sending the stale or the broken value.
	replaceFile(t, path, "bad token\n")
	_, err = tr.RoundTrip(newReq(t, context.Background(), http.MethodGet, srv.URL, nil))
	if err == nil {
		t.Error("invalid rotated value: want an error")
	}
}

func TestTransportBasicRotation(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	writeFile(t, pw, "one")
	tr, err := NewTransport(Config{Scheme: Basic, Username: Literal("svc"),
		Password: FileWithOptions(pw, FileOptions{CheckInterval: -1})}, srv.Client().Transport)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"one", "two"} {
		replaceFile(t, pw, p)
		req := newReq(t, context.Background(), http.MethodGet, srv.URL, nil)
		got := do(t, tr, req)
		user, pass, ok := (&http.Request{Header: got}).BasicAuth()
		if !ok || user != "svc" || pass != p {
			t.Errorf("backend got %q:%q (%v), want svc:%s", user, pass, ok, p)
		}
	}
}

func TestTransportRefusesInboundTokenInOtherHeaders(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	tr, err := NewTransport(Config{Secret: Literal("static-backend-key")}, srv.Client().Transport)
	if err != nil {
		t.Fatal(err)
	}
	ctx := authn.NewContext(context.Background(), (&authn.TokenInfo{Subject: "u"}).WithToken("canary-token"))

	// A handler that copied the inbound Authorization header: it is replaced
	// by the static credential, so nothing leaks and the request is sent.
	req := newReq(t, ctx, http.MethodGet, srv.URL, nil)
	req.Header.Set("Authorization", "Bearer canary-token")
	got := do(t, tr, req)
	if got.Get("Authorization") != "Bearer static-backend-key" {
		t.Errorf("backend got %q", got.Get("Authorization"))
	}

	// The inbound token copied into another header: refused, not sent.
	before := srv.hits.Load()
	body := &closeRecorder{Reader: strings.NewReader("x")}
	req = newReq(t, ctx, http.MethodPost, srv.URL, body)
	req.Header.Set("X-Forwarded-Access-Token", "canary-token")
	_, err = tr.RoundTrip(req)
	if !errors.Is(err, ErrTokenPassthrough) {
		t.Fatalf("err = %v, want ErrTokenPassthrough", err)
	}
	if strings.Contains(err.Error(), "canary-token") {
		t.Errorf("error reveals the token: %v", err)
	}
	if srv.hits.Load() != before || !body.closed.Load() {
		t.Error("refused request was sent or its body left open")
	}
}

func TestTransportConcurrent(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	path := filepath.Join(t.TempDir(), "token")
	writeFile(t, path, "tok-0")
	tr, err := NewTransport(Config{Secret: FileWithOptions(path, FileOptions{CheckInterval: -1})}, srv.Client().Transport)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
				if err != nil {
					errs <- err
					return
				}
				req.Header.Set("X-N", fmt.Sprint(g, i))
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				var h http.Header
				err = json.NewDecoder(resp.Body).Decode(&h)
				resp.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				if a := h.Get("Authorization"); !strings.HasPrefix(a, "Bearer tok-") || h.Get("X-N") != fmt.Sprint(g, i) {
					errs <- fmt.Errorf("backend got Authorization %q X-N %q", a, h.Get("X-N"))
					return
				}
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		replaceFile(t, path, fmt.Sprintf("tok-%d", i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSchemeString(t *testing.T) {
	t.Parallel()
	for s, want := range map[Scheme]string{Bearer: "Bearer", Basic: "Basic", Header: "Header", Scheme(9): "Scheme(9)"} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(s), got, want)
		}
	}
}
