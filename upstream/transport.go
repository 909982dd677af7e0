package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/internal/outbound"
	"github.com/mcpauth-go/mcpauth/observe"
)

var (
	// ErrNoIdentity means the request context carries no verified identity
	// ([authn.FromContext]): the Transport never sends a request it cannot
	// attribute to a logged-in user. It is a wiring mistake (the handler is
	// not behind authn), answered like an unknown error.
	ErrNoIdentity = errors.New("upstream: no verified identity in request context")

	// ErrReauthenticate means the caller's upstream authorization is gone
	// and only a new login brings it back: the access token has no tsid
	// claim (it was not issued by this authorization server), the session
	// expired or was revoked, the upstream token expired without a refresh
	// token, or the upstream refused the refresh (invalid_grant: the grant
	// was revoked). [WriteError] answers it with 401 invalid_token, which
	// makes an MCP client start a new login.
	ErrReauthenticate = errors.New("upstream: the upstream authorization is no longer valid; log in again")

	// ErrLocked is returned by [SessionLocker.LockSession] when another
	// holder has the session's refresh lock.
	ErrLocked = errors.New("upstream: session is locked by another refresh")
)

// SessionLocker is implemented by a [Store] shared by several replicas
// (upstream/redisstore's Store does). A [Transport] takes the lock around
// refreshing a session's upstream token, so that across replicas one
// refresh happens per expiry: rotating refresh tokens are single-use, and an
// upstream that sees one used twice revokes the whole grant.
//
// LockSession returns ErrLocked (wrapped) at once when another holder has
// the lock, or an error wrapping [ErrUnavailable]. The lock must expire on
// its own after a bounded time if its holder dies, and unlock must release
// it only while the caller still holds it.
//
// A Store without it (the in-memory one) relies on the single flight inside
// one Transport and on UpdateSession's compare-and-swap: right for one
// process with one Transport per Store, not for a Store shared by replicas.
type SessionLocker interface {
	LockSession(ctx context.Context, tsid string) (unlock func(), err error)
}

// TransportConfig configures a [Transport].
type TransportConfig struct {
	// Server is the embedded authorization server whose logins this
	// Transport serves. When set, Store defaults to the Server's store,
	// every Server upstream (Provider.Name) refreshes with the Server's
	// client credentials and token endpoint (discovered for OIDC) through
	// the Server's HTTP client, and SessionTTL defaults to the Server's
	// RefreshTokenTTL. If nil, Store and Upstreams are required.
	Server *Server

	// Store holds the sessions the authorization server wrote (the
	// Server's Store). Required without Server. If it implements
	// [SessionLocker], refreshes are locked across replicas.
	Store Store

	// Upstreams gives, by upstream name (Session.Upstream, the
	// Provider.Name), the OAuth client that refreshes that upstream's
	// tokens: its Endpoint.TokenURL, ClientID, ClientSecret and
	// Endpoint.AuthStyle are used. An entry here overrides the Server's
	// provider of that name. Required (at least one) without Server.
	Upstreams map[string]*oauth2.Config

	// RefreshSkew refreshes a token this long before its expiry, so a
	// backend never receives one that expires in flight. Zero means 30
	// seconds; negative is an error.
	RefreshSkew time.Duration

	// SessionTTL is the ttl written with a refreshed session. It must be
	// the lifetime the authorization server gives sessions (its
	// RefreshTokenTTL), never the access token's: the stored refresh token
	// outlives the access token. Each refresh resets it; the login still
	// ends when its refresh-token family does. Zero means the Server's
	// RefreshTokenTTL, or 30 days without Server.
	SessionTTL time.Duration

	// RefreshTimeout bounds one refresh: waiting for another replica's
	// lock, the call to the upstream token endpoint, and the store writes.
	// It runs apart from the request that started it (a cancelled request
	// does not abort a refresh other requests wait for); each request
	// still returns at its own deadline. Keep it below the SessionLocker's
	// lock lifetime (redisstore's LockTTL, default 20s). Zero means 10
	// seconds.
	RefreshTimeout time.Duration

	// HTTPClient sends the refresh requests to the upstream token
	// endpoint. If nil, the Server's (for its upstreams), else
	// http.DefaultClient.
	HTTPClient *http.Client

	// Hosts, if not empty, lists the only hosts the upstream token may be
	// sent to ("api.github.com", or "host:port" for one port only;
	// case-insensitive). Empty means any host, except on a redirect an
	// http.Client follows: then only the original host and its subdomains.
	Hosts []string

	// InsecureAllowHTTP allows sending the upstream token over plain http
	// to hosts other than loopback. False means https (or loopback) only.
	InsecureAllowHTTP bool

	// Now is the clock deciding expiry. If nil, time.Now.
	Now func() time.Time

	// Logger receives refresh failures (never a token). If nil,
	// slog.Default().
	Logger *slog.Logger

	// Observer receives an event per refresh (outcome and duration, never
	// a token; see package observe). If nil, nothing is reported.
	Observer *observe.Observer
}

