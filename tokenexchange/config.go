package tokenexchange

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
)

// Token type identifiers of RFC 8693 §3.
const (
	TokenTypeAccessToken  = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeRefreshToken = "urn:ietf:params:oauth:token-type:refresh_token"
	TokenTypeIDToken      = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT          = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeSAML2        = "urn:ietf:params:oauth:token-type:saml2"
)

// GrantType is the RFC 8693 grant_type value.
const GrantType = "urn:ietf:params:oauth:grant-type:token-exchange"

// Defaults used when the corresponding [Config] field is zero.
const (
	DefaultSkew      = 30 * time.Second
	DefaultCacheSize = 10000
	DefaultTimeout   = 30 * time.Second
	// MaxResponseSize caps a token endpoint response (1 MiB).
	MaxResponseSize = 1 << 20
)

// AuthMethod is how the transport authenticates to the token endpoint
// (RFC 6749 §2.3, RFC 7523 §2.2). The values are the registered
// token_endpoint_auth_method names.
type AuthMethod string

// Client authentication methods.
const (
	// ClientSecretBasic sends client_id and client_secret, form-encoded, in an
	// HTTP Basic Authorization header. The default when ClientSecret is set.
	ClientSecretBasic AuthMethod = "client_secret_basic"
	// ClientSecretPost sends client_id and client_secret in the form body.
	ClientSecretPost AuthMethod = "client_secret_post"
	// None is a public client: client_id (if set) in the form body, no
	// secret. The default when neither ClientSecret nor PrivateKey is set,
	// e.g. for Google STS.
	None AuthMethod = "none"
	// PrivateKeyJWT sends a client assertion JWT signed with
	// Config.PrivateKey (RFC 7523). The default when PrivateKey is set.
	PrivateKeyJWT AuthMethod = "private_key_jwt"
)

// SubjectTokenSource supplies the token to exchange for a request. The
// default, [FromAuthn], takes the verified inbound token from the request
// context; the upstream package supplies the user's upstream IdP token.
//
// SubjectToken returns the token, its RFC 8693 type (empty means
// Config.SubjectTokenType) and its expiry (zero if unknown); an entry made
// from it is never cached past that expiry. It returns an error matching
// [ErrNoIdentity] when ctx has no identity.
type SubjectTokenSource interface {
	SubjectToken(ctx context.Context) (token, tokenType string, expiry time.Time, err error)
}

// SubjectTokenFunc adapts a function to [SubjectTokenSource].
type SubjectTokenFunc func(ctx context.Context) (token, tokenType string, expiry time.Time, err error)

// SubjectToken calls f.
func (f SubjectTokenFunc) SubjectToken(ctx context.Context) (string, string, time.Time, error) {
	return f(ctx)
}

// FromAuthn is the default [SubjectTokenSource]: the raw bearer token of the
// identity stored in the context by authn's middleware ([authn.FromContext]),
// with its expiry. TokenType is the type reported; empty means
// Config.SubjectTokenType.
type FromAuthn struct {
	TokenType string
}

// SubjectToken returns the inbound token of the verified identity in ctx, or
// an error matching [ErrNoIdentity].
func (s FromAuthn) SubjectToken(ctx context.Context) (string, string, time.Time, error) {
	info, ok := authn.FromContext(ctx)
	if !ok || info.Token() == "" {
		return "", "", time.Time{}, ErrNoIdentity
	}
	return info.Token(), s.TokenType, info.Expiry, nil
}

