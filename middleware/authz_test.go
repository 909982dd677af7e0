package middleware_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/authz"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/prm"
)

// TestProtectWiresAuthzResourceMetadata (issue 7 item 8): an authz 403
// step-up challenge behind Protect names the metadata document Protect
// serves, with no ResourceMetadataURL in authz.Config; one set there wins.
func TestProtectWiresAuthzResourceMetadata(t *testing.T) {
	t.Parallel()
	const res = "http://127.0.0.1/mcp"
	idp := idptest.NewServer(t, idptest.Config{Audience: []string{res}})
	v, err := authn.NewVerifier(authn.Config{
		Issuer: idp.Issuer(), Audience: []string{res}, HTTPClient: idp.Client(), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	mcp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	})
	for name, tc := range map[string]struct{ configured, want string }{
		"from Protect": {"", `resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource/mcp"`},
		"authz's own":  {"https://elsewhere.example/prm", `resource_metadata="https://elsewhere.example/prm"`},
	} {
		t.Run(name, func(t *testing.T) {
			az, err := authz.New(authz.Config{
				Policies:            `permit(principal, action == Action::"call_tool", resource == Tool::"deploy");`,
				ToolScopes:          map[string][]string{"deploy": {"deploy:write"}},
				ResourceMetadataURL: tc.configured,
			})
			if err != nil {
				t.Fatal(err)
			}
			h, err := middleware.Protect(mcp, middleware.Config{
				Metadata:   prm.Metadata{Resource: res, AuthorizationServers: []string{idp.Issuer()}},
				Verifier:   v,
				Authn:      authn.Options{Logger: slog.New(slog.DiscardHandler)},
				Authorizer: az,
			})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp",
				strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy"}}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+idp.Token(map[string]any{"sub": "alice", "scope": "mcp"}))
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			wa := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(wa, `error="insufficient_scope"`) {
				t.Fatalf("status %d, WWW-Authenticate %q: want a 403 step-up challenge", resp.StatusCode, wa)
			}
			if !strings.Contains(wa, tc.want) {
				t.Errorf("WWW-Authenticate = %q, want %s", wa, tc.want)
			}
		})
	}
}
