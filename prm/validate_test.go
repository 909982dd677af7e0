package prm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/prm"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	base := func(mod func(*prm.Metadata)) prm.Metadata {
		md := prm.Metadata{
			Resource:             "https://mcp.example.com/mcp",
			AuthorizationServers: []string{"https://as.example.com"},
		}
		if mod != nil {
			mod(&md)
		}
		return md
	}
	tests := []struct {
		name    string
		md      prm.Metadata
		wantErr string // substring; "" means valid
	}{
		{"minimal", base(nil), ""},
		{"every member", fullMetadata(), ""},
		{"bare origin", base(func(m *prm.Metadata) { m.Resource = "https://mcp.example.com" }), ""},
		{"origin with slash", base(func(m *prm.Metadata) { m.Resource = "https://mcp.example.com/" }), ""},
		{"port", base(func(m *prm.Metadata) { m.Resource = "https://mcp.example.com:8443/mcp" }), ""},
		{"query allowed (RFC 9728 §1.2)", base(func(m *prm.Metadata) { m.Resource = "https://mcp.example.com/mcp?tenant=a" }), ""},
		{"percent-encoding", base(func(m *prm.Metadata) { m.Resource = "https://mcp.example.com/a%20b" }), ""},
		{"http on 127.0.0.1", base(func(m *prm.Metadata) { m.Resource = "http://127.0.0.1:8080/mcp" }), ""},
		{"http on 127.1.2.3", base(func(m *prm.Metadata) { m.Resource = "http://127.1.2.3/mcp" }), ""},
		{"http on ::1", base(func(m *prm.Metadata) { m.Resource = "http://[::1]:8080/mcp" }), ""},
		{"http on localhost", base(func(m *prm.Metadata) { m.Resource = "http://localhost:3000/mcp" }), ""},
		{"http AS on loopback", base(func(m *prm.Metadata) { m.AuthorizationServers = []string{"http://127.0.0.1:9000"} }), ""},
		{"AS with path", base(func(m *prm.Metadata) { m.AuthorizationServers = []string{"https://as.example.com/realms/x"} }), ""},
		{"body bearer method", base(func(m *prm.Metadata) { m.BearerMethodsSupported = []string{"header", "body"} }), ""},
		{"http documentation URL", base(func(m *prm.Metadata) { m.ResourceDocumentation = "http://docs.example.com" }), ""},

		{"resource missing", base(func(m *prm.Metadata) { m.Resource = "" }), "prm: resource: required"},
		{"resource http on public host", base(func(m *prm.Metadata) { m.Resource = "http://mcp.example.com/mcp" }), "http is allowed only on loopback hosts"},
		{"resource http on private IP", base(func(m *prm.Metadata) { m.Resource = "http://10.0.0.1/mcp" }), "http is allowed only on loopback hosts"},
		{"resource http on localhost-like host", base(func(m *prm.Metadata) { m.Resource = "http://localhost.evil.example/mcp" }), "http is allowed only on loopback hosts"},
		{"resource fragment", base(func(m *prm.Metadata) { m.Resource = "https://mcp.example.com/mcp#frag" }), "must not contain a fragment"},
		{"resource empty fragment", base(func(m *prm.Metadata) { m.Resource = "https://mcp.example.com/mcp#" }), "must not contain a fragment"},
		{"resource relative", base(func(m *prm.Metadata) { m.Resource = "/mcp" }), "must be an absolute URL"},
		{"resource no host", base(func(m *prm.Metadata) { m.Resource = "https:///mcp" }), "must be an absolute URL"},
		{"resource opaque", base(func(m *prm.Metadata) { m.Resource = "https:mcp.example.com" }), "must be an absolute URL"},
		{"resource urn", base(func(m *prm.Metadata) { m.Resource = "urn:example:mcp" }), "must be an absolute URL"},
		{"resource ftp", base(func(m *prm.Metadata) { m.Resource = "ftp://mcp.example.com/mcp" }), `scheme "ftp" is not https`},
		{"resource userinfo", base(func(m *prm.Metadata) { m.Resource = "https://user@mcp.example.com/mcp" }), "must not contain user information"},
		{"resource uppercase host", base(func(m *prm.Metadata) { m.Resource = "https://MCP.example.com/mcp" }), "must be lowercase"},
		{"resource uppercase scheme", base(func(m *prm.Metadata) { m.Resource = "HTTPS://mcp.example.com/mcp" }), "must be lowercase"},
		{"resource dot segment", base(func(m *prm.Metadata) { m.Resource = "https://mcp.example.com/a/../mcp" }), `".." segments`},
		{"resource single dot segment", base(func(m *prm.Metadata) { m.Resource = "https://mcp.example.com/./mcp" }), `"." segments`},
		{"resource space", base(func(m *prm.Metadata) { m.Resource = "https://mcp.example.com/a b" }), "not allowed in a URI"},
		{"resource newline", base(func(m *prm.Metadata) { m.Resource = "https://mcp.example.com/mcp\n" }), "not allowed in a URI"},
		{"resource non-ASCII", base(func(m *prm.Metadata) { m.Resource = "https://mcp.example.com/é" }), "not allowed in a URI"},
		{"resource empty port", base(func(m *prm.Metadata) { m.Resource = "https://mcp.example.com:/mcp" }), "empty port"},
		{"resource bad port", base(func(m *prm.Metadata) { m.Resource = "https://mcp.example.com:x/mcp" }), "not a URL"},

		{"no authorization servers", base(func(m *prm.Metadata) { m.AuthorizationServers = nil }), "authorization_servers: at least one"},
		{"AS http public", base(func(m *prm.Metadata) { m.AuthorizationServers = []string{"http://as.example.com"} }), "authorization_servers[0]"},
		{"AS query", base(func(m *prm.Metadata) { m.AuthorizationServers = []string{"https://as.example.com?x=1"} }), "must not contain a query"},
		{"AS empty query", base(func(m *prm.Metadata) { m.AuthorizationServers = []string{"https://as.example.com?"} }), "must not contain a query"},
		{"AS fragment", base(func(m *prm.Metadata) { m.AuthorizationServers = []string{"https://as.example.com#x"} }), "must not contain a fragment"},
		{"AS empty", base(func(m *prm.Metadata) { m.AuthorizationServers = []string{""} }), "authorization_servers[0]"},
		{"AS relative", base(func(m *prm.Metadata) { m.AuthorizationServers = []string{"as.example.com"} }), "must be an absolute URL"},
		{"AS duplicate", base(func(m *prm.Metadata) {
			m.AuthorizationServers = []string{"https://as.example.com", "https://as.example.com"}
		}), "authorization_servers[1]: duplicate"},
		{"AS second invalid", base(func(m *prm.Metadata) {
			m.AuthorizationServers = []string{"https://as.example.com", "javascript:alert(1)"}
		}), "authorization_servers[1]"},

		{"bearer query", base(func(m *prm.Metadata) { m.BearerMethodsSupported = []string{"header", "query"} }), `bearer_methods_supported[1]: "query" is not allowed: MCP forbids`},
		{"bearer unknown", base(func(m *prm.Metadata) { m.BearerMethodsSupported = []string{"cookie"} }), `unknown method "cookie"`},
		{"bearer case", base(func(m *prm.Metadata) { m.BearerMethodsSupported = []string{"Header"} }), `unknown method "Header"`},
		{"bearer duplicate", base(func(m *prm.Metadata) { m.BearerMethodsSupported = []string{"header", "header"} }), "duplicate"},

		{"scope with space", base(func(m *prm.Metadata) { m.ScopesSupported = []string{"a b"} }), "scopes_supported[0]"},
		{"scope with quote", base(func(m *prm.Metadata) { m.ScopesSupported = []string{`a"b`} }), "RFC 6749 §3.3"},
		{"scope with backslash", base(func(m *prm.Metadata) { m.ScopesSupported = []string{`a\b`} }), "RFC 6749 §3.3"},
		{"scope empty", base(func(m *prm.Metadata) { m.ScopesSupported = []string{""} }), "empty scope"},
		{"scope duplicate", base(func(m *prm.Metadata) { m.ScopesSupported = []string{"a", "a"} }), "scopes_supported[1]: duplicate"},

		{"jwks_uri http", base(func(m *prm.Metadata) { m.JWKSURI = "http://mcp.example.com/jwks" }), "jwks_uri"},
		{"jwks_uri relative", base(func(m *prm.Metadata) { m.JWKSURI = "/jwks" }), "jwks_uri"},
		{"resource signing none", base(func(m *prm.Metadata) { m.ResourceSigningAlgValuesSupported = []string{"ES256", "none"} }), `resource_signing_alg_values_supported[1]: "none"`},
		{"dpop none", base(func(m *prm.Metadata) { m.DPoPSigningAlgValuesSupported = []string{"none"} }), `dpop_signing_alg_values_supported[0]: "none"`},
		{"alg empty", base(func(m *prm.Metadata) { m.DPoPSigningAlgValuesSupported = []string{""} }), "empty value"},
		{"authz details empty", base(func(m *prm.Metadata) { m.AuthorizationDetailsTypesSupported = []string{""} }), "authorization_details_types_supported[0]: empty value"},
		{"documentation javascript", base(func(m *prm.Metadata) { m.ResourceDocumentation = "javascript:alert(1)" }), "resource_documentation"},
		{"policy relative", base(func(m *prm.Metadata) { m.ResourcePolicyURI = "privacy.html" }), "resource_policy_uri"},
		{"tos data URL", base(func(m *prm.Metadata) { m.ResourceTOSURI = "data:text/html,hi" }), "resource_tos_uri"},
		{"signed_metadata not JWS", base(func(m *prm.Metadata) { m.SignedMetadata = "not-a-jwt" }), "signed_metadata"},
		{"signed_metadata JSON serialization", base(func(m *prm.Metadata) { m.SignedMetadata = `{"payload":"x"}` }), "signed_metadata"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.md.Validate()
			_, herr := prm.NewHandler(tc.md)
			if tc.wantErr == "" {
				if err != nil || herr != nil {
					t.Fatalf("Validate = %v, NewHandler = %v; want nil", err, herr)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want error containing %q", tc.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "prm: ") || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate = %q, want prefix \"prm: \" and %q", err, tc.wantErr)
			}
			if !errors.Is(err, prm.ErrInvalidMetadata) {
				t.Errorf("errors.Is(%v, ErrInvalidMetadata) = false", err)
			}
			if herr == nil || herr.Error() != err.Error() {
				t.Errorf("NewHandler error = %v, want %v", herr, err)
			}
		})
	}
}

