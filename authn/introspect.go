package authn

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sync/singleflight"

	"github.com/mcpauth-go/mcpauth/internal/discovery"
	"github.com/mcpauth-go/mcpauth/internal/lru"
	"github.com/mcpauth-go/mcpauth/observe"
)

// Defaults for RFC 7662 introspection; leeway, fetch timeout and cache size
// default as for JWTs (verifier.go).
const (
	introDefaultCacheTTL    = time.Minute
	introDefaultNegativeTTL = 10 * time.Second
	introDefaultMaxResponse = 1 << 20
)

// introspector verifies opaque tokens with RFC 7662 token introspection.
// It is safe for concurrent use.
//
// Results are cached by the SHA-256 of the token (the token itself is never
// stored): an active token until min(exp, CacheTTL), an inactive or
// rejected one for NegativeCacheTTL. An outage is never cached. Concurrent
// requests for one token share one introspection call, and each waiter can
// give up on its own context.
type introspector struct {
	endpoint     func(ctx context.Context) (string, error)
	client       *http.Client
	now          func() time.Time
	log          *slog.Logger
	leeway       time.Duration
	fetchTimeout time.Duration
	issuer       string
	audience     []string

	clientID, clientSecret string
	authStyle              func(*http.Request) error
	ttl, negTTL            time.Duration
	maxResponse            int64

	flight singleflight.Group
	// joinedFlight, when set (by tests only), is called once a caller has
	// joined or started the flight for its token.
	joinedFlight func()
	cache        *lru.Cache[introResult] // nil when caching is disabled
	obs          *observe.Observer       // Config.Observer (observe.go)
}

// newIntrospector is called by NewVerifier when cfg.Introspection != nil.
// endpoint returns the configured or discovered introspection URL (it may
// return an error matching ErrUnavailable).
//
// The cache holds cfg.TokenCacheSize entries (10 000 if zero; a negative size
// disables caching, as it does for JWTs).
func newIntrospector(cfg *Config, endpoint func(ctx context.Context) (string, error)) (*introspector, error) {
	ic := cfg.Introspection
	if ic == nil {
		return nil, errors.New("authn: introspection is not configured")
	}
	if endpoint == nil {
		return nil, errors.New("authn: introspection endpoint source is nil")
	}
	if len(cfg.Audience) == 0 {
		return nil, errors.New("authn: introspection needs Config.Audience")
	}
	if ic.ClientSecret != "" && ic.ClientID == "" {
		return nil, errors.New("authn: introspection ClientSecret set without ClientID")
	}
	in := &introspector{
		endpoint:     endpoint,
		client:       cfg.HTTPClient,
		now:          cfg.Now,
		log:          cfg.Logger,
		leeway:       cfg.Leeway,
		fetchTimeout: cfg.FetchTimeout,
		issuer:       cfg.Issuer,
		audience:     append([]string(nil), cfg.Audience...),
		clientID:     ic.ClientID,
		clientSecret: ic.ClientSecret,
		authStyle:    ic.AuthStyle,
		ttl:          ic.CacheTTL,
		negTTL:       ic.NegativeCacheTTL,
		maxResponse:  ic.MaxResponseSize,
		obs:          cfg.Observer,
	}
	if in.client == nil {
		in.client = http.DefaultClient // bounded by fetchTimeout per request
	}
	if in.now == nil {
		in.now = time.Now
	}
	if in.log == nil {
		in.log = slog.Default()
	}
	if in.leeway == 0 {
		in.leeway = defaultLeeway
	}
	if in.fetchTimeout <= 0 {
		in.fetchTimeout = defaultFetchTimeout
	}
	if in.ttl <= 0 {
		in.ttl = introDefaultCacheTTL
	}
	if in.negTTL == 0 {
		in.negTTL = introDefaultNegativeTTL
	}
	if in.maxResponse <= 0 {
		in.maxResponse = introDefaultMaxResponse
	}
	size := cfg.TokenCacheSize
	if size == 0 {
		size = defaultTokenCacheSize
	}
	if size > 0 {
		in.cache = lru.New[introResult](size)
	}
	return in, nil
}

// introResult is one introspection outcome: info or a token error.
type introResult struct {
	info *TokenInfo // without the raw token
	err  error
}

// verify introspects token and returns its identity, or an error matching
// ErrInvalidToken (ErrExpired) or ErrUnavailable. Error messages never
// contain the token.
func (in *introspector) verify(ctx context.Context, token string) (*TokenInfo, error) {
	key := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token))) // read only
	if res, ok := in.lookup(key); ok {
		return res.withToken(token)
	}
	return in.miss(ctx, key, token)
}