// Transport is an [http.RoundTripper] that sends each backend request with
// the logged-in user's own upstream access token (GitHub's, Google's, …).
// Build one with [NewTransport]; it is safe for concurrent use.
//
// For each request it reads the verified caller from the context
// ([authn.FromContext]) and the tsid claim of the caller's access token,
// loads that session's upstream token from the Store, and sends a clone of
// the request with "Authorization: Bearer <upstream token>" (any
// Authorization on the request is replaced; the inbound token anywhere
// else refuses the request). Without a verified identity nothing is sent,
// and the session must be the caller's: its Subject must equal the token's
// sub, and with TransportConfig.Server the token must come from that
// Server's issuer, so a token of another trusted issuer that carries a tsid
// claim gets nothing.
//
// A token that expired, or expires within RefreshSkew, is refreshed first
// at the upstream token endpoint — once per session whatever the
// concurrency: concurrent requests in one Transport share one refresh
// (single flight), and across replicas a [SessionLocker] Store serialises
// them while [Store.UpdateSession]'s compare-and-swap writes the rotated
// pair; a replica that waited reads the winner's token instead of
// refreshing again. When the upstream returns no new refresh token the old
// one is kept, and the session's ttl stays the refresh token's lifetime
// (TransportConfig.SessionTTL), never the access token's. If the store
// fails right after the upstream rotated the refresh token, the new pair is
// kept in this Transport's memory and stored by the next refresh attempt
// for that session, instead of spending the stale refresh token again
// (which would revoke the grant).
//
// Failures: [ErrReauthenticate] when only a new login helps, an error
// wrapping [ErrUnavailable] when the store (or the upstream token endpoint)
// cannot answer now, [ErrNoIdentity], [ErrDestinationNotAllowed] and
// [ErrPassthrough]. [WriteError] and [HandleErrors] turn the first two into
// the inbound response (401 invalid_token, 503 with Retry-After).
type Transport struct {
	server    *Server
	store     Store
	locker    SessionLocker
	upstreams map[string]*oauth2.Config
	skew      time.Duration
	ttl       time.Duration
	timeout   time.Duration
	client    *http.Client
	now       func() time.Time
	log       *slog.Logger
	guard     *outbound.Guard
	base      http.RoundTripper
	flight    singleflight.Group
	unsaved   sync.Map // tsid -> *unsavedPair
	obs       *observe.Observer
}

