package tokenexchange

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/mcpauth-go/mcpauth/internal/lru"
	"github.com/mcpauth-go/mcpauth/internal/outbound"
)

// Transport is an [http.RoundTripper] that sends each request with a token
// exchanged (RFC 8693) for the subject token of the request's context, and
// never with the inbound token itself. It is safe for concurrent use.
type Transport struct {
	// Base is the RoundTripper that sends the request once the credential is
	// set. If nil, http.DefaultTransport is used. Do not change it once the
	// Transport is in use.
	Base http.RoundTripper

	settings
	client *http.Client // sends token and discovery requests; never follows redirects
	static [32]byte     // hash of the per-Transport part of the cache key

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

// NewTransport validates cfg and returns a Transport sending through base
// (http.DefaultTransport if nil). It does not contact the STS: discovery, if
// needed, happens on the first exchange.
func NewTransport(cfg Config, base http.RoundTripper) (*Transport, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	t := &Transport{Base: base, settings: s}
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

	if t.cacheSize > 0 {
		t.cache = lru.New[*entry](t.cacheSize)
	}
	return t, nil
}

// RoundTrip sends a clone of req carrying the exchanged token in the
// configured header (Authorization by default), which replaces whatever req
// held there: a handler that copies the inbound Authorization onto its
// backend call gets it replaced, as with golang.org/x/oauth2's Transport.
// req is never modified; its body is closed on every error path.
//
// Before anything is exchanged or sent, RoundTrip refuses a destination the
// token may not reach (plain http to a non-loopback host without
// Config.InsecureAllowHTTP, a host outside Config.Hosts, or — without Hosts —
// a redirect an http.Client follows to a host other than the original one or
// its subdomains) with [ErrDestinationNotAllowed]; a context without an
// identity with [ErrNoIdentity]; and a request carrying the inbound
// (subject) token anywhere but the configured header — another header, a
// cookie, a Basic credential, the URL, a trailer — with [ErrPassthrough]. An
// [http.Client] wraps that error in a *url.Error that quotes the request
// URL, token included: where a URL may carry one, log errors.Unwrap of the
// client's error, not the error itself.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.guard.CheckDestination(req); err != nil {
		return outbound.Refuse(req, err)
	}
	ctx := req.Context()
	r, sexp, err := t.subject(ctx)
	if err != nil {
		return outbound.Refuse(req, err)
	}
	// Refuse before exchanging: nothing is sent anywhere.
	if err := t.checkPassthrough(req, r.subjectToken); err != nil {
		t.logger.WarnContext(ctx, "tokenexchange: refused request carrying the inbound token", "host", req.URL.Host)
		return outbound.Refuse(req, err)
	}
	e, err := t.lookup(ctx, r, sexp)
	if err != nil {
		return outbound.Refuse(req, err)
	}
	return t.guard.Send(t.Base, req, e.value, r.subjectToken)
}

// checkPassthrough looks for the subject token on req and, when the subject
// is not the caller's inbound token (a custom SubjectTokenSource), for the
// inbound token as well.
func (t *Transport) checkPassthrough(req *http.Request, subject string) error {
	if err := t.guard.CheckPassthrough(req, subject); err != nil {
		return err
	}
	if in := outbound.InboundToken(req.Context()); in != "" && in != subject {
		return t.guard.CheckPassthrough(req, in)
	}
	return nil
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
