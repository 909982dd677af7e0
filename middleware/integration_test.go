package middleware_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/authz"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/prm"
)

// *authz.Authorizer is the Authorizer Protect is designed for.
var _ middleware.Authorizer = (*authz.Authorizer)(nil)

// TestProtectEndToEnd wires the real pieces: a fake IdP with freshly
// generated keys, authn's JWT verifier, a Cedar authorizer and Protect.
func TestProtectEndToEnd(t *testing.T) {
	t.Parallel()
	const res = "http://127.0.0.1/mcp" // the identifier only; the server's real port does not matter
	idp := idptest.NewServer(t, idptest.Config{Audience: []string{res}})
	v, err := authn.NewVerifier(authn.Config{
		Issuer:     idp.Issuer(),
		Audience:   []string{res},
		HTTPClient: idp.Client(),
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	az, err := authz.New(authz.Config{
		Policies: `permit(principal, action == Action::"call_tool", resource == Tool::"echo");`,
	})
	if err != nil {
		t.Fatal(err)
	}

	var reached atomic.Int32
	mcp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		info, _ := authn.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"sub":"`+info.Subject+`"}}`)
	})
	h, err := middleware.Protect(mcp, middleware.Config{
		Metadata: prm.Metadata{
			Resource:             res,
			AuthorizationServers: []string{idp.Issuer()},
		},
		Verifier:   v,
		Authn:      authn.Options{Logger: slog.New(slog.DiscardHandler)},
		Authorizer: az,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	call := func(tool string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}`
	}
	good := idp.Token(map[string]any{"sub": "alice"})
	otherAud := idp.Token(map[string]any{"sub": "alice", "aud": "https://other.example"})

	tests := []struct {
		name      string
		method    string
		path      string
		token     string
		body      string
		status    int
		challenge string // substring of WWW-Authenticate; "" for none expected
		reaches   bool
	}{
		{"metadata is public", "GET", "/.well-known/oauth-protected-resource/mcp", "", "", http.StatusOK, "", false},
		{"no token", "POST", "/mcp", "", call("echo"), http.StatusUnauthorized,
			`resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource/mcp"`, false},
		{"permitted tool", "POST", "/mcp", good, call("echo"), http.StatusOK, "", true},
		{"denied tool", "POST", "/mcp", good, call("delete_everything"), http.StatusForbidden, "", false},
		{"wrong audience", "POST", "/mcp", otherAud, call("echo"), http.StatusUnauthorized, `error="invalid_token"`, false},
		{"root metadata path is not public", "GET", "/.well-known/oauth-protected-resource", "", "", http.StatusUnauthorized, "resource_metadata=", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := reached.Load()
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d (body %s)", resp.StatusCode, tc.status, body)
			}
			if wa := resp.Header.Get("WWW-Authenticate"); tc.challenge != "" && !strings.Contains(wa, tc.challenge) {
				t.Errorf("WWW-Authenticate = %q, want it to contain %s", wa, tc.challenge)
			}
			if got := reached.Load() > before; got != tc.reaches {
				t.Errorf("handler reached = %v, want %v", got, tc.reaches)
			}
			if tc.reaches && !strings.Contains(string(body), `"sub":"alice"`) {
				t.Errorf("handler saw body %s, want the verified subject alice", body)
			}
			if strings.Contains(string(body), good) || strings.Contains(resp.Header.Get("WWW-Authenticate"), good) {
				t.Error("response echoes the token")
			}
		})
	}
}
