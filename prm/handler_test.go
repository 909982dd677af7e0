package prm_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/prm"
)

// serve starts a loopback server for h and returns its URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// do sends one request and returns the response with its body read.
func do(t *testing.T, method, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func newHandler(t *testing.T, md prm.Metadata) http.Handler {
	t.Helper()
	h, err := prm.NewHandler(md)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHandlerGET(t *testing.T) {
	t.Parallel()
	md := fullMetadata()
	url := serve(t, newHandler(t, md))

	resp, body := do(t, http.MethodGet, url+"/.well-known/oauth-protected-resource/mcp", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	want, _ := json.Marshal(md)
	if string(body) != string(want) {
		t.Errorf("body = %s\nwant %s", body, want)
	}
	for k, v := range map[string]string{
		"Content-Type":                "application/json",
		"Cache-Control":               prm.DefaultCacheControl,
		"Access-Control-Allow-Origin": "*",
		"X-Content-Type-Options":      "nosniff",
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if resp.ContentLength != int64(len(want)) {
		t.Errorf("Content-Length = %d, want %d", resp.ContentLength, len(want))
	}
	if etag := resp.Header.Get("ETag"); !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 10 {
		t.Errorf("ETag = %q, want a strong entity tag", etag)
	}
	var got prm.Metadata
	if err := json.Unmarshal(body, &got); err != nil || got.Resource != md.Resource {
		t.Errorf("decoded resource = %q, %v", got.Resource, err)
	}
}

func TestHandlerHEAD(t *testing.T) {
	t.Parallel()
	md := fullMetadata()
	url := serve(t, newHandler(t, md))
	want, _ := json.Marshal(md)

	resp, body := do(t, http.MethodHead, url, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if len(body) != 0 {
		t.Errorf("HEAD body = %q, want empty", body)
	}
	if resp.ContentLength != int64(len(want)) {
		t.Errorf("Content-Length = %d, want %d (same as GET)", resp.ContentLength, len(want))
	}
	if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("headers = %v", resp.Header)
	}
}

func TestHandlerPreflight(t *testing.T) {
	t.Parallel()
	url := serve(t, newHandler(t, fullMetadata()))
	resp, body := do(t, http.MethodOptions, url, map[string]string{
		"Origin":                         "https://app.example",
		"Access-Control-Request-Method":  "GET",
		"Access-Control-Request-Headers": "mcp-protocol-version",
	})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if len(body) != 0 {
		t.Errorf("body = %q", body)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin = %q", got)
	}
	if got := resp.Header.Get("Access-Control-Allow-Methods"); got != "GET, HEAD, OPTIONS" {
		t.Errorf("Access-Control-Allow-Methods = %q", got)
	}
	allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"mcp-protocol-version", "authorization"} {
		if !strings.Contains(allowed, h) {
			t.Errorf("Access-Control-Allow-Headers = %q, missing %s", allowed, h)
		}
	}
	if resp.Header.Get("Access-Control-Max-Age") == "" {
		t.Error("no Access-Control-Max-Age")
	}
}

func TestHandlerMethodNotAllowed(t *testing.T) {
	t.Parallel()
	url := serve(t, newHandler(t, fullMetadata()))
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, "PROPFIND"} {
		t.Run(m, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, m, url, nil)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("status = %d, want 405", resp.StatusCode)
			}
			if got := resp.Header.Get("Allow"); got != "GET, HEAD, OPTIONS" {
				t.Errorf("Allow = %q", got)
			}
			if strings.Contains(string(body), "resource") {
				t.Errorf("405 body leaks the document: %q", body)
			}
		})
	}
}

func TestHandlerConditionalGET(t *testing.T) {
	t.Parallel()
	url := serve(t, newHandler(t, fullMetadata()))
	resp, _ := do(t, http.MethodGet, url, nil)
	etag := resp.Header.Get("ETag")

	tests := []struct {
		name   string
		inm    string
		status int
	}{
		{"same tag", etag, http.StatusNotModified},
		{"weak form of same tag", "W/" + etag, http.StatusNotModified},
		{"in a list", `"other", ` + etag, http.StatusNotModified},
		{"star", "*", http.StatusNotModified},
		{"other tag", `"other"`, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, http.MethodGet, url, map[string]string{"If-None-Match": tc.inm})
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == http.StatusNotModified {
				if len(body) != 0 || resp.Header.Get("ETag") != etag || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
					t.Errorf("304: body %q, headers %v", body, resp.Header)
				}
			}
		})
	}
}

// The document never reflects the request: a spoofed Host or forwarding
// header must not change a byte of it (RFC 9728 §7.3 impersonation).
func TestHandlerIgnoresSpoofedHost(t *testing.T) {
	t.Parallel()
	url := serve(t, newHandler(t, fullMetadata()))
	_, want := do(t, http.MethodGet, url, nil)
	for _, hdr := range []map[string]string{
		{"Host": "evil.example"},
		{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http", "X-Forwarded-Prefix": "/evil"},
		{"Forwarded": `host=evil.example;proto=http`},
		{"Host": "evil.example:443", "X-Forwarded-Host": "evil.example", "X-Original-URL": "/evil"},
	} {
		resp, body := do(t, http.MethodGet, url, hdr)
		if resp.StatusCode != http.StatusOK || string(body) != string(want) {
			t.Errorf("with %v: status %d body %s\nwant %s", hdr, resp.StatusCode, body, want)
		}
		if strings.Contains(string(body), "evil") {
			t.Errorf("with %v: body reflects a request header: %s", hdr, body)
		}
	}
}

// NewHandler encodes once: later changes to the Metadata passed in are
// not served.
func TestHandlerPreEncoded(t *testing.T) {
	t.Parallel()
	md := fullMetadata()
	h := newHandler(t, md)
	want, _ := json.Marshal(md)
	md.AuthorizationServers[0] = "https://evil.example"
	md.Resource = "https://evil.example"
	url := serve(t, h)
	_, body := do(t, http.MethodGet, url, nil)
	if string(body) != string(want) {
		t.Errorf("body = %s\nwant %s", body, want)
	}
}

func TestHandlerOptions(t *testing.T) {
	t.Parallel()
	h, err := prm.NewHandlerWithOptions(fullMetadata(), prm.Options{CacheControl: "no-store"})
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := do(t, http.MethodGet, serve(t, h), nil)
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}

	for _, cc := range []string{"max-age=1\r\nSet-Cookie: x=y", "a\x00"} {
		if _, err := prm.NewHandlerWithOptions(fullMetadata(), prm.Options{CacheControl: cc}); err == nil {
			t.Errorf("CacheControl %q accepted", cc)
		}
	}
}

func TestNewHandlerExtraNotEncodable(t *testing.T) {
	t.Parallel()
	md := fullMetadata()
	md.Extra = map[string]any{"x": make(chan int)}
	if _, err := prm.NewHandler(md); err == nil || !strings.HasPrefix(err.Error(), "prm: ") {
		t.Errorf("NewHandler = %v, want a prm: error", err)
	}
}

func BenchmarkHandler(b *testing.B) {
	h, err := prm.NewHandler(fullMetadata())
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource/mcp", nil)
	w := &discardWriter{h: make(http.Header, 8)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
