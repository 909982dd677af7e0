package tokenexchange

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/mcpauth-go/mcpauth/internal/lru"
	"github.com/mcpauth-go/mcpauth/internal/netutil"
)

// Transport is an [http.RoundTripper] that sends each request with a token
// exchanged (RFC 8693) for the subject token of the request's context, and
// never with the inbound token itself. It is safe for concurrent use.
type Transport struct {
	// Base is the RoundTripper that sends the request once the credential is
	// set. If nil, http.DefaultTransport is used. Do not change it once the
	// Transport is in use.
	Base http.RoundTripper

	cfg                *Config // a pointer, so even a raw print of the struct shows no secret
	client             *http.Client
	logger             *slog.Logger
	now                func() time.Time
	skew               time.Duration
	timeout            time.Duration
	authMethod         AuthMethod
	alg                string
	requestedTokenType string
	subjectTokenType   string
	source             SubjectTokenSource
	header             string // canonical header name
	bearer             bool   // header value is "Bearer <token>"
	scopes, resources  []string
	static             [32]byte // hash of the per-Transport part of the cache key

	discMu     sync.Mutex
	discovered string

	cache  *lru.Cache[*entry] // nil when caching is disabled
	flight singleflight.Group
}

// String describes the transport without its secrets or cached tokens.
func (t *Transport) String() string {
	return "tokenexchange.Transport{" + t.cfg.String() + "}"
}

// GoString is String, so %#v does not reveal secrets either.
func (t *Transport) GoString() string { return t.String() }

// Format makes every fmt verb print String.
func (t *Transport) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, t.String()) }

// forbiddenHeaders are hop-by-hop and framing headers a credential must
// never be put in.
var forbiddenHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Host": true, "Content-Length": true, "Content-Type": true,
}

// NewTransport validates cfg and returns a Transport sending through base
// (http.DefaultTransport if nil). It does not contact the STS: discovery, if
// needed, happens on the first exchange.
func NewTransport(cfg Config, base http.RoundTripper) (*Transport, error) {
	t := &Transport{Base: base, cfg: &cfg, now: cfg.Now, logger: cfg.Logger}
	if cfg.TokenURL != "" {
		if err := checkEndpoint(cfg.TokenURL, cfg.InsecureAllowHTTP); err != nil {
			return nil, err
		}
	} else if cfg.Issuer == "" {
		return nil, errors.New("tokenexchange: TokenURL or Issuer is required")
	} else if err := checkEndpoint(cfg.Issuer, cfg.InsecureAllowHTTP); err != nil {
		return nil, fmt.Errorf("tokenexchange: issuer: %w", err)
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.logger == nil {
		t.logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.Skew < 0:
		t.skew = 0
	case cfg.Skew == 0:
		t.skew = DefaultSkew
	default:
		t.skew = cfg.Skew
	}
	t.timeout = cfg.Timeout
	if t.timeout <= 0 {
		t.timeout = DefaultTimeout
	}

	// Client authentication.
	t.authMethod = cfg.AuthMethod
	if t.authMethod == "" {
		switch {
		case cfg.PrivateKey != nil:
			t.authMethod = PrivateKeyJWT
		case cfg.ClientSecret != "":
			t.authMethod = ClientSecretBasic
		default:
			t.authMethod = None
		}
	}
	switch t.authMethod {
	case ClientSecretBasic, ClientSecretPost:
		if cfg.ClientID == "" || cfg.ClientSecret == "" {
			return nil, fmt.Errorf("tokenexchange: %s needs ClientID and ClientSecret", t.authMethod)
		}
	case None:
		if cfg.ClientSecret != "" || cfg.PrivateKey != nil {
			return nil, errors.New("tokenexchange: AuthMethod none with a ClientSecret or PrivateKey set")
		}
	case PrivateKeyJWT:
		if cfg.ClientID == "" || cfg.PrivateKey == nil {
			return nil, errors.New("tokenexchange: private_key_jwt needs ClientID and PrivateKey")
		}
		alg, err := signingAlg(cfg.PrivateKey, cfg.SigningAlgorithm)
		if err != nil {
			return nil, err
		}
		t.alg = alg
	default:
		return nil, fmt.Errorf("tokenexchange: unknown AuthMethod %q", cfg.AuthMethod)
	}

	t.requestedTokenType = cmp.Or(cfg.RequestedTokenType, TokenTypeAccessToken)
	t.subjectTokenType = cmp.Or(cfg.SubjectTokenType, TokenTypeAccessToken)
	t.source = cfg.SubjectTokenSource
	if t.source == nil {
		t.source = FromAuthn{}
	}

	t.header = "Authorization"
	if cfg.Header != "" {
		if !validHeaderName(cfg.Header) {
			return nil, fmt.Errorf("tokenexchange: invalid header name %q", cfg.Header)
		}
		t.header = textproto.CanonicalMIMEHeaderKey(cfg.Header)
		if forbiddenHeaders[t.header] {
			return nil, fmt.Errorf("tokenexchange: header %q cannot carry a credential", t.header)
		}
	}
	t.bearer = t.header == "Authorization"

	t.scopes = sortedCopy(cfg.Scopes)
	t.resources = sortedCopy(cfg.Resources)
	for _, s := range t.scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return nil, fmt.Errorf("tokenexchange: invalid scope %q", s)
		}
	}
	for _, r := range t.resources {
		// RFC 8707 §2: an absolute URI without a fragment.
		if u, err := url.Parse(r); err != nil || !u.IsAbs() || u.Fragment != "" {
			return nil, fmt.Errorf("tokenexchange: resource %q is not an absolute URI without fragment", r)
		}
	}
	t.static = staticKey(cfg.Audience, t.scopes, t.resources, t.requestedTokenType)

	// Never follow redirects: a 307 would re-send the form (and its secrets)
	// to wherever the STS points.
	c := http.DefaultClient
	if cfg.HTTPClient != nil {
		c = cfg.HTTPClient
	}
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	t.client = &cc

	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		t.cache = lru.New[*entry](size)
	}
	return t, nil
}