// miss introspects a token not in the cache, sharing one call among all
// concurrent callers for the same token. (Separate from verify so that the
// closure's captures do not make the hit path allocate.)
func (in *introspector) miss(ctx context.Context, key [32]byte, token string) (*TokenInfo, error) {
	ch := in.flight.DoChan(string(key[:]), func() (any, error) {
		if res, ok := in.lookup(key); ok {
			return res, nil // filled by a flight that just finished
		}
		// The shared call must not die with whichever waiter started it:
		// it runs detached from that waiter's cancellation, bounded by
		// fetchTimeout, and every waiter selects on its own context.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.fetchTimeout)
		defer cancel()
		res := in.introspectObserved(fctx, token)
		in.store(key, res)
		return res, nil
	})
	if in.joinedFlight != nil {
		in.joinedFlight()
	}
	select {
	case r := <-ch:
		return r.Val.(introResult).withToken(token)
	case <-ctx.Done():
		return nil, unavailable("introspection abandoned", ctx.Err())
	}
}

func (r introResult) withToken(token string) (*TokenInfo, error) {
	if r.err != nil {
		return nil, r.err
	}
	return r.info.WithToken(token), nil
}

func (in *introspector) lookup(key [32]byte) (introResult, bool) {
	if in.cache == nil {
		return introResult{}, false
	}
	return in.cache.Get(key, in.now())
}

// store caches res: an active token until min(exp, ttl), a rejected one for
// negTTL, an outage never.
func (in *introspector) store(key [32]byte, res introResult) {
	if in.cache == nil {
		return
	}
	now := in.now()
	var until time.Time
	switch {
	case res.err == nil:
		until = now.Add(in.ttl)
		if exp := res.info.Expiry; !exp.IsZero() && exp.Before(until) {
			until = exp
		}
	case errors.Is(res.err, ErrUnavailable):
		return
	default:
		if in.negTTL < 0 {
			return
		}
		until = now.Add(in.negTTL)
	}
	if until.After(now) {
		in.cache.Put(key, res, until)
	}
}

// introspect makes one RFC 7662 request and interprets the response.
func (in *introspector) introspect(ctx context.Context, token string) introResult {
	endpoint, err := in.endpoint(ctx)
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			err = unavailable("introspection endpoint unknown", err)
		}
		return introResult{err: err}
	}
	resp, err := in.post(ctx, endpoint, token)
	if err != nil {
		in.log.LogAttrs(ctx, slog.LevelWarn, "authn: introspection request failed", slog.String("error", err.Error()))
		return introResult{err: err}
	}
	info, err := in.interpret(resp)
	return introResult{info: info, err: err}
}

