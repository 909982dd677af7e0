package credentials

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/authn"
)

// memTransport answers every request in memory with one shared response, so
// the benchmarks measure the injecting transport, not the network.
type memTransport struct{ resp *http.Response }

func (m memTransport) RoundTrip(*http.Request) (*http.Response, error) { return m.resp, nil }

func newMemTransport() memTransport {
	return memTransport{resp: &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(""))}}
}

// BenchmarkRoundTrip compares the bare in-memory base transport with the
// credential-injecting Transport (several sources and schemes) and the
// PassthroughGuard, in one run so ratios can be read directly.
func BenchmarkRoundTrip(b *testing.B) {
	base := newMemTransport()
	path := filepath.Join(b.TempDir(), "token")
	if err := writeFileB(path, "file-token\n"); err != nil {
		b.Fatal(err)
	}
	mk := func(cfg Config) http.RoundTripper {
		tr, err := NewTransport(cfg, base)
		if err != nil {
			b.Fatal(err)
		}
		return tr
	}
	plain := context.Background()
	withIdentity := authn.NewContext(plain, (&authn.TokenInfo{Subject: "u"}).WithToken("eyJhbGciOiJFUzI1NiJ9.inbound-token-of-typical-length.signature"))
	for _, bc := range []struct {
		name   string
		rt     http.RoundTripper
		ctx    context.Context
		cookie string // Cookie header, if any
	}{
		{"base", base, plain, ""},
		// What a hand-written injector typically does: req.Clone + Header.Set.
		{"naive-clone-set", roundTripFunc(func(r *http.Request) (*http.Response, error) {
			r2 := r.Clone(r.Context())
			r2.Header.Set("Authorization", "Bearer "+"backend-api-token")
			return base.RoundTrip(r2)
		}), plain, ""},
		{"bearer-literal", mk(Config{Secret: Literal("backend-api-token")}), plain, ""},
		{"bearer-file", mk(Config{Secret: File(path)}), plain, ""},
		{"api-key-header", mk(Config{Scheme: Header, Header: "X-API-Key", Secret: Literal("backend-api-key")}), plain, ""},
		{"basic", mk(Config{Scheme: Basic, Username: Literal("svc"), Password: Literal("backend-password")}), plain, ""},
		{"bearer-literal-with-identity", mk(Config{Secret: Literal("backend-api-token")}), withIdentity, ""},
		{"basic-with-identity", mk(Config{Scheme: Basic, Username: Literal("svc"), Password: Literal("backend-password")}), withIdentity, ""},
		{"guard-with-identity", NewPassthroughGuard(base), withIdentity, ""},
		{"guard-with-identity-cookie", NewPassthroughGuard(base), withIdentity, "theme=dark; session=3b1f5c0e; lang=en"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req, err := http.NewRequestWithContext(bc.ctx, http.MethodPost, "https://backend.internal/v1/tools?x=1", nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("User-Agent", "mcp-server/1.0")
			req.Header.Set("Mcp-Session-Id", "3b1f5c0e-session")
			if bc.cookie != "" {
				req.Header.Set("Cookie", bc.cookie)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRoundTripParallel measures the Transport under concurrent use
// (shared header cache, file source hot path).
func BenchmarkRoundTripParallel(b *testing.B) {
	path := filepath.Join(b.TempDir(), "token")
	if err := writeFileB(path, "file-token\n"); err != nil {
		b.Fatal(err)
	}
	tr, err := NewTransport(Config{Secret: File(path)}, newMemTransport())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest(http.MethodGet, "https://backend.internal/", nil)
		for pb.Next() {
			if _, err := tr.RoundTrip(req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkFileSourceHit(b *testing.B) {
	path := filepath.Join(b.TempDir(), "token")
	if err := writeFileB(path, "file-token\n"); err != nil {
		b.Fatal(err)
	}
	src := File(path)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := src.Secret(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func writeFileB(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}
