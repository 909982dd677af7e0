package interop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/mcpauth-go/mcpauth/internal/testport"
)

// Fixed credentials of the pre-registered clients of the server-under-test
// IdP. They exist only inside a test's IdP process.
const (
	ccClient     = "m2m"
	ccSecret     = "m2m-secret-0123456789abcdef"
	pkjwtClient  = "m2m-jwt"
	clientRedir  = "http://127.0.0.1:9/callback" // nothing listens: the code is read from the redirect
	scopeRead    = "tools:read"
	scopeCall    = "tools:call"
	scopeNotes   = "notes:write" // the scope examples/gosdk's write_note needs (step-up)
	serverScopes = scopeRead + " " + scopeCall + " " + scopeNotes
	adminUser    = "root" // in the "admins" group: sees and may call admin_reset
)

// sut is a running MCP server under test and the IdP it trusts.
type sut struct {
	resource string // canonical URI of the MCP endpoint, the audience of its tokens
	idp      *idp
	jwk      map[string]any // private JWK of the private_key_jwt client
}

// ecJWK returns a fresh P-256 key as a private JWK and its public half.
func ecJWK(t *testing.T) (private, public map[string]any) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	kid := rand.Text()
	public = map[string]any{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
		"x": b64(k.X.FillBytes(make([]byte, 32))), "y": b64(k.Y.FillBytes(make([]byte, 32)))}
	private = map[string]any{"d": b64(k.D.FillBytes(make([]byte, 32)))}
	for n, v := range public {
		private[n] = v
	}
	return private, public
}

// idpFor returns the IdP configuration for an MCP server at resource: JWT
// access tokens for it with serverScopes, the client_credentials and
// private_key_jwt clients, and adminUser and the client_credentials client
// in the "admins" group.
func idpFor(t *testing.T, s *sut) idpConfig {
	private, public := ecJWK(t)
	s.jwk = private
	return idpConfig{
		Resources: map[string]resourceServer{s.resource: {Scope: serverScopes}},
		Clients: []map[string]any{
			withScope(confidential(ccClient, ccSecret), serverScopes),
			{
				"client_id":                       pkjwtClient,
				"token_endpoint_auth_method":      "private_key_jwt",
				"token_endpoint_auth_signing_alg": "ES256",
				"jwks":                            map[string]any{"keys": []any{public}},
				"grant_types":                     []string{"client_credentials"},
				"response_types":                  []string{},
				"redirect_uris":                   []string{},
				"scope":                           serverScopes,
			},
		},
		Groups: map[string][]string{adminUser: {"admins"}, ccClient: {"admins"}},
	}
}

// startGoSDK runs examples/gosdk (authn + Cedar authz + list filtering +
// step-up) trusting a fresh oidc-provider, requiring scopeRead on every
// request, with extra flags (e.g. -stateless).
func startGoSDK(t *testing.T, flags ...string) *sut {
	t.Helper()
	var s *sut
	testport.Start(t, func(addr string) bool {
		s = &sut{resource: "http://" + addr + "/mcp"}
		s.idp = startIdP(t, idpFor(t, s))
		return startExample(t, "gosdk", s.resource, append([]string{
			"-issuer", s.idp.Issuer, "-resource", s.resource, "-addr", addr, "-scopes", scopeRead}, flags...)...)
	})
	return s
}

func withScope(c map[string]any, scope string) map[string]any {
	c["scope"] = scope
	return c
}
