package upstream

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcpauth-go/mcpauth/internal/netutil"
)

// Config configures a Server. Issuer, Resources and Upstreams are required;
// every other zero value is safe.
type Config struct {
	// Issuer is this authorization server's issuer identifier, compared
	// byte for byte by clients: an https URL (http only for a loopback
	// host), optionally with a path, without query, fragment or trailing
	// slash. Endpoints live under it (Issuer+"/authorize", "/token",
	// "/register", "/revoke", "/jwks", "/consent", "/callback"). Required.
	Issuer string

	// Resources is the allow-list of RFC 8707 resource indicators (the
	// canonical URIs of the MCP servers this server issues tokens for).
	// A request naming another resource gets invalid_target; a request
	// without one gets the first entry when there is exactly one,
	// invalid_target otherwise. Required.
	Resources []string

	// Upstreams are the identity providers users log in at. With several,
	// the user picks one on the consent page. Required.
	Upstreams []Provider

	// ScopesSupported is advertised in the metadata; a request may ask only
	// for these. If nil, any scope is accepted and none is advertised.
	ScopesSupported []string

	// DefaultScopes are granted when a request has no scope, and to a DCR
	// client that registered a narrower scope set. If nil, no scope.
	DefaultScopes []string

	// SigningKeys sign issued access tokens. The first is active; the
	// others are previous keys, still published in the JWKS so tokens they
	// signed verify until they expire. If nil, an ECDSA P-256 development
	// key is generated and a warning logged: tokens do not survive a
	// restart and replicas do not share it.
	SigningKeys []SigningKey

	// Store keeps clients, logins, codes, refresh tokens, upstream tokens
	// and consents. If nil, a new MemoryStore (single replica only). If it
	// implements [ReplayGuard], client assertion jtis are remembered in it,
	// so an assertion is accepted once across every replica; otherwise in
	// each Server's process only.
	Store Store

	// AccessTokenTTL is the lifetime of issued access tokens. If zero, 10
	// minutes.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the absolute lifetime of a refresh-token family
	// and of the upstream-token session it uses. If zero, 30 days.
	RefreshTokenTTL time.Duration
	// CodeTTL is the lifetime of an authorization code. If zero, 60 seconds
	// (at most 10 minutes, RFC 6749 §4.1.2).
	CodeTTL time.Duration
	// LoginTTL bounds the time from /authorize to the upstream callback. If
	// zero, 10 minutes.
	LoginTTL time.Duration
	// ConsentTTL is how long a user's approval of a client is remembered.
	// If zero, 30 days.
	ConsentTTL time.Duration
	// ClientTTL is how long a dynamically registered client is kept after
	// a user last completed a login through it (redeemed an authorization
	// code); each login extends it, never to less than the refresh-token
	// lifetime that login was given, so a client outlives the grants it
	// holds. If zero, forever (until the Store drops it).
	ClientTTL time.Duration
	// UnusedClientTTL is how long a dynamically registered client is kept
	// before any user has logged in through it. Registration is
	// unauthenticated (RFC 7591 open registration), so registrations
	// nobody uses expire rather than fill the Store; a client whose
	// registration expired gets an "unknown client" answer and registers
	// again. If zero, 24 hours; it must not be shorter than a first login
	// may take (LoginTTL + CodeTTL).
	UnusedClientTTL time.Duration
	// RegistrationLimit bounds dynamic registrations per minute in this
	// process (a token bucket holding one minute's worth): beyond it,
	// /register answers 429 Too Many Requests with Retry-After. With
	// UnusedClientTTL it bounds what anonymous callers can put in the
	// Store. A global limit lets one abuser delay other clients'
	// registrations (Client ID Metadata Document and static clients are
	// not affected): a deployment that limits Issuer+"/register" per
	// source in front of the server can raise it or turn it off. If zero,
	// 60; if negative, no limit.
	RegistrationLimit int

	// DisableDynamicRegistration turns off RFC 7591 registration (deprecated
	// in MCP 2026-07-28 in favour of Client ID Metadata Documents, still on
	// by default for older clients).
	DisableDynamicRegistration bool

	// DisableClientMetadataDocuments turns off Client ID Metadata Document
	// clients (https URL client_ids).
	DisableClientMetadataDocuments bool

	// ClientMetadata bounds how Client ID Metadata Documents are fetched.
	ClientMetadata ClientMetadataConfig

	// Clients are statically registered clients (their secrets, if any, as
	// SHA-256 hashes in Client.SecretHash). If nil, none.
	Clients []Client

	// ConsentPage, if non-nil, renders the consent page instead of the
	// built-in one. It must render a form that POSTs (from the issuer's
	// origin) the fields of ConsentRequest.Form to ConsentRequest.Action,
	// plus action=approve or action=deny and, when approving, upstream=<the
	// chosen UpstreamChoice.Name>. If nil, the built-in page.
	ConsentPage func(w http.ResponseWriter, r *http.Request, req ConsentRequest)

	// HTTPClient calls the upstream providers (discovery, token, userinfo,
	// keys). If nil, a client with a 10 second timeout.
	HTTPClient *http.Client

	// Logger receives warnings and failure causes, never a code, token,
	// verifier or secret. If nil, slog.Default().
	Logger *slog.Logger

	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// ProviderType says how an upstream identifies the user.
type ProviderType string

const (
	// OIDC is an OpenID Connect provider: endpoints from discovery, the
	// user from the ID token (signature, iss, aud, exp and nonce verified).
	OIDC ProviderType = "oidc"
	// OAuth2 is a plain OAuth 2.0 provider (GitHub): explicit endpoints,
	// the user id read from a userinfo endpoint with the access token.
	OAuth2 ProviderType = "oauth2"
)

// Provider is one upstream identity provider. Its String and LogValue never
// print the client secret.
type Provider struct {
	// Name identifies the provider in URLs and namespaces the subject of
	// issued tokens ("<name>:<upstream user id>"). Letters, digits, '-'
	// and '_' only. Required and unique.
	Name string
	// DisplayName is shown on the consent page. If empty, Name.
	DisplayName string
	// Type is OIDC or OAuth2. Required: nothing is guessed.
	Type ProviderType
	// Issuer is the OIDC issuer (discovery, ID token iss). Required for
	// OIDC, ignored for OAuth2.
	Issuer string
	// AuthURL and TokenURL are the provider's endpoints. Required for
	// OAuth2; for OIDC they override the discovered ones (rarely needed).
	AuthURL, TokenURL string
	// UserinfoURL returns the user as JSON when called with the access
	// token. Required for OAuth2.
	UserinfoURL string
	// UserIDField is the userinfo member holding the stable user id (a
	// string or a number). If empty, "id" for OAuth2 ("sub" for OIDC).
	UserIDField string
	// ClientID and ClientSecret are this server's credentials at the
	// provider. ClientID is required; ClientSecret may be empty for a
	// public client (PKCE only).
	ClientID, ClientSecret string
	// Scopes are requested upstream. If nil, "openid" for OIDC, none for
	// OAuth2. For OIDC "openid" is added when missing.
	Scopes []string
	// AuthParams are extra authorization request parameters (such as
	// access_type=offline for Google). If nil, none.
	AuthParams map[string]string
}

// String describes the provider without its secret.
func (p Provider) String() string {
	return fmt.Sprintf("upstream.Provider{Name:%q Type:%q Issuer:%q ClientID:%q ClientSecret:%s}",
		p.Name, p.Type, p.Issuer, p.ClientID, redact(p.ClientSecret))
}

// GoString is String.
func (p Provider) GoString() string { return p.String() }

// Format prints String for every verb.
func (p Provider) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(p.String())) }