// Config configures a [Transport]. Only TokenURL (or Issuer) is required; the
// zero value of every other field is a safe default.
//
// Config's String, GoString, Format and MarshalJSON never reveal
// ClientSecret or PrivateKey.
type Config struct {
	// TokenURL is the STS token endpoint. It must be https, or http on a
	// loopback address. If empty, it is discovered from Issuer (RFC 8414,
	// then OpenID Connect Discovery) on the first exchange.
	TokenURL string
	// Issuer is the STS issuer used to discover TokenURL when that is empty.
	Issuer string

	// ClientID identifies this MCP server to the STS. Required for every
	// AuthMethod except None.
	ClientID string
	// ClientSecret is the client secret for ClientSecretBasic and
	// ClientSecretPost. It is never printed, logged or marshalled.
	ClientSecret string
	// AuthMethod selects client authentication. If empty: PrivateKeyJWT when
	// PrivateKey is set, ClientSecretBasic when ClientSecret is set, else None.
	AuthMethod AuthMethod
	// PrivateKey signs client assertions for PrivateKeyJWT (RSA, ECDSA P-256,
	// P-384, P-521 or Ed25519).
	PrivateKey crypto.Signer
	// KeyID is the kid header of client assertions; empty omits it.
	KeyID string
	// SigningAlgorithm is the JWS alg of client assertions. If empty it
	// follows the key: RS256, ES256/ES384/ES512 or EdDSA. PS256, PS384, PS512,
	// RS384 and RS512 may be chosen for RSA keys.
	SigningAlgorithm string
	// AssertionAudience is the aud of client assertions. If empty, the token
	// endpoint URL is used (RFC 7523 §3).
	AssertionAudience string

	// Audience is the RFC 8693 audience parameter; empty omits it.
	Audience string
	// Resources are RFC 8693 / RFC 8707 resource parameters, sent in sorted
	// order.
	Resources []string
	// Scopes are requested in the scope parameter, sorted and space-separated.
	Scopes []string
	// RequestedTokenType is the requested_token_type. If empty,
	// TokenTypeAccessToken. The response's issued_token_type must equal it.
	RequestedTokenType string
	// SubjectTokenType is the subject_token_type when the
	// SubjectTokenSource reports none. If empty, TokenTypeAccessToken.
	SubjectTokenType string
	// SubjectTokenSource supplies the subject token. If nil, [FromAuthn]{}.
	SubjectTokenSource SubjectTokenSource
	// ActorToken, if set, supplies actor_token and actor_token_type
	// (delegation, RFC 8693 §1.1); it is part of the cache key. An empty token
	// omits both parameters.
	ActorToken func(ctx context.Context) (token, tokenType string, err error)

	// Header is the request header that carries the exchanged token. If
	// empty, "Authorization" with the value "Bearer <token>"; any other
	// header gets the bare token. Host and hop-by-hop headers are refused.
	Header string

	// Skew is subtracted from the issued token's expiry when deciding how
	// long to cache it. Zero means DefaultSkew; negative means none.
	Skew time.Duration
	// CacheSize bounds the number of cached tokens; the least recently used
	// entry is evicted first. Zero means DefaultCacheSize; negative disables
	// caching (every request exchanges).
	CacheSize int
	// Timeout bounds one STS call (which is shared by every request waiting
	// for it, so it does not follow any single request's context). Zero
	// means DefaultTimeout.
	Timeout time.Duration

	// HTTPClient sends token and discovery requests. If nil,
	// http.DefaultClient is used. Redirects are never followed, whatever
	// the client's CheckRedirect says.
	HTTPClient *http.Client
	// Logger receives one line per exchange and failure, never a token or
	// secret. If nil, nothing is logged.
	Logger *slog.Logger
	// Now is the clock. If nil, time.Now.
	Now func() time.Time

	// InsecureAllowHTTP permits plain http to non-loopback hosts, both for
	// the token endpoint and for the backend requests that carry the
	// exchanged token (RFC 6750 §5.3 requires TLS; without this field such
	// requests fail before anything is sent). Secrets and tokens then cross
	// the network unencrypted: it MUST only be used inside a trusted network.
	InsecureAllowHTTP bool
}

func redacted(s string) string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

type configJSON struct {
	TokenURL           string   `json:"token_url,omitempty"`
	Issuer             string   `json:"issuer,omitempty"`
	ClientID           string   `json:"client_id,omitempty"`
	ClientSecret       string   `json:"client_secret,omitempty"`
	AuthMethod         string   `json:"auth_method,omitempty"`
	PrivateKey         string   `json:"private_key,omitempty"`
	KeyID              string   `json:"key_id,omitempty"`
	Audience           string   `json:"audience,omitempty"`
	Resources          []string `json:"resources,omitempty"`
	Scopes             []string `json:"scopes,omitempty"`
	RequestedTokenType string   `json:"requested_token_type,omitempty"`
	SubjectTokenType   string   `json:"subject_token_type,omitempty"`
	Header             string   `json:"header,omitempty"`
}

func (c Config) public() configJSON {
	j := configJSON{
		TokenURL: c.TokenURL, Issuer: c.Issuer, ClientID: c.ClientID,
		ClientSecret: redacted(c.ClientSecret), AuthMethod: string(c.AuthMethod),
		KeyID: c.KeyID, Audience: c.Audience, Resources: c.Resources, Scopes: c.Scopes,
		RequestedTokenType: c.RequestedTokenType, SubjectTokenType: c.SubjectTokenType, Header: c.Header,
	}
	if c.PrivateKey != nil {
		j.PrivateKey = "REDACTED"
	}
	return j
}

// String describes the configuration with ClientSecret and PrivateKey
// redacted.
func (c Config) String() string {
	j := c.public()
	return fmt.Sprintf("tokenexchange.Config{TokenURL:%q Issuer:%q ClientID:%q ClientSecret:%q AuthMethod:%q PrivateKey:%q KeyID:%q Audience:%q Resources:%q Scopes:%q RequestedTokenType:%q SubjectTokenType:%q Header:%q}",
		j.TokenURL, j.Issuer, j.ClientID, j.ClientSecret, j.AuthMethod, j.PrivateKey, j.KeyID, j.Audience, j.Resources, j.Scopes, j.RequestedTokenType, j.SubjectTokenType, j.Header)
}