// NewTransport returns a Transport that sends through base
// (http.DefaultTransport if nil). It validates cfg; the Store is not
// contacted until the first request.
func NewTransport(cfg TransportConfig, base http.RoundTripper) (*Transport, error) {
	ttl := 30 * 24 * time.Hour
	if srv := cfg.Server; srv != nil {
		if cfg.Store == nil {
			cfg.Store = srv.store
		}
		ttl = srv.refreshTTL
	}
	if cfg.Store == nil {
		return nil, errors.New("upstream: TransportConfig.Store is nil (and no Server)")
	}
	if len(cfg.Upstreams) == 0 && cfg.Server == nil {
		return nil, errors.New("upstream: TransportConfig.Upstreams is empty (and no Server)")
	}
	for name, c := range cfg.Upstreams {
		if c == nil || c.Endpoint.TokenURL == "" {
			return nil, fmt.Errorf("upstream: TransportConfig.Upstreams[%q] has no Endpoint.TokenURL", name)
		}
	}
	if cfg.RefreshSkew < 0 {
		return nil, errors.New("upstream: TransportConfig.RefreshSkew is negative")
	}
	g, err := outbound.New(outbound.Config{
		Prefix: "upstream", Header: "Authorization",
		Hosts: cfg.Hosts, InsecureAllowHTTP: cfg.InsecureAllowHTTP,
	})
	if err != nil {
		return nil, err
	}
	t := &Transport{
		server:    cfg.Server,
		store:     cfg.Store,
		upstreams: cfg.Upstreams,
		skew:      cmpOr(cfg.RefreshSkew, 30*time.Second),
		ttl:       cmpOr(cfg.SessionTTL, ttl),
		timeout:   cmpOr(cfg.RefreshTimeout, 10*time.Second),
		client:    cfg.HTTPClient,
		now:       cfg.Now,
		log:       cfg.Logger,
		guard:     g,
		base:      base,
		obs:       cfg.Observer,
	}
	t.locker, _ = cfg.Store.(SessionLocker)
	if t.now == nil {
		t.now = time.Now
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	return t, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// RoundTrip implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// Destination and passthrough first: a refused request costs no store
	// read and reaches nobody.
	inbound := outbound.InboundToken(ctx)
	if err := t.guard.Check(req, inbound); err != nil {
		return outbound.Refuse(req, err)
	}
	s, err := t.session(ctx)
	if err != nil {
		noteFailure(ctx, err)
		return outbound.Refuse(req, err)
	}
	return t.guard.Send(t.base, req, authorization(s), inbound)
}

// authorization returns the Authorization value for s's access token.
func authorization(s *Session) string {
	if s.TokenType == "" || strings.EqualFold(s.TokenType, "bearer") {
		return "Bearer " + s.AccessToken
	}
	return s.TokenType + " " + s.AccessToken
}

// caller returns the verified caller in ctx and its tsid claim. With a
// Server, the token must be one that Server issued.
func (t *Transport) caller(ctx context.Context) (*authn.TokenInfo, string, error) {
	info, ok := authn.FromContext(ctx)
	if !ok {
		return nil, "", ErrNoIdentity
	}
	tsid, _ := info.Claims["tsid"].(string)
	if tsid == "" {
		return nil, "", fmt.Errorf("%w (the access token has no tsid claim)", ErrReauthenticate)
	}
	if t.server != nil && info.Issuer != t.server.cfg.Issuer {
		return nil, "", fmt.Errorf("%w (the access token was not issued by this authorization server)", ErrReauthenticate)
	}
	return info, tsid, nil
}

// session returns the caller's upstream session (from ctx's verified
// identity) with a fresh access token, refreshing it first when needed.
// The session must belong to the caller: a token whose tsid names another
// user's session (a token of another trusted issuer carrying a tsid claim)
// gets nothing.
func (t *Transport) session(ctx context.Context) (*Session, error) {
	info, tsid, err := t.caller(ctx)
	if err != nil {
		return nil, err
	}
	s, err := t.store.GetSession(ctx, tsid)
	if err != nil {
		return nil, transportStoreErr("load session", err)
	}
	if s.Subject != "" && s.Subject != info.Subject {
		t.log.LogAttrs(ctx, slog.LevelWarn, "upstream: access token names another subject's upstream session",
			slog.String("iss", info.Issuer), slog.String("sub", info.Subject))
		return nil, fmt.Errorf("%w (the session belongs to another subject)", ErrReauthenticate)
	}
	if t.fresh(s) {
		return s, nil
	}
	return t.sharedRefresh(ctx, tsid)
}

// transportStoreErr maps a Store error: a missing session needs a new login;
// anything else is an outage.
func transportStoreErr(op string, err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("upstream: %s: %w", op, ErrReauthenticate)
	case errors.Is(err, ErrUnavailable):
		return fmt.Errorf("upstream: %s: %w", op, err)
	}
	return fmt.Errorf("upstream: %s: %w: %w", op, ErrUnavailable, err)
}

// fresh reports whether s's access token may be sent now (it does not
// expire within the skew). A token without expiry is always fresh.
func (t *Transport) fresh(s *Session) bool {
	return s.AccessToken != "" && (s.Expiry.IsZero() || t.now().Add(t.skew).Before(s.Expiry))
}

// sharedRefresh runs one refresh per session in this process; each caller
// waits for it until its own context ends.
func (t *Transport) sharedRefresh(ctx context.Context, tsid string) (*Session, error) {
	ch := t.flight.DoChan(tsid, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.timeout)
		defer cancel()
		return t.refreshObserved(rctx, tsid) // TransportConfig.Observer (transport_observe.go)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		// Every waiter gets its own copy: a Session is a value.
		s := *r.Val.(*Session)
		return &s, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("upstream: waiting for the upstream token refresh: %w: %w", ErrUnavailable, ctx.Err())
	}
}

