package authn

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The MCP authorization specification: servers MUST account for scope
// hierarchies, where a broader scope implies narrower ones.
func TestMiddlewareScopeHierarchy(t *testing.T) {
	t.Parallel()
	v := VerifierFunc(func(ctx context.Context, tok string) (*TokenInfo, error) {
		// The token names the granted scope, with '.' for ':' (token68).
		return &TokenInfo{Subject: "alice", Scopes: []string{strings.ReplaceAll(tok, ".", ":")}}, nil
	})
	implies := func(granted, required string) bool {
		return strings.HasPrefix(required, granted+":") // "files" implies "files:read"
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, tc := range []struct {
		implies func(string, string) bool
		token   string
		want    int
	}{
		{nil, "files:read", 200},
		{nil, "files", 403}, // exact matching without a hierarchy
		{implies, "files", 200},
		{implies, "file", 403},
		{implies, "other", 403},
	} {
		h := Middleware(v, Options{Scopes: []string{"files:read"}, ScopeImplies: tc.implies})(ok)
		req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		req.Header.Set("Authorization", "Bearer "+strings.ReplaceAll(tc.token, ":", "."))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("granted %q, hierarchy %v: status %d, want %d", tc.token, tc.implies != nil, rec.Code, tc.want)
		}
	}
}

func TestMiddlewareTypedNilVerifierPanicsAtConstruction(t *testing.T) {
	t.Parallel()
	for name, v := range map[string]TokenVerifier{
		"*Verifier":      (*Verifier)(nil),
		"*MultiVerifier": (*MultiVerifier)(nil),
		"VerifierFunc":   VerifierFunc(nil),
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Middleware accepted a typed nil verifier", name)
				}
			}()
			Middleware(v, Options{})
		}()
	}
}