func TestValidateRedactsUserinfoPassword(t *testing.T) {
	t.Parallel()
	const canary = "s3cr3t-canary"
	for _, md := range []prm.Metadata{
		{Resource: "https://user:" + canary + "@mcp.example.com/mcp", AuthorizationServers: []string{"https://as.example.com"}},
		{Resource: "https://mcp.example.com/mcp", AuthorizationServers: []string{"https://user:" + canary + "@as.example.com"}},
		{Resource: "https://mcp.example.com/mcp", AuthorizationServers: []string{"https://as.example.com"}, JWKSURI: "https://u:" + canary + "@mcp.example.com/ j"},
	} {
		err := md.Validate()
		if err == nil {
			t.Fatalf("Validate(%+v) = nil", md.AuthorizationServers)
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("error reveals the password: %v", err)
		}
	}
}

func TestWellKnownPathAndMetadataURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		resource string
		path     string
		url      string
	}{
		{"https://mcp.example.com", "/.well-known/oauth-protected-resource", "https://mcp.example.com/.well-known/oauth-protected-resource"},
		{"https://mcp.example.com/", "/.well-known/oauth-protected-resource", "https://mcp.example.com/.well-known/oauth-protected-resource"},
		{"https://mcp.example.com/mcp", "/.well-known/oauth-protected-resource/mcp", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"},
		{"https://mcp.example.com/public/mcp", "/.well-known/oauth-protected-resource/public/mcp", "https://mcp.example.com/.well-known/oauth-protected-resource/public/mcp"},
		// A trailing slash on a longer path is part of the identifier and kept.
		{"https://mcp.example.com/mcp/", "/.well-known/oauth-protected-resource/mcp/", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp/"},
		{"https://mcp.example.com:8443/mcp", "/.well-known/oauth-protected-resource/mcp", "https://mcp.example.com:8443/.well-known/oauth-protected-resource/mcp"},
		// RFC 9728 §3: inserted between the host and the path and/or query.
		{"https://mcp.example.com/mcp?tenant=a", "/.well-known/oauth-protected-resource/mcp", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp?tenant=a"},
		{"https://mcp.example.com/?tenant=a", "/.well-known/oauth-protected-resource", "https://mcp.example.com/.well-known/oauth-protected-resource?tenant=a"},
		{"https://mcp.example.com?tenant=a", "/.well-known/oauth-protected-resource", "https://mcp.example.com/.well-known/oauth-protected-resource?tenant=a"},
		// Percent-encoding is preserved byte for byte, never decoded.
		{"https://mcp.example.com/a%2Fb", "/.well-known/oauth-protected-resource/a%2Fb", "https://mcp.example.com/.well-known/oauth-protected-resource/a%2Fb"},
		{"https://mcp.example.com/%7Euser", "/.well-known/oauth-protected-resource/%7Euser", "https://mcp.example.com/.well-known/oauth-protected-resource/%7Euser"},
		{"http://127.0.0.1:8080/mcp", "/.well-known/oauth-protected-resource/mcp", "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"},
		{"http://[::1]:8080", "/.well-known/oauth-protected-resource", "http://[::1]:8080/.well-known/oauth-protected-resource"},
	}
	for _, tc := range tests {
		t.Run(tc.resource, func(t *testing.T) {
			t.Parallel()
			p, err := prm.WellKnownPath(tc.resource)
			if err != nil || p != tc.path {
				t.Errorf("WellKnownPath = %q, %v; want %q", p, err, tc.path)
			}
			u, err := prm.MetadataURL(tc.resource)
			if err != nil || u != tc.url {
				t.Errorf("MetadataURL = %q, %v; want %q", u, err, tc.url)
			}
		})
	}
}

func TestWellKnownPathAndMetadataURLReject(t *testing.T) {
	t.Parallel()
	for _, resource := range []string{
		"", "mcp.example.com", "http://mcp.example.com/mcp", "https://mcp.example.com/mcp#x",
		"https://u:p@mcp.example.com/", "https://mcp.example.com/../x", "HTTPS://mcp.example.com",
	} {
		if p, err := prm.WellKnownPath(resource); err == nil || !errors.Is(err, prm.ErrInvalidMetadata) {
			t.Errorf("WellKnownPath(%q) = %q, %v; want ErrInvalidMetadata", resource, p, err)
		}
		if u, err := prm.MetadataURL(resource); err == nil || !errors.Is(err, prm.ErrInvalidMetadata) {
			t.Errorf("MetadataURL(%q) = %q, %v; want ErrInvalidMetadata", resource, u, err)
		}
	}
}