// lockPoll is how often a replica waiting for another's refresh re-reads
// the session.
const lockPoll = 25 * time.Millisecond

// refresh refreshes tsid's token, or returns the token another replica
// refreshed meanwhile.
func (t *Transport) refresh(ctx context.Context, tsid string) (*Session, error) {
	for {
		cur, err := t.store.GetSession(ctx, tsid)
		if err != nil {
			return nil, transportStoreErr("load session", err)
		}
		if t.fresh(cur) {
			return cur, nil // another replica (or an earlier flight) refreshed it
		}
		if t.locker == nil {
			return t.refreshLocked(ctx, cur)
		}
		unlock, err := t.locker.LockSession(ctx, tsid)
		if errors.Is(err, ErrLocked) {
			// Another replica is refreshing: wait for its write and
			// re-read, never refresh the same refresh token a second time.
			timer := time.NewTimer(lockPoll)
			select {
			case <-timer.C:
				continue
			case <-ctx.Done():
				timer.Stop()
				return nil, fmt.Errorf("upstream: waiting for another replica's refresh: %w: %w", ErrUnavailable, ctx.Err())
			}
		}
		if err != nil {
			return nil, transportStoreErr("lock session", err)
		}
		s, err := t.refreshUnder(ctx, tsid)
		unlock()
		return s, err
	}
}

// refreshUnder re-reads the session under the lock (the previous holder may
// have just written a fresh token) and refreshes it if still needed.
func (t *Transport) refreshUnder(ctx context.Context, tsid string) (*Session, error) {
	cur, err := t.store.GetSession(ctx, tsid)
	if err != nil {
		return nil, transportStoreErr("load session", err)
	}
	if t.fresh(cur) {
		return cur, nil
	}
	return t.refreshLocked(ctx, cur)
}

// refreshLocked calls the upstream token endpoint with cur's refresh token
// and writes the rotated pair with a compare-and-swap. A pair this
// Transport obtained earlier but could not store (the store failed right
// after the upstream rotated) is stored instead of refreshing again: the
// refresh token in the store was already spent.
func (t *Transport) refreshLocked(ctx context.Context, cur *Session) (*Session, error) {
	if v, ok := t.unsaved.Load(cur.TSID); ok {
		u := v.(*unsavedPair)
		if u.base == cur.Version {
			next := u.session
			next.Version = cur.Version
			s, err := t.save(ctx, cur, &next)
			if err != nil {
				return nil, err
			}
			if t.fresh(s) {
				return s, nil
			}
			cur = s // stored but already expiring: refresh with its refresh token
		} else {
			// Someone else wrote the session since: ours is stale.
			t.unsaved.CompareAndDelete(cur.TSID, v)
		}
	}
	if cur.RefreshToken == "" {
		return nil, fmt.Errorf("upstream: the upstream token expired and there is no refresh token: %w", ErrReauthenticate)
	}
	conf, client, err := t.upstream(ctx, cur.Upstream)
	if err != nil {
		return nil, err
	}
	hctx := ctx
	if client != nil {
		hctx = context.WithValue(ctx, oauth2.HTTPClient, client)
	}
	// x/oauth2 sends grant_type=refresh_token, keeps the old refresh token
	// when the response has none, and caps the response at 1 MiB.
	tok, err := conf.TokenSource(hctx, &oauth2.Token{RefreshToken: cur.RefreshToken}).Token()
	if err != nil {
		return t.refreshErr(ctx, cur, err)
	}
	next := *cur
	next.AccessToken = tok.AccessToken
	next.RefreshToken = tok.RefreshToken
	next.TokenType = tok.TokenType
	next.Expiry = tok.Expiry
	if tok.ExpiresIn > 0 {
		// On the Transport's clock, which decides freshness (x/oauth2
		// computes Expiry with time.Now).
		next.Expiry = t.now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	if id, ok := tok.Extra("id_token").(string); ok && id != "" {
		next.IDToken = id
	}
	return t.save(ctx, cur, &next)
}

// upstream returns the OAuth client that refreshes tokens of the upstream
// named name, and the HTTP client to call it with (nil: the default).
func (t *Transport) upstream(ctx context.Context, name string) (*oauth2.Config, *http.Client, error) {
	if conf, ok := t.upstreams[name]; ok {
		return conf, t.client, nil
	}
	if t.server != nil {
		if p, ok := t.server.ups[name]; ok {
			conf, err := p.resolve(ctx) // OIDC discovery, cached by the provider
			if err != nil {
				return nil, nil, fmt.Errorf("upstream: provider %q: %w: %w", name, ErrUnavailable, err)
			}
			client := t.client
			if client == nil {
				client = p.client
			}
			return conf, client, nil
		}
	}
	return nil, nil, fmt.Errorf("upstream: no refresh configuration for upstream %q (TransportConfig.Upstreams or Server)", name)
}

// unsavedPair is a rotated session the store refused to take, kept until
// it can be written over the version it was refreshed from.
type unsavedPair struct {
	base    uint64
	session Session
}

// save writes next (rotated from cur) with a compare-and-swap. The
// rotated refresh token exists only here until it is stored, so a failed
// write is retried for a moment, then kept in memory for the next attempt:
// a store outage must not cost the user their grant.
func (t *Transport) save(ctx context.Context, cur, next *Session) (*Session, error) {
	base := cur.Version
	var werr error
	for attempt := range 4 {
		werr = t.store.UpdateSession(ctx, next, t.ttl)
		switch {
		case werr == nil:
			t.unsaved.Delete(cur.TSID)
			return next, nil
		case errors.Is(werr, ErrNotFound):
			t.unsaved.Delete(cur.TSID)
			return nil, fmt.Errorf("upstream: the session was removed during the refresh: %w", ErrReauthenticate)
		case errors.Is(werr, ErrConflict):
			// Someone wrote the session meanwhile (a replica whose lock
			// outlived ours). Our pair is the newest the upstream issued,
			// so it wins: rebase on the current version.
			again, err := t.store.GetSession(ctx, cur.TSID)
			if err == nil {
				next.Version, base = again.Version, again.Version
				continue
			}
			werr = err
		}
		timer := time.NewTimer(time.Duration(attempt+1) * 50 * time.Millisecond)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
		}
		if ctx.Err() != nil {
			break
		}
	}
	pair := *next
	pair.Version = 0
	t.unsaved.Store(cur.TSID, &unsavedPair{base: base, session: pair})
	t.log.LogAttrs(ctx, slog.LevelWarn, "upstream: could not store a refreshed upstream token yet; keeping it in memory to store on the next request",
		slog.String("tsid", cur.TSID), slog.String("cause", werr.Error()))
	return nil, transportStoreErr("store refreshed session", werr)
}

