package tokenexchange

import (
	"cmp"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcpauth-go/mcpauth/internal/netutil"
	"github.com/mcpauth-go/mcpauth/internal/outbound"
	"github.com/mcpauth-go/mcpauth/observe"
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
	// header gets the bare token. Whatever the request already holds in it
	// is replaced. Hop-by-hop headers, Host, Content-Length, Content-Type,
	// Cookie and Set-Cookie are refused.
	Header string

	// Hosts, if not empty, lists the only backend hosts the exchanged token
	// may be sent to: "api.example.com" matches that host on any port,
	// "api.example.com:8443" that port only, case-insensitively; a request
	// to another host fails with [ErrDestinationNotAllowed] before any
	// exchange. Empty means any host, except on a redirect an http.Client
	// follows: then only the original host and its subdomains (the rule
	// net/http applies to Authorization).
	Hosts []string

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
	// Observer receives an event per token served from the cache and per
	// STS call (outcome and duration, never a token; see package observe).
	// If nil, nothing is reported.
	Observer *observe.Observer

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

// settings is a validated [Config] with its defaults applied: what a
// [Transport] runs on.
type settings struct {
	cfg                *Config // a pointer, so even a raw print of the struct shows no secret
	logger             *slog.Logger
	now                func() time.Time
	skew               time.Duration
	timeout            time.Duration
	cacheSize          int // <= 0: no cache
	authMethod         AuthMethod
	alg                string // JWS alg of client assertions (PrivateKeyJWT)
	requestedTokenType string
	subjectTokenType   string
	source             SubjectTokenSource
	bearer             bool // header value is "Bearer <token>"
	scopes, resources  []string
	guard              *outbound.Guard // destination, passthrough, owned header
}

// settings validates c and applies its defaults. Every error names the
// field at fault.
func (c Config) settings() (settings, error) {
	s := settings{cfg: &c, now: c.Now, logger: c.Logger}
	if c.TokenURL != "" {
		if err := checkEndpoint(c.TokenURL, c.InsecureAllowHTTP); err != nil {
			return s, fmt.Errorf("tokenexchange: TokenURL: %w", err)
		}
	} else if c.Issuer == "" {
		return s, errors.New("tokenexchange: TokenURL or Issuer is required")
	} else if err := checkEndpoint(c.Issuer, c.InsecureAllowHTTP); err != nil {
		return s, fmt.Errorf("tokenexchange: Issuer: %w", err)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Skew < 0:
		s.skew = 0
	case c.Skew == 0:
		s.skew = DefaultSkew
	default:
		s.skew = c.Skew
	}
	s.timeout = c.Timeout
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	s.cacheSize = c.CacheSize
	if s.cacheSize == 0 {
		s.cacheSize = DefaultCacheSize
	}

	// Client authentication.
	s.authMethod = c.AuthMethod
	if s.authMethod == "" {
		switch {
		case c.PrivateKey != nil:
			s.authMethod = PrivateKeyJWT
		case c.ClientSecret != "":
			s.authMethod = ClientSecretBasic
		default:
			s.authMethod = None
		}
	}
	switch s.authMethod {
	case ClientSecretBasic, ClientSecretPost:
		if c.ClientID == "" || c.ClientSecret == "" {
			return s, fmt.Errorf("tokenexchange: %s needs ClientID and ClientSecret", s.authMethod)
		}
	case None:
		if c.ClientSecret != "" || c.PrivateKey != nil {
			return s, errors.New("tokenexchange: AuthMethod none with a ClientSecret or PrivateKey set")
		}
	case PrivateKeyJWT:
		if c.ClientID == "" || c.PrivateKey == nil {
			return s, errors.New("tokenexchange: private_key_jwt needs ClientID and PrivateKey")
		}
		alg, err := signingAlg(c.PrivateKey, c.SigningAlgorithm)
		if err != nil {
			return s, err
		}
		s.alg = alg
	default:
		return s, fmt.Errorf("tokenexchange: unknown AuthMethod %q", c.AuthMethod)
	}

	s.requestedTokenType = cmp.Or(c.RequestedTokenType, TokenTypeAccessToken)
	s.subjectTokenType = cmp.Or(c.SubjectTokenType, TokenTypeAccessToken)
	s.source = c.SubjectTokenSource
	if s.source == nil {
		s.source = FromAuthn{}
	}

	g, err := outbound.New(outbound.Config{Prefix: "tokenexchange", Header: cmp.Or(c.Header, "Authorization"),
		Hosts: c.Hosts, InsecureAllowHTTP: c.InsecureAllowHTTP})
	if err != nil {
		return s, err
	}
	s.guard = g
	s.bearer = g.Header() == "Authorization"

	s.scopes = sortedCopy(c.Scopes)
	s.resources = sortedCopy(c.Resources)
	for _, sc := range s.scopes {
		if sc == "" || strings.ContainsAny(sc, " \t\r\n\"\\") {
			return s, fmt.Errorf("tokenexchange: invalid scope %q", sc)
		}
	}
	for _, r := range s.resources {
		// RFC 8707 §2: an absolute URI without a fragment.
		if u, err := url.Parse(r); err != nil || !u.IsAbs() || u.Fragment != "" {
			return s, fmt.Errorf("tokenexchange: resource %q is not an absolute URI without fragment", r)
		}
	}
	return s, nil
}

func sortedCopy(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	c := slices.Clone(s)
	slices.Sort(c)
	return slices.Compact(c)
}

// checkEndpoint requires an absolute http(s) URL without user info that
// passes the https-or-loopback rule ([netutil.CheckHTTPS]). The error has
// no package prefix: the caller names the field.
func checkEndpoint(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.User != nil {
		return errors.New("URL must not carry user info")
	}
	if err := netutil.CheckHTTPS(u, allowHTTP); err != nil {
		return fmt.Errorf("%q: %w (InsecureAllowHTTP allows plain http)", raw, err)
	}
	return nil
}
