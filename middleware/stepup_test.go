package middleware_test

import (
	"net/http"
	"testing"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/middleware"
)

// stepUpAuthorizer answers as its ?case= query says: a step-up challenge, a
// 403 without insufficient_scope, or a 200 carrying a challenge header.
var stepUpAuthorizer = authorizerFunc(func(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("case") {
		case "stepup":
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", error_description="x", scope="notes:write", resource_metadata="https://mcp.example.com/m"`)
			w.WriteHeader(http.StatusForbidden)
		case "plain403":
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusForbidden)
		case "tricky":
			w.Header().Set("WWW-Authenticate", `Bearer scope="notes:write", error_description="needs scope=\"x\", really", error=insufficient_scope`)
			w.WriteHeader(http.StatusForbidden)
		case "ok":
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="notes:write"`)
			w.WriteHeader(http.StatusOK)
		default:
			next.ServeHTTP(w, r)
		}
	})
})

// TestProtectStepUpNamesAllScopes: an authorizer's 403 insufficient_scope
// challenge for the scope one tool needs also names the scopes
// authentication requires of the request (Authn.Scopes, Authn.ScopesFor), so
// a client that asks for exactly the challenged scopes gets a token that
// passes both; other responses, and requests with no required scope, are
// left alone.
func TestProtectStepUpNamesAllScopes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		authn authn.Options
		path  string
		want  string
	}{
		{"static", authn.Options{Scopes: []string{"mcp:tools"}}, "/mcp?case=stepup",
			`Bearer error="insufficient_scope", error_description="x", scope="mcp:tools notes:write", resource_metadata="https://mcp.example.com/m"`},
		{"per request", authn.Options{ScopesFor: toolsOnExtra}, "/mcp/extra?case=stepup",
			`Bearer error="insufficient_scope", error_description="x", scope="mcp:tools notes:write", resource_metadata="https://mcp.example.com/m"`},
		{"none required", authn.Options{ScopesFor: toolsOnExtra}, "/mcp?case=stepup",
			`Bearer error="insufficient_scope", error_description="x", scope="notes:write", resource_metadata="https://mcp.example.com/m"`},
		{"parameters in any order, quoted text left alone", authn.Options{Scopes: []string{"mcp:tools"}}, "/mcp?case=tricky",
			`Bearer scope="mcp:tools notes:write", error_description="needs scope=\"x\", really", error=insufficient_scope`},
		{"403 without insufficient_scope", authn.Options{Scopes: []string{"mcp:tools"}}, "/mcp?case=plain403",
			`Bearer error="invalid_token"`},
		{"not a 403", authn.Options{Scopes: []string{"mcp:tools"}}, "/mcp?case=ok",
			`Bearer error="insufficient_scope", scope="notes:write"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, false, func(c *middleware.Config) {
				c.Authn.Scopes, c.Authn.ScopesFor = tc.authn.Scopes, tc.authn.ScopesFor
				c.Authorizer = stepUpAuthorizer
			})
			r := f.do(t, "POST", tc.path, bearer(goodToken))
			if got := r.header.Get("WWW-Authenticate"); got != tc.want {
				t.Errorf("WWW-Authenticate = %s, want %s", got, tc.want)
			}
		})
	}
}

func toolsOnExtra(r *http.Request) []string {
	if r.URL.Path == "/mcp/extra" {
		return []string{"mcp:tools"}
	}
	return nil
}
