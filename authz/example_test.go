package authz_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authz"
)

const examplePolicies = `
@id("engineers-read-only")
permit (principal in THVGroup::"engineering", action == Action::"call_tool", resource)
when { resource.name like "get_*" };

@id("admins-delete")
permit (principal in THVGroup::"admins", action == Action::"call_tool", resource == Tool::"delete_repo");

@id("no-etc")
forbid (principal, action == Action::"read_resource", resource)
when { resource.uri like "file:///etc/*" };
`

// The middleware sits behind authn's: here a stand-in puts the identity
// authn would have verified into the request context.
func ExampleAuthorizer_Middleware() {
	a, err := authz.New(authz.Config{Policies: examplePolicies})
	if err != nil {
		log.Fatal(err)
	}
	mcp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`)
	})
	alice := &authn.TokenInfo{Subject: "alice", Claims: map[string]any{"groups": []any{"engineering"}}}
	asAlice := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(authn.NewContext(r.Context(), alice)))
		})
	}
	h := asAlice(a.Middleware(mcp))

	for _, tool := range []string{"get_issue", "delete_repo"} {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `"}}`
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body)))
		fmt.Println(tool, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	// Output:
	// get_issue 200 {"jsonrpc":"2.0","id":1,"result":{"content":[]}}
	// delete_repo 403 {"jsonrpc":"2.0","id":1,"error":{"code":-32010,"message":"Forbidden"}}
}

// Authorize gives the decision, and the policies that made it, without HTTP.
func ExampleAuthorizer_Authorize() {
	a, err := authz.New(authz.Config{Policies: examplePolicies})
	if err != nil {
		log.Fatal(err)
	}
	ctx := authn.NewContext(context.Background(), &authn.TokenInfo{Subject: "bob", Claims: map[string]any{"roles": []any{"admins"}}})
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo"}}`,
		`{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///etc/passwd"}}`,
		`{"jsonrpc":"2.0","id":3,"method":"server/discover"}`,
	} {
		d, err := a.Authorize(ctx, []byte(body))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(d.Allowed, d.Reason, d.Policies)
	}
	// Output:
	// true permitted [admins-delete]
	// false forbidden [no-etc]
	// true protocol method []
}

// A policy error names the policy, its line and column.
func ExampleNew_policyError() {
	_, err := authz.New(authz.Config{Policies: "permit (principal, action, resource)\nwhen { context.x > };"})
	fmt.Println(err)
	// Output:
	// authz: policies: policy 0 (policy0 unless it has an @id), line 2, column 21: syntax error: invalid primary near ";"
}
