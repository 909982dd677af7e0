package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
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
	// attribute to a logged-in user, nor one whose identity lacks its raw
	// access token ([authn.TokenInfo.Token]; authn's middleware always sets
	// it), since the token-passthrough check needs it. It is a wiring
	// mistake (the handler is not behind authn), answered like an unknown
	// error.
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
// A locker whose locks expire after a fixed lifetime should also have a
// method LockTTL() time.Duration returning it (redisstore's Store does):
// [NewTransport] then refuses a RefreshTimeout that is not below it, and
// defaults RefreshTimeout to at most half of it, so that a slow refresh
// can never outlive its lock and let another replica spend the same
// refresh token.
//
// [MemoryStore] implements it within its process, so several Transports
// over one MemoryStore are safe. A Store without it relies on the single
// flight inside one Transport and on UpdateSession's compare-and-swap:
// right for one Transport per Store, not for a Store shared by replicas.
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

	// Issuer is the issuer (iss) of the access tokens whose tsid claim this
	// Transport honours: the embedded authorization server's. A token of
	// any other issuer the inbound verifier trusts gets nothing, whatever
	// tsid and sub it carries. Empty means the Server's Issuer with Server;
	// without Server it is required (a Transport serving tokens of every
	// trusted issuer would let another issuer's token name a session).
	// With Server it must equal the Server's Issuer.
	Issuer string

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
	// still returns at its own deadline. It must be below the
	// SessionLocker's lock lifetime (redisstore's LockTTL, default 20s):
	// NewTransport refuses it otherwise. Zero means 10 seconds, or half the
	// lock lifetime when that is shorter.
	RefreshTimeout time.Duration

	// HTTPClient sends the refresh requests to the upstream token
	// endpoint; its redirect policy is replaced (a redirect is never
	// followed, as the request body holds the refresh token). If nil, the
	// Server's (for its upstreams), else http.DefaultClient.
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
// sub, and the token must come from TransportConfig.Issuer (the Server's),
// so a token of another trusted issuer that carries a tsid claim gets
// nothing.
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
// (which would revoke the grant); with a [SessionLocker] that reports its
// lock lifetime, the session's lock is kept meanwhile (until it expires),
// so other replicas wait instead of spending it either.
//
// Failures: [ErrReauthenticate] when only a new login helps, an error
// wrapping [ErrUnavailable] when the store (or the upstream token endpoint)
// cannot answer now, [ErrNoIdentity], [ErrDestinationNotAllowed] and
// [ErrPassthrough]. [WriteError] and [HandleErrors] turn the first two into
// the inbound response (401 invalid_token, 503 with Retry-After).
type Transport struct {
	server    *Server
	issuer    string
	store     Store
	locker    SessionLocker
	lockTTL   time.Duration // the locker's lock lifetime; 0 if unknown
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
	flushing  sync.Map // tsid -> struct{}: a flush goroutine runs (see flush)
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
	timeout := cmpOr(cfg.RefreshTimeout, 10*time.Second)
	var lockTTL time.Duration
	if l, ok := cfg.Store.(interface{ LockTTL() time.Duration }); ok {
		if lt := l.LockTTL(); lt > 0 {
			lockTTL = lt
			if cfg.RefreshTimeout <= 0 {
				timeout = min(timeout, lt/2)
			} else if cfg.RefreshTimeout >= lt {
				return nil, fmt.Errorf("upstream: TransportConfig.RefreshTimeout %v is not below the store's lock lifetime %v: a slow refresh would outlive its lock and another replica would spend the same refresh token", cfg.RefreshTimeout, lt)
			}
		}
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
		timeout:   timeout,
		client:    cfg.HTTPClient,
		now:       cfg.Now,
		log:       cfg.Logger,
		guard:     g,
		base:      base,
		obs:       cfg.Observer,
	}
	t.issuer = cfg.Issuer
	if srv := cfg.Server; srv != nil {
		if t.issuer != "" && t.issuer != srv.cfg.Issuer {
			return nil, fmt.Errorf("upstream: TransportConfig.Issuer %q is not the Server's issuer %q", t.issuer, srv.cfg.Issuer)
		}
		t.issuer = srv.cfg.Issuer
	}
	if t.issuer == "" {
		return nil, errors.New("upstream: TransportConfig.Issuer is empty (and no Server): the issuer of the access tokens carrying tsid is required")
	}
	t.locker, _ = cfg.Store.(SessionLocker)
	if t.locker != nil {
		t.lockTTL = lockTTL
	}
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

// String describes the Transport by its issuer and upstream names. A
// Transport never prints its internals: they include the sessions in
// flight and change under concurrent use.
func (t *Transport) String() string {
	names := make([]string, 0, len(t.upstreams))
	for name := range t.upstreams {
		names = append(names, name)
	}
	slices.Sort(names)
	return fmt.Sprintf("upstream.Transport{Issuer:%q Upstreams:%q}", t.issuer, names)
}

// GoString is String.
func (t *Transport) GoString() string { return t.String() }

// Format prints String for every verb.
func (t *Transport) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, t.String()) }