func sortedCopy(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	c := slices.Clone(s)
	slices.Sort(c)
	return slices.Compact(c)
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || c <= ' ' || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 || c == 0x7f {
			return false
		}
	}
	return true
}

// writeField appends a length-prefixed field so distinct field lists never
// hash alike.
func writeField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// staticKey hashes the part of the cache key fixed by the configuration.
func staticKey(audience string, scopes, resources []string, requested string) [32]byte {
	var b []byte
	b = writeField(b, "tokenexchange/v1")
	b = writeField(b, audience)
	b = binary.BigEndian.AppendUint32(b, uint32(len(scopes)))
	for _, s := range scopes {
		b = writeField(b, s)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(resources)))
	for _, r := range resources {
		b = writeField(b, r)
	}
	b = writeField(b, requested)
	return sha256.Sum256(b)
}

// keyHasher holds the buffers for one cache key computation, so a lookup
// allocates nothing in the steady state.
type keyHasher struct {
	h   hash.Hash
	tok []byte // copy of the subject or actor token, reused
	buf []byte
	sum []byte
}

var keyHashers = sync.Pool{New: func() any {
	return &keyHasher{h: sha256.New(), buf: make([]byte, 0, 256), sum: make([]byte, 0, sha256.Size)}
}}

// sumString returns SHA-256(s) in kh.sum's storage.
func (kh *keyHasher) sumString(s string) []byte {
	kh.tok = append(kh.tok[:0], s...)
	kh.h.Reset()
	kh.h.Write(kh.tok)
	clear(kh.tok) // do not leave a copy of the token in the pool
	return kh.h.Sum(kh.sum[:0])
}

// cacheKey is SHA-256(static || SHA-256(subject token) || subject type ||
// SHA-256(actor token) || actor type), where static hashes the audience,
// sorted scopes, sorted resources and requested token type. The raw token is
// never stored.
func (t *Transport) cacheKey(r *request) [32]byte {
	kh := keyHashers.Get().(*keyHasher)
	b := append(kh.buf[:0], t.static[:]...)
	b = append(b, kh.sumString(r.subjectToken)...)
	b = writeField(b, r.subjectTokenType)
	if r.actorToken != "" {
		b = append(b, 1)
		b = append(b, kh.sumString(r.actorToken)...)
		b = writeField(b, r.actorTokenType)
	} else {
		b = append(b, 0)
	}
	kh.h.Reset()
	kh.h.Write(b)
	var key [32]byte
	copy(key[:], kh.h.Sum(kh.sum[:0]))
	kh.buf = b
	keyHashers.Put(kh)
	return key
}

// RoundTrip sends a clone of req carrying the exchanged token. req is never
// modified; its body is closed on every error path. It fails with
// [ErrNoIdentity] if the request context has no identity, and with
// [ErrPassthrough] if req already carries the inbound token in a header or
// its URL (an [http.Client] wraps that error in a *url.Error that quotes the
// request URL, token included: where a URL may carry one, log errors.Unwrap
// of the client's error, not the error itself). A redirect an http.Client
// follows to another host, other than a subdomain of the original one (the
// rule net/http applies to Authorization), is refused.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := checkRedirect(req); err != nil {
		closeBody(req)
		return nil, err
	}
	// RFC 6750 §5.3: a bearer token travels only over TLS. Plain http is
	// accepted for loopback backends, or everywhere with InsecureAllowHTTP.
	if req.URL != nil && req.URL.Scheme == "http" && !t.cfg.InsecureAllowHTTP && !netutil.IsLoopbackHost(req.URL.Hostname()) {
		closeBody(req)
		return nil, fmt.Errorf("tokenexchange: refusing to send the exchanged token over plain http to %q (https required; InsecureAllowHTTP allows it)", req.URL.Hostname())
	}
	ctx := req.Context()
	r, sexp, err := t.subject(ctx)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	// Refuse before exchanging: nothing is sent anywhere.
	if carries(req.Header, r.subjectToken) || carries(req.Trailer, r.subjectToken) || urlCarries(req.URL, r.subjectToken) {
		closeBody(req)
		t.logger.WarnContext(ctx, "tokenexchange: refused request carrying the inbound token", "host", req.URL.Host)
		return nil, ErrPassthrough
	}
	e, err := t.lookup(ctx, r, sexp)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	r2 := cloneWith(req, t.header, e.value)
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r2)
}

