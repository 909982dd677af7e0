package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"time"

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
	defaultLeeway           = 60 * time.Second
	maxLeeway               = 5 * time.Minute
	defaultMaxTokenSize     = 16 << 10
	defaultRefreshInterval  = 5 * time.Minute
	defaultMaxStaleness     = 24 * time.Hour
	defaultKeyCacheMinTTL   = time.Minute
	defaultKeyCacheMaxTTL   = time.Hour
	defaultFetchTimeout     = 10 * time.Second
	defaultTokenCacheSize   = 10000
	defaultTokenCacheMaxTTL = 5 * time.Minute
)

// Verifier verifies access tokens of one issuer: JWTs against the issuer's
// JWKS (or Config.KeySet) and, when configured, opaque tokens by RFC 7662
// introspection.
//
// NewVerifier does not contact the issuer: discovery and the first key fetch
// happen on the first Verify and are retried, so a server may start before
// its identity provider (requests meanwhile fail with ErrUnavailable). Call
// [Verifier.Ready] at start to fetch them at once instead, so that a
// mistyped issuer fails at deploy time.
//
// A Verifier is safe for concurrent use. Call Close when done with it to
// stop background refreshes.
type Verifier struct {
	cfg Config

	allowed          map[string]bool
	leeway           time.Duration
	maxTokenSize     int
	tokenCacheMaxTTL time.Duration
	log              *slog.Logger
	now              func() time.Time

	md      *metadataSource // the issuer's discovery document, fetched once
	keys    keyProvider     // *jwksSource, *StaticKeySet or customKeys
	cache   *tokenCache     // nil when disabled
	headers headerCache     // checked JWS headers of verified tokens
	intro   *introspector   // nil without Config.Introspection

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
		if cfg.KeySet != nil {
			return nil, errors.New("authn: Config.JWKSURL and Config.KeySet are both set; keep one")
		}
		if err := checkFetchURL(cfg.JWKSURL); err != nil {
			return nil, fmt.Errorf("authn: Config.JWKSURL: %w", err)
		}
	}
	if cfg.KeySet != nil && isNilValue(cfg.KeySet) {
		return nil, errors.New("authn: Config.KeySet is a typed nil")
	}
	v := &Verifier{cfg: cfg}
	v.cfg.Audience = slices.Clone(cfg.Audience)
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
	js := jwksSettings{
		refreshInterval: orDefault(cfg.RefreshInterval, defaultRefreshInterval),
		maxStale:        orDefault(cfg.MaxStaleness, defaultMaxStaleness),
		minTTL:          orDefault(cfg.KeyCacheMinTTL, defaultKeyCacheMinTTL),
		maxTTL:          orDefault(cfg.KeyCacheMaxTTL, defaultKeyCacheMaxTTL),
		fetchTimeout:    orDefault(cfg.FetchTimeout, defaultFetchTimeout),
	}
	if js.maxTTL < js.minTTL {
		return nil, errors.New("authn: Config.KeyCacheMaxTTL is below KeyCacheMinTTL")
	}
	v.tokenCacheMaxTTL = orDefault(cfg.TokenCacheMaxTTL, defaultTokenCacheMaxTTL)
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"MaxTokenSize", time.Duration(v.maxTokenSize)}, {"RefreshInterval", js.refreshInterval},
		{"MaxStaleness", js.maxStale}, {"KeyCacheMinTTL", js.minTTL}, {"FetchTimeout", js.fetchTimeout},
		{"TokenCacheMaxTTL", v.tokenCacheMaxTTL}} {
		if d.d < 0 {
			return nil, fmt.Errorf("authn: Config.%s is negative", d.name)
		}
	}
	js.client = cfg.HTTPClient
	if js.client == nil {
		js.client = &http.Client{Timeout: js.fetchTimeout}
	}
	v.log = cfg.Logger
	if v.log == nil {
		v.log = slog.Default()
	}
	v.now = cfg.Now
	if v.now == nil {
		v.now = time.Now
	}
	if size := orDefault(cfg.TokenCacheSize, defaultTokenCacheSize); size > 0 {
		v.cache = newTokenCache(size)
	}
	v.life, v.close = context.WithCancel(context.Background())
	v.md = &metadataSource{issuer: cfg.Issuer, client: js.client, timeout: js.fetchTimeout, log: v.log, now: v.now}

	switch ks := cfg.KeySet.(type) {
	case nil:
		js.log, js.now, js.life = v.log, v.now, v.life
		js.obs = hooks{cfg.Observer, cfg.Issuer}
		js.url = v.md.jwksURL
		if cfg.JWKSURL != "" {
			js.url = func(context.Context) (string, error) { return cfg.JWKSURL, nil }
		}
		v.keys = &jwksSource{cfg: js}
	case *StaticKeySet:
		v.keys = ks
	default:
		v.keys = customKeys{ks}
	}

	if cfg.Introspection != nil {
		endpoint := v.md.introspectionEndpoint
		if u := cfg.Introspection.URL; u != "" {
			endpoint = func(context.Context) (string, error) { return u, nil }
		}
		in, err := newIntrospector(&v.cfg, endpoint)
		if err != nil {
			v.close()
			return nil, err
		}
		v.intro = in
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

// Audience returns a copy of the configured audiences (Config.Audience).
// middleware.Protect checks that the Protected Resource Metadata's
// resource is among them.
func (v *Verifier) Audience() []string { return slices.Clone(v.cfg.Audience) }

// Ready fetches now what verification needs from the issuer — its
// metadata when something is discovered, its JWKS (unless Config.KeySet is
// set), and the introspection endpoint when it is discovered — and returns
// the first failure, which names the issuer and the URLs tried. Call it at
// start so that a mistyped issuer or an unreachable identity provider fails
// the deployment instead of the first request. Ready is optional: without
// it, the same fetches happen on the first Verify.
func (v *Verifier) Ready(ctx context.Context) error {
	if err := v.keys.ready(ctx); err != nil {
		return &readyError{issuer: v.cfg.Issuer, err: err}
	}
	if v.intro != nil && v.cfg.Introspection.URL == "" {
		if _, err := v.md.introspectionEndpoint(ctx); err != nil {
			return &readyError{issuer: v.cfg.Issuer, err: err}
		}
	}
	return nil
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

// isNilValue reports whether x holds a nil pointer, map, func, channel or
// slice.
func isNilValue(x any) bool {
	switch rv := reflect.ValueOf(x); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}
