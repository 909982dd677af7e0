package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/middleware"
)

// DNS-rebinding protection (MCP Streamable HTTP transport): a foreign
// Origin is refused with 403 before the token is even looked at.
func TestProtectChecksOrigin(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false, func(c *middleware.Config) {
		c.AllowedOrigins = []string{"http://localhost:6274"}
	})
	with := func(origin string) map[string]string {
		h := bearer(goodToken)
		if origin != "" {
			h["Origin"] = origin
		}
		return h
	}
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"", 200},                             // non-browser client
		{"https://mcp.example.com", 200},      // the resource's own origin
		{"HTTPS://MCP.EXAMPLE.COM", 200},      // scheme and host fold
		{"http://localhost:6274", 200},        // configured
		{"https://evil.example", 403},         // rebinding page
		{"http://localhost:6275", 403},        // other port
		{"http://mcp.example.com", 403},       // other scheme
		{"null", 403},                         // sandboxed or file:// page
		{"https://mcp.example.com.evil", 403}, // suffix trick
	} {
		before := f.verified.Load()
		got := f.do(t, http.MethodPost, "/mcp", with(tc.origin))
		if got.status != tc.want {
			t.Errorf("Origin %q: status %d, want %d", tc.origin, got.status, tc.want)
		}
		if tc.want == 403 {
			if f.verified.Load() != before {
				t.Errorf("Origin %q: the verifier ran before the origin check", tc.origin)
			}
			if !strings.Contains(got.body, `"jsonrpc":"2.0"`) || strings.Contains(got.body, `"id"`) {
				t.Errorf("Origin %q: body %q, want a JSON-RPC error without id", tc.origin, got.body)
			}
		}
	}
	// The metadata document stays public for every origin (it has CORS).
	if got := f.do(t, http.MethodGet, prmPath, map[string]string{"Origin": "https://evil.example"}); got.status != 200 {
		t.Fatalf("metadata with a foreign Origin: status %d", got.status)
	}
}

func TestCheckOriginTwoHeadersAndWildcard(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := middleware.CheckOrigin([]string{"https://a.example"})(ok)
	req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	req.Header.Add("Origin", "https://a.example")
	req.Header.Add("Origin", "https://evil.example")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("two Origin headers: %d, want 403", rec.Code)
	}
	rec = httptest.NewRecorder()
	req = httptest.NewRequest(http.MethodPost, "/mcp", nil)
	req.Header.Set("Origin", "null")
	middleware.CheckOrigin([]string{"*"})(ok).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("wildcard: %d, want 200", rec.Code)
	}
}

func TestOriginConfigErrors(t *testing.T) {
	t.Parallel()
	_, err := middleware.Protect(http.NotFoundHandler(), middleware.Config{
		Metadata: testMetadata, Verifier: nopVerifier(), AllowedOrigins: []string{"https://a.example/path"},
	})
	if err == nil || !strings.HasPrefix(err.Error(), "middleware: Config.AllowedOrigins") {
		t.Fatalf("err = %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("CheckOrigin accepted a malformed origin")
		}
	}()
	middleware.CheckOrigin([]string{"not an origin"})
}

func nopVerifier() authn.TokenVerifier {
	return authn.VerifierFunc(func(context.Context, string) (*authn.TokenInfo, error) { return nil, authn.ErrInvalidToken })
}