// checkRedirect refuses a request that an http.Client made to follow a
// redirect (req.Response is set) to a host other than the original request's
// host or one of its subdomains. net/http drops Authorization on such a
// redirect; setting the exchanged token again on every hop would undo that
// and let an open redirect on the backend collect the user's token.
func checkRedirect(req *http.Request) error {
	if req.Response == nil || req.Response.Request == nil || req.URL == nil {
		return nil
	}
	first := req.Response.Request
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	if first.URL == nil {
		return nil
	}
	from, to := strings.ToLower(first.URL.Hostname()), strings.ToLower(req.URL.Hostname())
	if to == from || strings.HasSuffix(to, "."+from) {
		return nil
	}
	return fmt.Errorf("tokenexchange: refusing to send the exchanged token on a redirect from host %q to %q", from, to)
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// carries reports whether any header value is tok or "<scheme> tok" once
// trimmed (net/http trims values on the wire), or, for tokens of
// minSubstring bytes or more, contains tok anywhere.
func carries(h http.Header, tok string) bool {
	if tok == "" {
		return false
	}
	for _, vs := range h {
		for _, v := range vs {
			if len(v) < len(tok) {
				continue
			}
			if len(tok) >= minSubstring {
				if strings.Contains(v, tok) {
					return true
				}
				continue
			}
			v = strings.TrimSpace(v)
			if v == tok {
				return true
			}
			if i := strings.IndexAny(v, " \t"); i > 0 && strings.TrimLeft(v[i:], " \t") == tok {
				return true
			}
		}
	}
	return false
}

// minSubstring is the shortest token also looked for inside URL parts;
// shorter ones only match a whole query value, so that a short token does not
// refuse requests in which it happens to occur by chance.
const minSubstring = 16

// urlCarries reports whether the URL carries tok: in its user info, as a
// query name or value (raw or escaped), or, for tokens of minSubstring bytes
// or more, anywhere in its query or path.
func urlCarries(u *url.URL, tok string) bool {
	if u == nil || tok == "" {
		return false
	}
	if u.User != nil {
		if p, _ := u.User.Password(); p == tok || u.User.Username() == tok {
			return true
		}
	}
	long := len(tok) >= minSubstring
	if long && (strings.Contains(u.Path, tok) || strings.Contains(u.Opaque, tok)) {
		return true
	}
	if u.RawQuery == "" {
		return false
	}
	if long && (strings.Contains(u.RawQuery, tok) || strings.Contains(u.RawQuery, url.QueryEscape(tok))) {
		return true
	}
	for q := u.RawQuery; q != ""; {
		var part string
		part, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(part, "=")
		for _, s := range [2]string{k, v} {
			if us, err := url.QueryUnescape(s); err == nil {
				s = us
			}
			if s == tok || long && strings.Contains(s, tok) {
				return true
			}
		}
	}
	return false
}

// cloneWith is a shallow copy of req with a deep copy of its header, in
// which key is set to value: three allocations.
func cloneWith(req *http.Request, key, value string) *http.Request {
	r2 := new(http.Request)
	*r2 = *req
	nv := 1
	for _, vs := range req.Header {
		nv += len(vs)
	}
	vals := make([]string, nv)
	h := make(http.Header, len(req.Header)+1)
	for k, vs := range req.Header {
		if strings.EqualFold(k, key) {
			continue // replaced, whatever its spelling
		}
		n := copy(vals, vs)
		h[k] = vals[:n:n]
		vals = vals[n:]
	}
	vals[0] = value
	h[key] = vals[:1:1]
	r2.Header = h
	return r2
}

// Exchange returns the exchanged token for the identity in ctx, from the
// cache when a valid one is there. The returned Token is a copy.
func (t *Transport) Exchange(ctx context.Context) (*Token, error) {
	r, sexp, err := t.subject(ctx)
	if err != nil {
		return nil, err
	}
	e, err := t.lookup(ctx, r, sexp)
	if err != nil {
		return nil, err
	}
	tok := *e.tok
	return &tok, nil
}

// subject builds the exchange request for ctx's identity: subject token,
// its type and expiry, and the actor token if configured.
func (t *Transport) subject(ctx context.Context) (request, time.Time, error) {
	subject, stype, sexp, err := t.source.SubjectToken(ctx)
	if err != nil {
		if errors.Is(err, ErrNoIdentity) {
			return request{}, time.Time{}, ErrNoIdentity
		}
		return request{}, time.Time{}, fmt.Errorf("tokenexchange: subject token: %w", err)
	}
	if subject == "" {
		return request{}, time.Time{}, ErrNoIdentity
	}
	if !sexp.IsZero() && !t.now().Before(sexp) {
		return request{}, time.Time{}, ErrSubjectExpired
	}
	r := request{subjectToken: subject, subjectTokenType: cmp.Or(stype, t.subjectTokenType)}
	if t.cfg.ActorToken != nil {
		at, att, err := t.cfg.ActorToken(ctx)
		if err != nil {
			return request{}, time.Time{}, fmt.Errorf("tokenexchange: actor token: %w", err)
		}
		if at != "" {
			r.actorToken, r.actorTokenType = at, cmp.Or(att, TokenTypeAccessToken)
		}
	}
	return r, sexp, nil
}

// lookup returns the cache entry for r, exchanging on a miss.
func (t *Transport) lookup(ctx context.Context, r request, sexp time.Time) (*entry, error) {
	if t.cache == nil {
		ctx, cancel := context.WithTimeout(ctx, t.timeout)
		defer cancel()
		return t.fetch(ctx, r, sexp)
	}
	key := t.cacheKey(&r)
	if e, ok := t.cache.Get(key, t.now()); ok {
		return e, nil
	}
	return t.miss(ctx, key, r, sexp)
}

// miss makes (or joins) the one STS call for key, shared by every waiter.
// The call runs on a context detached from any one waiter (bounded by
// Timeout); each waiter gives up on its own context. It is a separate
// function so that the closure's captures do not make the hit path allocate.
func (t *Transport) miss(ctx context.Context, key [32]byte, r request, sexp time.Time) (*entry, error) {
	ch := t.flight.DoChan(string(key[:]), func() (any, error) {
		if e, ok := t.cache.Get(key, t.now()); ok {
			return e, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.timeout)
		defer cancel()
		e, err := t.fetch(fctx, r, sexp)
		if err != nil {
			return nil, err
		}
		if !e.expires.IsZero() {
			t.cache.Put(key, e, e.expires)
		}
		return e, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*entry), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("tokenexchange: waiting for token exchange: %w", ctx.Err())
	}
}

// fetch exchanges r and computes how long the result may be cached: until
// the issued expiry minus skew, never past the subject's expiry. A zero
// expires means "do not cache".
func (t *Transport) fetch(ctx context.Context, r request, subjectExpiry time.Time) (*entry, error) {
	start := t.now()
	tok, err := t.exchange(ctx, r)
	if err != nil {
		t.logger.WarnContext(ctx, "tokenexchange: exchange failed", "error", err, "retryable", errors.Is(err, ErrRetryable))
		return nil, err
	}
	e := &entry{tok: tok}
	if t.bearer {
		e.value = "Bearer " + tok.AccessToken
	} else {
		e.value = tok.AccessToken
	}
	if !tok.Expiry.IsZero() {
		exp := tok.Expiry.Add(-t.skew)
		if !subjectExpiry.IsZero() && subjectExpiry.Before(exp) {
			exp = subjectExpiry
		}
		if exp.After(t.now()) {
			e.expires = exp
		}
	}
	t.logger.DebugContext(ctx, "tokenexchange: token exchanged",
		"audience", t.cfg.Audience, "issued_token_type", tok.IssuedTokenType,
		"expires", tok.Expiry, "cached_until", e.expires, "duration", t.now().Sub(start))
	return e, nil
}

// TokenSource returns an [oauth2.TokenSource] yielding the exchanged token
// for the identity in ctx. ctx is used for every Token call, so the source
// belongs to one request: do not keep it beyond that request's lifetime.
func (t *Transport) TokenSource(ctx context.Context) oauth2.TokenSource {
	return tokenSource{t: t, ctx: ctx}
}

type tokenSource struct {
	t   *Transport
	ctx context.Context
}

func (s tokenSource) Token() (*oauth2.Token, error) {
	tok, err := s.t.Exchange(s.ctx)
	if err != nil {
		return nil, err
	}
	// RoundTrip sends every issued token as a bearer token, N_A ones too.
	return &oauth2.Token{AccessToken: tok.AccessToken, TokenType: "Bearer", Expiry: tok.Expiry}, nil
}
