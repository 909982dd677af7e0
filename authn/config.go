package authn

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/mcpauth-go/mcpauth/observe"
)

// Config configures a [Verifier] for one issuer. The zero value of every
// optional field is safe; Issuer and Audience are required.
type Config struct {
	// Issuer is the exact iss value tokens must carry (no normalization).
	// Required. When JWKSURL is empty the JWKS URL is discovered from this
	// issuer (RFC 8414, then OpenID Connect Discovery).
	Issuer string

	// Audience lists the canonical resource URIs of this server (RFC 8707).
	// A token's aud (string or array) must contain at least one. Required.
	Audience []string

	// JWKSURL is the issuer's JSON Web Key Set. If empty it is discovered
	// (unless KeySet is set).
	JWKSURL string

	// KeySet, if non-nil, supplies the signature verification keys instead
	// of the issuer's JWKS: nothing is discovered or fetched for keys (a
	// [StaticKeySet] for fixed keys, or the user's own key distribution).
	// JWKSURL must then be empty, and RefreshInterval, MaxStaleness and the
	// KeyCache TTLs do not apply. If nil, the JWKS is fetched.
	KeySet KeySet

	// Algorithms is the allow-list of JWS algorithms. If nil, RS256, RS384,
	// RS512, PS256, PS384, PS512, ES256, ES384, ES512 and EdDSA are allowed.
	// Symmetric algorithms (HS*) and "none" are refused by NewVerifier.
	Algorithms []string

	// Leeway is the clock skew allowed for exp, nbf and iat. If zero, 60s.
	// NewVerifier refuses more than 5 minutes or a negative value.
	Leeway time.Duration

	// StrictTyp requires the RFC 9068 header typ "at+jwt" (or
	// "application/at+jwt"). If false, "at+jwt", "JWT" and an absent typ are
	// accepted.
	StrictTyp bool

	// MaxTokenSize caps the bearer token length checked before any decoding.
	// If zero, 16 KiB.
	MaxTokenSize int

	// RefreshInterval is the minimum time between two JWKS fetches triggered
	// by an unknown kid. If zero, 5 minutes.
	RefreshInterval time.Duration

	// MaxStaleness bounds how long the last good key set keeps being used
	// while the JWKS endpoint cannot be reached, counted from its last
	// successful fetch. If zero, 24 hours.
	MaxStaleness time.Duration

	// KeyCacheMinTTL and KeyCacheMaxTTL bound how long a fetched JWKS is
	// used before a background refresh: the JWKS response's Cache-Control
	// max-age, clamped to [KeyCacheMinTTL, KeyCacheMaxTTL]. If zero,
	// 1 minute and 1 hour.
	KeyCacheMinTTL, KeyCacheMaxTTL time.Duration

	// FetchTimeout bounds each discovery, JWKS or introspection request.
	// If zero, 10 seconds.
	FetchTimeout time.Duration

	// TokenCacheSize is the number of verified tokens remembered so a
	// repeated token is answered without signature checks (and, separately,
	// the number of introspection results remembered). If zero, 10 000;
	// negative disables both caches.
	TokenCacheSize int

	// TokenCacheMaxTTL caps how long a verified JWT stays in the token cache
	// (it never outlives its exp; introspection results have
	// IntrospectionConfig.CacheTTL). If zero, 5 minutes.
	TokenCacheMaxTTL time.Duration

	// Introspection, if non-nil, verifies tokens that are not JWS (opaque
	// tokens) with RFC 7662. It is never used for a JWS that failed
	// verification. If nil, opaque tokens are invalid.
	Introspection *IntrospectionConfig

	// HTTPClient is used for discovery, JWKS and introspection. If nil,
	// a client with FetchTimeout is used (over http.DefaultTransport).
	HTTPClient *http.Client

	// Logger receives the causes of rejected tokens and fetch failures,
	// never token material. If nil, slog.Default() is used.
	Logger *slog.Logger

	// Now is the clock. If nil, time.Now.
	Now func() time.Time

	// Observer receives an event per verification, JWKS fetch and
	// introspection request (counts, durations and labels, never a token;
	// see package observe). A MultiVerifier routing to this Verifier
	// reports the tokens it refuses before routing to the same Observer.
	// If nil, nothing is reported.
	Observer *observe.Observer
}

// IntrospectionConfig configures RFC 7662 token introspection for opaque
// tokens.
type IntrospectionConfig struct {
	// URL is the introspection endpoint. If empty, it is discovered from the
	// issuer metadata (introspection_endpoint).
	URL string

	// ClientID and ClientSecret authenticate this resource server to the
	// introspection endpoint with HTTP Basic (client_secret_basic). If
	// ClientSecret is empty, ClientID is sent in the body as a public client.
	ClientID     string
	ClientSecret string

	// AuthStyle, if non-nil, authenticates the request instead
	// (for example to add a bearer token or private_key_jwt). It may modify
	// the request's headers and form.
	AuthStyle func(req *http.Request) error

	// CacheTTL caps how long an active result is cached (never past exp).
	// If zero, 1 minute.
	CacheTTL time.Duration

	// NegativeCacheTTL is how long an inactive result is cached. If zero,
	// 10 seconds; negative disables negative caching.
	NegativeCacheTTL time.Duration

	// MaxResponseSize caps the response body. If zero, 1 MiB.
	MaxResponseSize int64
}