// post sends the introspection request and returns the decoded JSON object.
func (in *introspector) post(ctx context.Context, endpoint, token string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return nil, unavailable("introspection request", err)
	}
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	// req.PostForm carries the form to AuthStyle (which may add, for
	// example, client_assertion); the client ignores it and sends Body,
	// which is encoded from it afterwards.
	req.PostForm = form
	switch {
	case in.authStyle != nil:
		if err := in.authStyle(req); err != nil {
			return nil, unavailable("introspection client authentication", err)
		}
	case in.clientSecret != "":
		// RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(in.clientID), url.QueryEscape(in.clientSecret))
	case in.clientID != "":
		form.Set("client_id", in.clientID)
	}
	body := req.PostForm.Encode()
	req.PostForm = nil
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")

	resp, err := in.client.Do(req)
	if err != nil {
		// *url.Error names the endpoint, never the form body.
		return nil, unavailable("introspection request", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, unavailable("introspection endpoint returned status "+strconv.Itoa(resp.StatusCode), nil)
	}
	raw, err := discovery.ReadLimited(resp.Body, in.maxResponse)
	if err != nil {
		return nil, unavailable("introspection response", err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, unavailable("introspection response is not a JSON object", nil)
	}
	return obj, nil
}

// interpret applies RFC 7662 §2.2 and this package's policy to a response.
// A response without a usable "active" member is a server fault
// (ErrUnavailable); everything else about the token is ErrInvalidToken.
func (in *introspector) interpret(obj map[string]any) (*TokenInfo, error) {
	active, ok := obj["active"].(bool)
	if !ok {
		return nil, unavailable("introspection response has no boolean active member", nil)
	}
	if !active {
		return nil, invalid("introspection: token is not active")
	}
	// RFC 7662 §2.2 token_type (RFC 6749 §7.1 names such as "Bearer"),
	// which some servers fill with the kind of token instead
	// ("access_token", "refresh_token"). Only an access token may be used
	// here: a refresh token, an ID token or a DPoP-bound token (RFC 9449
	// §7.1, never valid under the Bearer scheme) is refused. ORY Hydra's
	// token_use carries the same information.
	if v, present := obj["token_type"]; present {
		tt, _ := v.(string)
		if !accessTokenType(tt) {
			return nil, invalid("introspection: token_type " + quoteShort(tt) + " is not an access token type")
		}
	}
	if v, present := obj["token_use"]; present {
		if tu, _ := v.(string); tu != "access_token" {
			return nil, invalid("introspection: token_use " + quoteShort(tu) + " is not access_token")
		}
	}
	now := in.now()
	info := &TokenInfo{Claims: obj}

	exp, err := introNumericDate(obj, "exp")
	if err != nil {
		return nil, err
	}
	if !exp.IsZero() {
		info.Expiry = exp
		if !now.Before(exp.Add(in.leeway)) {
			return nil, &tokenError{kind: ErrExpired, cause: "introspection: token expired"}
		}
	}
	nbf, err := introNumericDate(obj, "nbf")
	if err != nil {
		return nil, err
	}
	if !nbf.IsZero() && now.Add(in.leeway).Before(nbf) {
		return nil, invalid("introspection: token not yet valid (nbf)")
	}
	if info.IssuedAt, err = introNumericDate(obj, "iat"); err != nil {
		return nil, err
	}

	info.Issuer = in.issuer
	if v, present := obj["iss"]; present {
		iss, ok := v.(string)
		if !ok || iss != in.issuer {
			return nil, invalid("introspection: iss " + quoteShort(iss) + " does not match the configured issuer " + strconv.Quote(in.issuer))
		}
	}

	// RFC 7662 makes aud optional, but without it the RFC 8707 binding of
	// the token to this resource cannot be checked: a token minted for
	// another resource server of the same AS would pass. So it is required.
	aud, ok := stringOrList(obj["aud"])
	if !ok || len(aud) == 0 {
		return nil, invalid("introspection: response has no usable aud")
	}
	info.Audience = aud
	if !audienceContains(aud, in.audience) {
		return nil, invalid("introspection: aud " + quoteList(aud) + " does not contain this resource " + quoteConfigured(in.audience))
	}

	if v, present := obj["scope"]; present {
		switch s := v.(type) {
		case string:
			info.Scopes = strings.Fields(s)
		case []any: // not RFC 7662, but some servers send a list
			sc, ok := stringOrList(s)
			if !ok {
				return nil, invalid("introspection: malformed scope")
			}
			info.Scopes = sc
		default:
			return nil, invalid("introspection: malformed scope")
		}
	}
	for name, dst := range map[string]*string{"sub": &info.Subject, "client_id": &info.ClientID} {
		if v, present := obj[name]; present {
			s, ok := v.(string)
			if !ok {
				return nil, invalid("introspection: malformed " + name)
			}
			*dst = s
		}
	}
	return info, nil
}

// accessTokenType reports whether an introspection token_type names a
// bearer access token.
func accessTokenType(tt string) bool {
	switch strings.ToLower(tt) {
	case "bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token":
		return true
	}
	return false
}

// introNumericDate reads an optional NumericDate member.
func introNumericDate(obj map[string]any, name string) (time.Time, error) {
	v, present := obj[name]
	if !present || v == nil {
		return time.Time{}, nil
	}
	f, ok := v.(float64)
	if !ok || f < 0 || f > 1<<40 {
		return time.Time{}, invalid("introspection: malformed " + name)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
}

// String describes the configuration with the client secret redacted.
func (c IntrospectionConfig) String() string {
	secret := ""
	if c.ClientSecret != "" {
		secret = "REDACTED"
	}
	return fmt.Sprintf("IntrospectionConfig{URL:%q ClientID:%q ClientSecret:%q AuthStyle:%t CacheTTL:%s NegativeCacheTTL:%s MaxResponseSize:%d}",
		c.URL, c.ClientID, secret, c.AuthStyle != nil, c.CacheTTL, c.NegativeCacheTTL, c.MaxResponseSize)
}

// GoString is String, so %#v does not reveal the secret either.
func (c IntrospectionConfig) GoString() string { return c.String() }

// Format makes every fmt verb print String.
func (c IntrospectionConfig) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue implements [slog.LogValuer] without the secret.
func (c IntrospectionConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", c.URL),
		slog.String("client_id", c.ClientID),
		slog.Bool("client_secret_set", c.ClientSecret != ""),
	)
}

// MarshalJSON encodes the configuration with the client secret redacted
// (AuthStyle, a function, is left out).
func (c IntrospectionConfig) MarshalJSON() ([]byte, error) {
	type public struct {
		URL              string `json:"url,omitempty"`
		ClientID         string `json:"client_id,omitempty"`
		ClientSecret     string `json:"client_secret,omitempty"`
		CacheTTL         string `json:"cache_ttl,omitempty"`
		NegativeCacheTTL string `json:"negative_cache_ttl,omitempty"`
		MaxResponseSize  int64  `json:"max_response_size,omitempty"`
	}
	p := public{URL: c.URL, ClientID: c.ClientID, MaxResponseSize: c.MaxResponseSize}
	if c.ClientSecret != "" {
		p.ClientSecret = "REDACTED"
	}
	if c.CacheTTL != 0 {
		p.CacheTTL = c.CacheTTL.String()
	}
	if c.NegativeCacheTTL != 0 {
		p.NegativeCacheTTL = c.NegativeCacheTTL.String()
	}
	return json.Marshal(p)
}
