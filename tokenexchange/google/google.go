// Package google holds the preset of the tokenexchange package for Google
// Cloud's Security Token Service (workload identity federation), kept apart
// as golang.org/x/oauth2 keeps provider endpoints in sub-packages.
//
// The STS speaks RFC 8693 token exchange: it takes a JWT (or OIDC ID token,
// or SAML assertion) that a workload identity pool provider trusts and
// returns a federated Google access token. Impersonating a service account
// is a second call, to the IAM Credentials API, outside this package.
package google

import "github.com/mcpauth-go/mcpauth/tokenexchange"

// STSTokenURL is Google's Security Token Service endpoint.
const STSTokenURL = "https://sts.googleapis.com/v1/token"

// CloudPlatformScope is the scope STS uses when STSConfig.Scopes is empty.
const CloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"

// STSConfig names a Google Cloud workload identity pool provider.
type STSConfig struct {
	ProjectNumber string // numeric project number (not the project ID)
	PoolID        string // workload identity pool ID
	ProviderID    string // provider ID within the pool
	// SubjectTokenType is tokenexchange.TokenTypeJWT when empty, or
	// TokenTypeIDToken for an OIDC provider (TokenTypeSAML2 for a SAML
	// provider).
	SubjectTokenType string
	// Scopes are requested for the federated token. Empty means
	// CloudPlatformScope; Google requires at least one when exchanging an
	// external credential.
	Scopes []string
}

// STS returns a tokenexchange.Config for Google Cloud's Security Token
// Service: token endpoint STSTokenURL, audience
// //iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>,
// requested token type access_token, subject token type jwt (or the one
// given), scope cloud-platform by default, and no client credentials
// (Google's STS must not receive an Authorization header). The inbound
// token must be a JWT the pool's provider trusts (its issuer and audience
// configured on the provider). Set further fields (Logger, HTTPClient,
// SubjectTokenSource, Hosts, …) on the result before passing it to
// tokenexchange.NewTransport. The token returned is a federated access
// token.
func STS(g STSConfig) tokenexchange.Config {
	stt := g.SubjectTokenType
	if stt == "" {
		stt = tokenexchange.TokenTypeJWT
	}
	scopes := g.Scopes
	if len(scopes) == 0 {
		scopes = []string{CloudPlatformScope}
	}
	return tokenexchange.Config{
		TokenURL: STSTokenURL,
		Audience: "//iam.googleapis.com/projects/" + g.ProjectNumber +
			"/locations/global/workloadIdentityPools/" + g.PoolID + "/providers/" + g.ProviderID,
		Scopes:             append([]string(nil), scopes...),
		RequestedTokenType: tokenexchange.TokenTypeAccessToken,
		SubjectTokenType:   stt,
		SubjectTokenSource: tokenexchange.FromAuthn{TokenType: stt},
		AuthMethod:         tokenexchange.None,
	}
}
