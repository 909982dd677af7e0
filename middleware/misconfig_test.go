package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authz"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/prm"
)

func newTestVerifier(t *testing.T, issuer string, audience ...string) *authn.Verifier {
	t.Helper()
	v, err := authn.NewVerifier(authn.Config{Issuer: issuer, Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// TestProtectRejectsMisconfiguration: Protect fails at construction, naming
// both values and the fix, when the metadata's resource is not among the
// verifier's audiences or a verifier's issuer is not among the metadata's
// authorization_servers (issue 7 item 8). A custom verifier that exposes
// nothing is not checked.
func TestProtectRejectsMisconfiguration(t *testing.T) {
	t.Parallel()
	const as = "https://as.example.com"
	md := prm.Metadata{Resource: "https://mcp.example.com/mcp", AuthorizationServers: []string{as}}
	multi := func(t *testing.T, vs ...*authn.Verifier) authn.TokenVerifier {
		m := map[string]authn.TokenVerifier{}
		for _, v := range vs {
			m[v.Issuer()] = v
		}
		mv, err := authn.NewMultiVerifier(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		return mv
	}
	tests := []struct {
		name     string
		md       prm.Metadata
		verifier func(t *testing.T) authn.TokenVerifier
		want     []string // substrings of the error; nil for success
	}{
		{"agreeing", md, func(t *testing.T) authn.TokenVerifier { return newTestVerifier(t, as, md.Resource) }, nil},
		{"resource among several audiences, host case differs", md, func(t *testing.T) authn.TokenVerifier {
			return newTestVerifier(t, as, "https://other.example.com", "https://MCP.example.com/mcp")
		}, nil},
		{"resource not an audience", md, func(t *testing.T) authn.TokenVerifier {
			return newTestVerifier(t, as, "https://mcp.example.com/")
		}, []string{`metadata resource "https://mcp.example.com/mcp"`, `audiences ["https://mcp.example.com/"]`, `issuer "https://as.example.com"`, "authn.Config.Audience"}},
		{"issuer not listed (trailing slash)", md, func(t *testing.T) authn.TokenVerifier {
			return newTestVerifier(t, as+"/", md.Resource)
		}, []string{`issuer "https://as.example.com/"`, `authorization_servers ["https://as.example.com"]`, "Metadata.AuthorizationServers"}},
		{"multi: one issuer unlisted, one audience wrong", md, func(t *testing.T) authn.TokenVerifier {
			return multi(t, newTestVerifier(t, as, md.Resource), newTestVerifier(t, "https://b.example.com", "https://elsewhere/mcp"))
		}, []string{`issuer "https://b.example.com", which`, `audiences ["https://elsewhere/mcp"] the verifier for issuer "https://b.example.com"`}},
		{"multi: agreeing", prm.Metadata{Resource: md.Resource, AuthorizationServers: []string{as, "https://b.example.com"}}, func(t *testing.T) authn.TokenVerifier {
			return multi(t, newTestVerifier(t, as, md.Resource), newTestVerifier(t, "https://b.example.com", md.Resource))
		}, nil},
		{"custom verifier exposes nothing", md, func(t *testing.T) authn.TokenVerifier {
			return authn.VerifierFunc(func(context.Context, string) (*authn.TokenInfo, error) { return nil, authn.ErrInvalidToken })
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := middleware.Protect(http.NotFoundHandler(), middleware.Config{Metadata: tc.md, Verifier: tc.verifier(t)})
			if tc.want == nil {
				if err != nil || h == nil {
					t.Fatalf("Protect: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, middleware.ErrMisconfigured) {
				t.Fatalf("err = %v, want ErrMisconfigured", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "middleware: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// With several trusted issuers, an authorizer that does not list them would
// trust only the first issuer seen (or deny an unlisted one's callers
// outright): Protect refuses both at construction.
func TestProtectRejectsAuthorizerIssuerMismatch(t *testing.T) {
	t.Parallel()
	const a, b = "https://a.example.com", "https://b.example.com"
	md := prm.Metadata{Resource: "https://mcp.example.com/mcp", AuthorizationServers: []string{a, b}}
	mv, err := authn.NewMultiVerifier(map[string]authn.TokenVerifier{
		a: newTestVerifier(t, a, md.Resource), b: newTestVerifier(t, b, md.Resource),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := `permit (principal, action, resource);`
	for name, tc := range map[string]struct {
		issuers []string
		want    string // "" for success
	}{
		"none listed":  {nil, "set authz.Config.Issuers"},
		"one missing":  {[]string{a}, `issuer "https://b.example.com", which authz.Config.Issuers ["https://a.example.com"] does not list`},
		"both listed":  {[]string{a, b}, ""},
		"extra listed": {[]string{a, b, "https://c.example.com"}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			az, err := authz.New(authz.Config{Policies: policy, Issuers: tc.issuers})
			if err != nil {
				t.Fatal(err)
			}
			_, err = middleware.Protect(http.NotFoundHandler(), middleware.Config{Metadata: md, Verifier: mv, Authorizer: az})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Protect: %v", err)
				}
				return
			}
			if !errors.Is(err, middleware.ErrMisconfigured) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrMisconfigured containing %q", err, tc.want)
			}
		})
	}
	// One issuer needs no list.
	az, err := authz.New(authz.Config{Policies: policy})
	if err != nil {
		t.Fatal(err)
	}
	one := prm.Metadata{Resource: md.Resource, AuthorizationServers: []string{a}}
	if _, err := middleware.Protect(http.NotFoundHandler(), middleware.Config{Metadata: one, Verifier: newTestVerifier(t, a, md.Resource), Authorizer: az}); err != nil {
		t.Fatalf("one issuer, no list: %v", err)
	}
}