// refreshErr classifies a failed refresh: an OAuth error answer (the grant
// was revoked, the client is no longer allowed) needs a new login; anything
// else (5xx, 429, network, timeout) is temporary. The upstream's body is
// never quoted: it may echo what was sent.
func (t *Transport) refreshErr(ctx context.Context, cur *Session, err error) (*Session, error) {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		status := re.Response.StatusCode
		if status >= 400 && status < 500 && status != http.StatusTooManyRequests && status != http.StatusRequestTimeout {
			// A replica whose lock expired mid-refresh may have rotated the
			// token before us: then our refresh token is simply stale.
			if again, gerr := t.store.GetSession(ctx, cur.TSID); gerr == nil && again.Version != cur.Version && t.fresh(again) {
				return again, nil
			}
			code := re.ErrorCode
			if code == "" {
				code = "no error code"
			}
			t.log.LogAttrs(ctx, slog.LevelInfo, "upstream: upstream refused the refresh",
				slog.String("tsid", cur.TSID), slog.Int("status", status), slog.String("error", sanitizeCode(code)))
			return nil, fmt.Errorf("upstream: the upstream refused the refresh (status %d, %s): %w", status, sanitizeCode(code), ErrReauthenticate)
		}
		return nil, fmt.Errorf("upstream: the upstream token endpoint answered status %d: %w", status, ErrUnavailable)
	}
	// A *url.Error quotes the token URL; keep only its cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return nil, fmt.Errorf("upstream: refreshing at the upstream token endpoint: %w: %w", ErrUnavailable, err)
}

// sanitizeCode keeps an OAuth error code to its RFC 6749 character set
// (%x20-21 / %x23-5B / %x5D-7E) and 64 bytes.
func sanitizeCode(s string) string {
	b := make([]byte, 0, min(len(s), 64))
	for i := 0; i < len(s) && len(b) < 64; i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b = append(b, c)
		}
	}
	return string(b)
}