// LogValue logs the provider without its secret.
func (p Provider) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", p.Name), slog.String("type", string(p.Type)),
		slog.String("issuer", p.Issuer), slog.String("client_id", p.ClientID))
}

// SigningKey is a private key that signs access tokens.
type SigningKey struct {
	// PEM is a PKCS #8, PKCS #1 (RSA) or SEC 1 (EC) private key in PEM
	// form: RSA (2048 bits or more, RS256), ECDSA P-256/P-384/P-521
	// (ES256/384/512) or Ed25519 (EdDSA). Either PEM or Signer.
	PEM []byte
	// Signer is the key itself (*rsa.PrivateKey, *ecdsa.PrivateKey,
	// ed25519.PrivateKey, or a crypto.Signer backed by one such as a KMS
	// key with one of those public keys). Either PEM or Signer.
	Signer crypto.Signer
	// PublishUntil, for a previous key, is when it leaves the JWKS. If
	// zero it stays as long as it is configured.
	PublishUntil time.Time
}

// String describes the key by its public algorithm only: the private key
// (PEM or Signer) is never printed.
func (k SigningKey) String() string {
	src := "none"
	switch {
	case k.Signer != nil:
		src = fmt.Sprintf("Signer(%T)", k.Signer.Public())
	case k.PEM != nil:
		src = "PEM"
	}
	return fmt.Sprintf("upstream.SigningKey{%s:%s PublishUntil:%s}", src, redacted, k.PublishUntil.Format(time.RFC3339))
}

