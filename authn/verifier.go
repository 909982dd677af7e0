package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/mcpauth-go/mcpauth/internal/discovery"
	"github.com/mcpauth-go/mcpauth/internal/netutil"
)

// asymmetricAlgs are the only JWS algorithms a Verifier can be configured
// with. HS* and "none" are absent on purpose: a resource server verifying
// with a shared secret could be fed tokens signed with a public key.
var asymmetricAlgs = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

const (
	defaultLeeway          = 60 * time.Second
	maxLeeway              = 5 * time.Minute
	defaultMaxTokenSize    = 16 << 10
	defaultRefreshInterval = 5 * time.Minute
	defaultMaxStaleness    = 24 * time.Hour
	defaultMinCacheTTL     = time.Minute
	defaultMaxCacheTTL     = time.Hour
	defaultFetchTimeout    = 10 * time.Second
	defaultCacheSize       = 10000
	defaultCacheMaxTTL     = 5 * time.Minute
)

// Verifier verifies access tokens of one issuer: JWTs against the issuer's
// JWKS and, when configured, opaque tokens by RFC 7662 introspection.
//
// NewVerifier does not contact the issuer: discovery and the first key fetch
// happen on the first Verify and are retried, so a server may start before
// its identity provider (requests meanwhile fail with ErrUnavailable).
//
// A Verifier is safe for concurrent use. Call Close when done with it to
// stop background refreshes.
type Verifier struct {
	cfg Config

	allowed         map[string]bool
	leeway          time.Duration
	maxTokenSize    int
	refreshInterval time.Duration
	maxStale        time.Duration
	minCacheTTL     time.Duration
	maxCacheTTL     time.Duration
	fetchTimeout    time.Duration
	cacheMaxTTL     time.Duration
	client          *http.Client
	log             *slog.Logger
	now             func() time.Time

	keys  keySource
	cache *tokenCache
	intro opaqueVerifier

	mdMu   sync.Mutex
	md     *discovery.Metadata
	mdErr  error     // the last discovery failure, answered again until mdFail+retryBackoff
	mdFail time.Time // when discovery last failed

	life  context.Context
	close context.CancelFunc
}

// NewVerifier validates cfg and returns a Verifier. It fails on a missing
// issuer or audience, a non-asymmetric algorithm, an out-of-range leeway, or
// a non-https URL (http is accepted only for loopback hosts).
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("authn: Config.Issuer is required")
	}
	if err := checkFetchURL(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("authn: Config.Issuer: %w", err)
	}
	if len(cfg.Audience) == 0 {
		return nil, errors.New("authn: Config.Audience is required (the canonical URI of this resource, RFC 8707)")
	}
	for _, a := range cfg.Audience {
		if a == "" {
			return nil, errors.New("authn: Config.Audience contains an empty value")
		}
	}
	if cfg.JWKSURL != "" {
		if err := checkFetchURL(cfg.JWKSURL); err != nil {
			return nil, fmt.Errorf("authn: Config.JWKSURL: %w", err)
		}
	}
	v := &Verifier{cfg: cfg}
	v.cfg.Audience = append([]string(nil), cfg.Audience...)
	v.allowed = make(map[string]bool, len(asymmetricAlgs))
	if cfg.Algorithms == nil {
		for a := range asymmetricAlgs {
			v.allowed[a] = true
		}
	} else {
		if len(cfg.Algorithms) == 0 {
			return nil, errors.New("authn: Config.Algorithms is empty; use nil for the default asymmetric set")
		}
		for _, a := range cfg.Algorithms {
			if !asymmetricAlgs[a] {
				return nil, fmt.Errorf("authn: algorithm %q is not allowed: only RS*, PS*, ES* and EdDSA can be enabled", a)
			}
			v.allowed[a] = true
		}
	}
	switch {
	case cfg.Leeway < 0:
		return nil, errors.New("authn: Config.Leeway is negative")
	case cfg.Leeway > maxLeeway:
		return nil, fmt.Errorf("authn: Config.Leeway %s exceeds the maximum of %s", cfg.Leeway, maxLeeway)
	case cfg.Leeway == 0:
		v.leeway = defaultLeeway
	default:
		v.leeway = cfg.Leeway
	}
	v.maxTokenSize = orDefault(cfg.MaxTokenSize, defaultMaxTokenSize)
	v.refreshInterval = orDefault(cfg.RefreshInterval, defaultRefreshInterval)
	v.maxStale = orDefault(cfg.MaxStaleness, defaultMaxStaleness)
	v.minCacheTTL = orDefault(cfg.MinCacheTTL, defaultMinCacheTTL)
	v.maxCacheTTL = orDefault(cfg.MaxCacheTTL, defaultMaxCacheTTL)
	if v.maxCacheTTL < v.minCacheTTL {
		return nil, errors.New("authn: Config.MaxCacheTTL is below MinCacheTTL")
	}
	v.fetchTimeout = orDefault(cfg.FetchTimeout, defaultFetchTimeout)
	v.cacheMaxTTL = orDefault(cfg.CacheMaxTTL, defaultCacheMaxTTL)
	for name, d := range map[string]time.Duration{"MaxTokenSize": time.Duration(v.maxTokenSize), "RefreshInterval": v.refreshInterval,
		"MaxStaleness": v.maxStale, "MinCacheTTL": v.minCacheTTL, "FetchTimeout": v.fetchTimeout, "CacheMaxTTL": v.cacheMaxTTL} {
		if d < 0 {
			return nil, fmt.Errorf("authn: Config.%s is negative", name)
		}
	}
	v.client = cfg.HTTPClient
	if v.client == nil {
		v.client = &http.Client{Timeout: v.fetchTimeout}
	}
	v.log = cfg.Logger
	if v.log == nil {
		v.log = slog.Default()
	}
	v.now = cfg.Now
	if v.now == nil {
		v.now = time.Now
	}
	if size := orDefault(cfg.CacheSize, defaultCacheSize); size > 0 {
		v.cache = newTokenCache(size)
	}
	v.keys.v = v
	v.life, v.close = context.WithCancel(context.Background())
	if err := v.setupIntrospection(); err != nil {
		v.close()
		return nil, err
	}
	return v, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Close stops background key refreshes. Verify keeps working with the keys
// it has but no longer fetches new ones.
func (v *Verifier) Close() error {
	v.close()
	return nil
}

// Issuer returns the configured issuer.
func (v *Verifier) Issuer() string { return v.cfg.Issuer }

// introspectionEndpoint returns the configured or discovered RFC 7662
// endpoint.
func (v *Verifier) introspectionEndpoint(ctx context.Context) (string, error) {
	if v.cfg.Introspection.URL != "" {
		return v.cfg.Introspection.URL, nil
	}
	md, err := v.metadata(ctx)
	if err != nil {
		return "", unavailable("issuer discovery failed", err)
	}
	if md.IntrospectionEndpoint == "" {
		return "", unavailable("issuer metadata has no introspection_endpoint", nil)
	}
	if err := checkFetchURL(md.IntrospectionEndpoint); err != nil {
		return "", unavailable("discovered introspection_endpoint rejected", err)
	}
	return md.IntrospectionEndpoint, nil
}

// checkFetchURL accepts absolute https URLs, and http only for loopback
// hosts (local development and tests).
func checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	if u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute URL without fragment", raw)
	}
	if err := netutil.CheckHTTPS(u, false); err != nil {
		return fmt.Errorf("%q: %w", raw, err)
	}
	return nil
}

// opaqueVerifier verifies tokens that are not JWS (RFC 7662 introspection).
type opaqueVerifier interface {
	verify(ctx context.Context, token string) (*TokenInfo, error)
}