// LogValue logs the Transport as String does.
func (t *Transport) LogValue() slog.Value { return slog.StringValue(t.String()) }

// RoundTrip implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// Destination and passthrough first: a refused request costs no store
	// read and reaches nobody.
	inbound := outbound.InboundToken(ctx)
	if inbound == "" {
		// No verified identity, or one without its raw token (a custom
		// middleware that skipped TokenInfo.WithToken): the passthrough
		// check would have nothing to look for, so nothing is sent.
		return outbound.Refuse(req, errNoInbound(ctx))
	}
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

// errNoInbound explains why ctx has no inbound token.
func errNoInbound(ctx context.Context) error {
	if _, ok := authn.FromContext(ctx); !ok {
		return ErrNoIdentity
	}
	return fmt.Errorf("%w (the verified identity carries no raw access token, so token passthrough cannot be checked; build it with authn.TokenInfo.WithToken)", ErrNoIdentity)
}

// authorization returns the Authorization value for s's access token.
func authorization(s *Session) string {
	if s.TokenType == "" || strings.EqualFold(s.TokenType, "bearer") {
		return "Bearer " + s.AccessToken
	}
	return s.TokenType + " " + s.AccessToken
}

// caller returns the verified caller in ctx and its tsid claim. The token
// must come from the configured issuer.
func (t *Transport) caller(ctx context.Context) (*authn.TokenInfo, string, error) {
	info, ok := authn.FromContext(ctx)
	if !ok {
		return nil, "", ErrNoIdentity
	}
	tsid, _ := info.Claims["tsid"].(string)
	if tsid == "" {
		return nil, "", fmt.Errorf("%w (the access token has no tsid claim)", ErrReauthenticate)
	}
	if info.Issuer != t.issuer {
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
		if errors.Is(err, ErrNotFound) {
			// The session ended: its unsaved pair is useless.
			if v, ok := t.unsaved.LoadAndDelete(tsid); ok && v.(*unsavedPair).unlock != nil {
				v.(*unsavedPair).unlock()
			}
		}
		return nil, transportStoreErr("load session", err)
	}
	// Fail closed: a session without a Subject, or a caller without a
	// sub, matches nobody.
	if s.Subject == "" || s.Subject != info.Subject {
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
// expire within the skew). A token without expiry is always fresh. The
// skew is at most half the token's lifetime when that is known, so a token
// living less than the skew is not refreshed on every call.
func (t *Transport) fresh(s *Session) bool {
	if s.AccessToken == "" {
		return false
	}
	if s.Expiry.IsZero() {
		return true
	}
	skew := t.skew
	if !s.Obtained.IsZero() && s.Expiry.After(s.Obtained) {
		skew = min(skew, s.Expiry.Sub(s.Obtained)/2)
	}
	return t.now().Add(skew).Before(s.Expiry)
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
		// A pair this Transport could not store keeps the lock it was
		// refreshed under (see release): store it under that lock.
		if unlock, until, ok := t.heldLock(tsid); ok {
			s, err := t.refreshUnder(ctx, tsid)
			t.release(tsid, unlock, until)
			return s, err
		}
		acquired := time.Now()
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
		t.release(tsid, unlock, acquired.Add(t.lockTTL))
		return s, err
	}
}

// release releases a session's refresh lock, unless the refresh left a
// rotated pair this Transport could not store: the refresh token in the
// store is spent, so the lock is kept until it expires (until, on the wall
// clock), and this Transport's next refresh of the session stores the pair
// under it while other replicas wait instead of spending the stale token.
func (t *Transport) release(tsid string, unlock func(), until time.Time) {
	if t.lockTTL > 0 {
		if v, ok := t.unsaved.Load(tsid); ok {
			u := *v.(*unsavedPair)
			u.unlock, u.lockUntil = unlock, until
			if t.unsaved.CompareAndSwap(tsid, v, &u) {
				if _, running := t.flushing.LoadOrStore(tsid, struct{}{}); !running {
					go t.flush(tsid)
				}
				return
			}
		}
	}
	unlock()
}

// flushBackoff bounds the pause between flush's attempts.
var flushBackoff = [2]time.Duration{100 * time.Millisecond, time.Second}

// flush tries again, in the background, to store tsid's unsaved pair for
// as long as the lock kept with it holds for a whole refresh. Without it
// the pair waits for the session's next request to this replica; if none
// comes before the lock expires (the store came back, but the user is idle
// or the load balancer sends them elsewhere), another replica takes the
// lock, refreshes with the spent refresh token from the store, and an
// upstream that rotates refresh tokens revokes the user's grant. Each
// attempt is an ordinary shared refresh (it finds the pair and stores it,
// never calling the upstream while the pair is current), so it cannot race
// a request's refresh of the same session. It returns once the pair is
// stored or dropped, or the lock no longer holds.
func (t *Transport) flush(tsid string) {
	defer t.flushing.Delete(tsid)
	wait := flushBackoff[0]
	for {
		timer := time.NewTimer(wait)
		<-timer.C
		wait = min(2*wait, flushBackoff[1])
		if _, _, ok := t.heldLock(tsid); !ok {
			return
		}
		if _, err := t.sharedRefresh(context.Background(), tsid); err == nil {
			if _, still := t.unsaved.Load(tsid); !still {
				t.log.LogAttrs(context.Background(), slog.LevelInfo, "upstream: stored a refreshed upstream token kept in memory during a store outage",
					slog.String("tsid", tsid))
			}
			return
		}
	}
}

// heldLock returns the lock kept with tsid's unsaved pair, if it still
// holds for a whole refresh.
func (t *Transport) heldLock(tsid string) (func(), time.Time, bool) {
	v, ok := t.unsaved.Load(tsid)
	if !ok {
		return nil, time.Time{}, false
	}
	u := v.(*unsavedPair)
	if u.unlock == nil || !time.Now().Add(t.timeout).Before(u.lockUntil) {
		return nil, time.Time{}, false
	}
	return u.unlock, u.lockUntil, true
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
	hctx := context.WithValue(ctx, oauth2.HTTPClient, noRedirects(client))
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
	next.Obtained = t.now()
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

// noRedirects returns a copy of c (http.DefaultClient if nil) that does not
// follow redirects: net/http re-sends a POST body on a 307 or 308, even to
// another host, and a refresh request's body holds the refresh token (and
// the client secret with AuthStyleInParams). A redirect answer is then a
// failed refresh, like any other non-2xx status.
func noRedirects(c *http.Client) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &nc
}

// unsavedPair is a rotated session the store refused to take, kept until
// it can be written over the version it was refreshed from.
type unsavedPair struct {
	base    uint64
	session Session
	at      time.Time // when the store refused it

	// unlock releases the session's refresh lock, kept with the pair
	// until lockUntil (wall clock); nil if none is kept.
	unlock    func()
	lockUntil time.Time
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
	now := t.now()
	// A pair older than the session ttl is useless (the session it was
	// refreshed from has expired): drop those, so that the pairs held in
	// memory are bounded by the sessions refreshed within one ttl.
	t.unsaved.Range(func(k, v any) bool {
		if now.Sub(v.(*unsavedPair).at) > t.ttl {
			t.unsaved.CompareAndDelete(k, v)
		}
		return true
	})
	t.unsaved.Store(cur.TSID, &unsavedPair{base: base, session: pair, at: now})
	t.log.LogAttrs(ctx, slog.LevelWarn, "upstream: could not store a refreshed upstream token yet; keeping it in memory to store when the store answers",
		slog.String("tsid", cur.TSID), slog.String("cause", werr.Error()))
	return nil, transportStoreErr("store refreshed session", werr)
}

// refreshErr classifies a failed refresh. Only an OAuth error saying the
// grant itself is gone (invalid_grant, or GitHub's bad_refresh_token, which
// GitHub answers with status 200) needs a new login. Anything else is
// temporary or an operator's problem that a new login cannot fix (5xx,
// 429, a timeout, a proxy's error page, invalid_client after a rotated
// client secret): answering those with 401 would send every user through a
// new login and orphan their sessions, so they are ErrUnavailable and the
// session is kept. The upstream's body is never quoted: it may echo what
// was sent.
func (t *Transport) refreshErr(ctx context.Context, cur *Session, err error) (*Session, error) {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		code := knownCode(re.ErrorCode)
		if grantGone(re.ErrorCode) {
			// A replica whose lock expired mid-refresh may have rotated the
			// token before us: then our refresh token is simply stale.
			if again, gerr := t.store.GetSession(ctx, cur.TSID); gerr == nil && again.Version != cur.Version && t.fresh(again) {
				return again, nil
			}
			t.log.LogAttrs(ctx, slog.LevelInfo, "upstream: upstream refused the refresh",
				slog.String("tsid", cur.TSID), slog.Int("status", status), slog.String("error", code))
			return nil, fmt.Errorf("upstream: the upstream refused the refresh (status %d, %s): %w", status, code, ErrReauthenticate)
		}
		t.log.LogAttrs(ctx, slog.LevelWarn, "upstream: the upstream token endpoint failed the refresh",
			slog.String("tsid", cur.TSID), slog.Int("status", status), slog.String("error", code))
		return nil, fmt.Errorf("upstream: the upstream token endpoint answered status %d (%s): %w", status, code, ErrUnavailable)
	}
	// A *url.Error quotes the token URL; keep only its cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return nil, fmt.Errorf("upstream: refreshing at the upstream token endpoint: %w: %w", ErrUnavailable, err)
}

// grantGone reports whether an OAuth error code from the token endpoint
// means the refresh token (the grant) is no longer valid: RFC 6749
// invalid_grant, or GitHub's bad_refresh_token.
func grantGone(code string) bool {
	return code == "invalid_grant" || code == "bad_refresh_token"
}

// knownCode returns an OAuth error code from the upstream when it is one
// of the registered codes (RFC 6749 §5.2 and §4.1.2.1, RFC 6750, RFC 9449)
// or GitHub's, and a fixed text otherwise: the error field is the
// upstream's free text, and one that echoes the request would carry the
// refresh token or the client secret into errors and logs.
func knownCode(code string) string {
	switch code {
	case "":
		return "no error code"
	case "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
		"unsupported_grant_type", "invalid_scope", "access_denied", "server_error",
		"temporarily_unavailable", "invalid_token", "insufficient_scope", "slow_down",
		"invalid_dpop_proof", "use_dpop_nonce",
		"bad_refresh_token", "incorrect_client_credentials", "bad_verification_code":
		return code
	}
	return "unrecognised error code"
}