// GoString is String.
func (k SigningKey) GoString() string { return k.String() }

// Format prints String for every verb, so no verb prints the private key.
func (k SigningKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue logs the key without its private part.
func (k SigningKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON encodes String: the private key never reaches JSON.
func (k SigningKey) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// ClientMetadataConfig bounds the fetch of Client ID Metadata Documents.
// The fetch is an SSRF risk (a client_id is any URL an attacker picks), so
// by default it reaches only public https addresses.
type ClientMetadataConfig struct {
	// AllowedNetworks are private, loopback or link-local networks that
	// may nevertheless be fetched (an in-cluster client). If nil, none.
	AllowedNetworks []netip.Prefix
	// RootCAs verifies the document server's certificate. If nil, the
	// system roots.
	RootCAs *x509.CertPool
	// MaxSize caps a document. If zero, 64 KiB.
	MaxSize int64
	// Timeout bounds one fetch. If zero, 5 seconds.
	Timeout time.Duration
	// MinCacheTTL and MaxCacheTTL bound how long a document is cached
	// (from its Cache-Control max-age). If zero, 1 minute and 24 hours.
	MinCacheTTL, MaxCacheTTL time.Duration
}

// ConsentRequest is what a custom consent page shows and posts back.
type ConsentRequest struct {
	// ClientID, ClientName and ClientURI identify the client (ClientName
	// and ClientURI as the client claimed them: untrusted).
	ClientID, ClientName, ClientURI string
	// RedirectHost is the host the authorization response will go to.
	RedirectHost string
	// RedirectURI is the full redirect URI (the page must show it).
	RedirectURI string
	// LoopbackRedirect is true when the redirect goes to this computer
	// (localhost or a loopback address), which any local program can
	// claim: the page should warn about it (MCP security considerations).
	LoopbackRedirect bool
	// Scopes are the requested scopes.
	Scopes []string
	// Resource is the MCP server the token will be for.
	Resource string
	// Upstreams are the providers the user may log in at (Name,
	// DisplayName and the Scopes requested there, which the page must
	// show); the form posts the chosen Name as "upstream".
	Upstreams []UpstreamChoice
	// NeedsConsent is false when the user already approved this client
	// and the page only asks which upstream to use.
	NeedsConsent bool
	// Action is the URL the form POSTs to.
	Action string
	// Form holds the hidden fields the form must post (login id and CSRF
	// token).
	Form map[string]string
}

// UpstreamChoice names one upstream on the consent page.
type UpstreamChoice struct {
	Name, DisplayName string
	// Scopes are the scopes requested at this provider: what signing in
	// lets the MCP server do with the user's account there. The page must
	// show them (MCP security best practices, consent UI). Nil if none.
	Scopes []string
}

func (c *Config) validate() error {
	if err := checkIssuer(c.Issuer); err != nil {
		return err
	}
	if len(c.Resources) == 0 {
		return fmt.Errorf("upstream: Config.Resources is required")
	}
	for _, r := range c.Resources {
		u, err := url.Parse(r)
		if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || strings.Contains(r, "#") {
			return fmt.Errorf("upstream: resource %q is not an absolute URI without a fragment", r)
		}
	}
	if len(c.Upstreams) == 0 {
		return fmt.Errorf("upstream: Config.Upstreams needs at least one provider")
	}
	seen := map[string]bool{}
	for i := range c.Upstreams {
		p := &c.Upstreams[i]
		if p.Name == "" || len(p.Name) > 64 || strings.IndexFunc(p.Name, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}) >= 0 {
			return fmt.Errorf("upstream: provider name %q must be 1-64 letters, digits, '-' or '_'", p.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("upstream: provider name %q is used twice", p.Name)
		}
		seen[p.Name] = true
		if p.ClientID == "" {
			return fmt.Errorf("upstream: provider %q: ClientID is required", p.Name)
		}
		switch p.Type {
		case OIDC:
			if err := checkURL(p.Issuer); err != nil {
				return fmt.Errorf("upstream: provider %q: Issuer: %w", p.Name, err)
			}
		case OAuth2:
			for _, u := range []string{p.AuthURL, p.TokenURL, p.UserinfoURL} {
				if err := checkURL(u); err != nil {
					return fmt.Errorf("upstream: provider %q: AuthURL, TokenURL and UserinfoURL are required: %w", p.Name, err)
				}
			}
		default:
			return fmt.Errorf("upstream: provider %q: Type must be %q or %q", p.Name, OIDC, OAuth2)
		}
	}
	for _, s := range append(slices.Clone(c.ScopesSupported), c.DefaultScopes...) {
		if !validScopeToken(s) {
			return fmt.Errorf("upstream: invalid scope %q", s)
		}
	}
	if c.ScopesSupported != nil {
		for _, s := range c.DefaultScopes {
			if !slices.Contains(c.ScopesSupported, s) {
				return fmt.Errorf("upstream: default scope %q is not in ScopesSupported", s)
			}
		}
	}
	if c.CodeTTL > 10*time.Minute {
		return fmt.Errorf("upstream: CodeTTL must not exceed 10 minutes")
	}
	if c.UnusedClientTTL > 0 {
		if need := orDur(c.LoginTTL, 10*time.Minute) + orDur(c.CodeTTL, time.Minute); c.UnusedClientTTL < need {
			return fmt.Errorf("upstream: UnusedClientTTL %v is shorter than a first login may take (LoginTTL + CodeTTL = %v): a new client would expire during it", c.UnusedClientTTL, need)
		}
	}
	for _, d := range []time.Duration{c.AccessTokenTTL, c.RefreshTokenTTL, c.CodeTTL, c.LoginTTL, c.ConsentTTL, c.ClientTTL, c.UnusedClientTTL} {
		if d < 0 {
			return fmt.Errorf("upstream: negative duration in Config")
		}
	}
	return nil
}

func orDur(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// checkIssuer enforces RFC 8414 §2: https (http only on loopback), no query
// or fragment; we also refuse a trailing slash so paths join predictably.
func checkIssuer(iss string) error {
	if err := checkURL(iss); err != nil {
		return fmt.Errorf("upstream: Issuer: %w", err)
	}
	u, _ := url.Parse(iss)
	if u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(iss, "?#") || strings.HasSuffix(iss, "/") {
		return fmt.Errorf("upstream: Issuer %q must have no query, fragment or trailing slash", iss)
	}
	return nil
}

// checkURL accepts an https URL, or http on a loopback host.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && netutil.IsLoopbackHost(u.Hostname()):
	default:
		return fmt.Errorf("%q must be https (http only on a loopback host)", s)
	}
	return nil
}

// validScopeToken is RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E.
func validScopeToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}