// GoString is String, so %#v redacts too.
func (c Config) GoString() string { return c.String() }

// Format makes every fmt verb print String.
func (c Config) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, c.String()) }

// LogValue implements [slog.LogValuer] without secrets.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON encodes the configuration with secrets redacted.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.public()) }

// Token is an exchanged token. Treat it as read-only.
//
// Token's String, GoString, Format, LogValue and MarshalJSON never reveal
// AccessToken or RefreshToken.
type Token struct {
	AccessToken     string    // the issued token (RFC 8693 access_token, whatever its type)
	IssuedTokenType string    // issued_token_type
	TokenType       string    // token_type: "Bearer" or "N_A"
	Expiry          time.Time // from expires_in; zero if the STS sent none
	Scopes          []string  // scope of the response, if any
	RefreshToken    string    // refresh_token, if any (rarely issued by an STS)
}

type tokenJSON struct {
	AccessToken     string     `json:"access_token"`
	IssuedTokenType string     `json:"issued_token_type,omitempty"`
	TokenType       string     `json:"token_type,omitempty"`
	Expiry          *time.Time `json:"expiry,omitempty"`
	Scopes          []string   `json:"scopes,omitempty"`
	RefreshToken    string     `json:"refresh_token,omitempty"`
}

// String describes the token without revealing it.
func (t Token) String() string {
	exp := "none"
	if !t.Expiry.IsZero() {
		exp = t.Expiry.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("tokenexchange.Token{AccessToken:%s IssuedTokenType:%q TokenType:%q Expiry:%s Scopes:%q RefreshToken:%s}",
		redacted(t.AccessToken), t.IssuedTokenType, t.TokenType, exp, t.Scopes, redacted(t.RefreshToken))
}

// GoString is String.
func (t Token) GoString() string { return t.String() }

// Format makes every fmt verb print String.
func (t Token) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, t.String()) }

// LogValue implements [slog.LogValuer] without the token.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalJSON encodes the token's metadata with the token values redacted.
func (t Token) MarshalJSON() ([]byte, error) {
	j := tokenJSON{AccessToken: redacted(t.AccessToken), IssuedTokenType: t.IssuedTokenType, TokenType: t.TokenType,
		Scopes: t.Scopes, RefreshToken: redacted(t.RefreshToken)}
	if !t.Expiry.IsZero() {
		j.Expiry = &t.Expiry
	}
	return json.Marshal(j)
}

// GoogleSTSConfig names a Google Cloud workload identity pool provider.
type GoogleSTSConfig struct {
	ProjectNumber string // numeric project number (not the project ID)
	PoolID        string // workload identity pool ID
	ProviderID    string // provider ID within the pool
	// SubjectTokenType is TokenTypeJWT (the default) or TokenTypeIDToken for
	// an OIDC provider (TokenTypeSAML2 for a SAML provider).
	SubjectTokenType string
	// Scopes default to https://www.googleapis.com/auth/cloud-platform;
	// Google requires at least one when exchanging an external credential.
	Scopes []string
}

// GoogleSTSTokenURL is Google's Security Token Service endpoint.
const GoogleSTSTokenURL = "https://sts.googleapis.com/v1/token"

// GoogleSTS returns a Config for Google Cloud's Security Token Service
// (workload identity federation): token endpoint GoogleSTSTokenURL, audience
// //iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>,
// requested token type access_token, subject token type jwt (or id_token),
// scope cloud-platform by default, and no client credentials (Google's STS
// must not receive an Authorization header). The inbound token must be a
// JWT the pool's provider trusts (its issuer and audience configured on the
// provider). Set further fields (Logger, HTTPClient, SubjectTokenSource, …)
// on the result. The token returned is a federated access token; impersonating
// a service account is a second call to the IAM Credentials API, outside this
// package.
func GoogleSTS(g GoogleSTSConfig) Config {
	stt := g.SubjectTokenType
	if stt == "" {
		stt = TokenTypeJWT
	}
	scopes := g.Scopes
	if len(scopes) == 0 {
		scopes = []string{"https://www.googleapis.com/auth/cloud-platform"}
	}
	return Config{
		TokenURL: GoogleSTSTokenURL,
		Audience: "//iam.googleapis.com/projects/" + g.ProjectNumber +
			"/locations/global/workloadIdentityPools/" + g.PoolID + "/providers/" + g.ProviderID,
		Scopes:             append([]string(nil), scopes...),
		RequestedTokenType: TokenTypeAccessToken,
		SubjectTokenType:   stt,
		SubjectTokenSource: FromAuthn{TokenType: stt},
		AuthMethod:         None,
	}
}
