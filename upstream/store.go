package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Store errors. A Store returns ErrNotFound (wrapped or bare) when a record
// does not exist or has expired, ErrConflict when a compare-and-swap lost,
// ErrConsumed when a single-use record was already consumed, and an error
// wrapping ErrUnavailable when the storage itself failed (network, timeout,
// a cancelled context, a corrupt value). The Server answers ErrUnavailable
// with 503 and Retry-After, never with an OAuth error that would make a
// client start over.
var (
	// ErrNotFound reports a record that does not exist or whose TTL passed.
	ErrNotFound = errors.New("upstream: not found")

	// ErrConflict reports a compare-and-swap whose expected value no longer
	// matches the stored one (another writer won).
	ErrConflict = errors.New("upstream: conflict")

	// ErrConsumed reports a second ConsumeCode of the same code within its
	// TTL. The record is returned with it so the caller can revoke what the
	// first exchange issued (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3).
	ErrConsumed = errors.New("upstream: already consumed")

	// ErrUnavailable reports a storage failure. Implementations wrap it
	// together with the cause: fmt.Errorf("redisstore: get: %w: %w",
	// upstream.ErrUnavailable, err).
	ErrUnavailable = errors.New("upstream: storage unavailable")
)

// Store keeps the authorization server's state. It is deliberately small so
// a shared store (Redis, SQL) implements it in a few lines per method, and
// every replica of a Server sharing one Store behaves as one server.
//
// The contract, checked by the upstream/storetest suite:
//
//   - Every Put/Update takes a ttl. A record is never returned after its ttl
//     has passed (expiry may be lazy, but Get, Consume and Update must treat
//     an expired record as absent: ErrNotFound). ttl <= 0 means no expiry.
//     Update methods replace the ttl with the one given.
//   - Keys are opaque strings chosen by the Server (random IDs, or SHA-256
//     hashes of codes and tokens: a Store never sees a raw code or refresh
//     token). Values that hold upstream tokens or verifiers (Session,
//     Pending) are secrets: a shared store should encrypt them at rest.
//   - Records are values: a Store keeps its own copy on Put and returns a
//     fresh copy on Get, so neither side's later mutation leaks into the
//     other. Every record type implements encoding.BinaryMarshaler and
//     encoding.BinaryUnmarshaler for stores that serialise.
//   - Single-use and compare-and-swap operations are atomic across every
//     client of the store (all replicas), not only within one process.
//   - A method whose ctx is done returns an error wrapping ErrUnavailable
//     (and ctx.Err()), never ErrNotFound and never a record.
//
// A store shared by replicas should also implement the optional
// [SessionLocker] and [ReplayGuard] interfaces; they are separate so that
// this one stays as it is.
//
// Implementations must be safe for concurrent use.
type Store interface {
	// PutClient stores a registered (DCR) or fetched (CIMD, cached per its
	// Cache-Control) client under c.ID, replacing any previous one.
	PutClient(ctx context.Context, c *Client, ttl time.Duration) error
	// GetClient returns the client with that ID, or ErrNotFound.
	GetClient(ctx context.Context, clientID string) (*Client, error)

	// PutPending stores an authorization request in flight (between
	// /authorize, the consent page and the upstream callback) under id.
	PutPending(ctx context.Context, id string, p *Pending, ttl time.Duration) error
	// GetPending reads a pending authorization without consuming it (the
	// consent page is idempotent under a repeated GET), or ErrNotFound.
	GetPending(ctx context.Context, id string) (*Pending, error)
	// ConsumePending atomically returns and deletes a pending
	// authorization: of any number of concurrent callers exactly one gets
	// it, the others get ErrNotFound.
	ConsumePending(ctx context.Context, id string) (*Pending, error)

	// PutCode stores an authorization code's grant under key (a hash of
	// the code).
	PutCode(ctx context.Context, key string, c *Code, ttl time.Duration) error
	// ConsumeCode atomically marks the code used. The first caller gets
	// (record, nil); every later caller within the ttl gets (record,
	// ErrConsumed), so a replay can be answered by revoking what the first
	// exchange issued; an unknown or expired key gives (nil, ErrNotFound).
	// Of any number of concurrent callers exactly one gets nil error.
	ConsumeCode(ctx context.Context, key string) (*Code, error)

	// PutFamily stores a refresh-token family under f.ID, replacing any
	// previous one.
	PutFamily(ctx context.Context, f *Family, ttl time.Duration) error
	// GetFamily returns the family, or ErrNotFound.
	GetFamily(ctx context.Context, id string) (*Family, error)
	// RotateFamily is a compare-and-swap of the family's current refresh
	// token hash: when the stored Current equals oldHash it becomes newHash,
	// Generation is incremented, the ttl is reset to ttl, and the updated
	// family is returned. Otherwise it returns ErrConflict (the old token
	// was already rotated: reuse), or ErrNotFound. Of concurrent callers
	// with the same oldHash exactly one succeeds.
	RotateFamily(ctx context.Context, id, oldHash, newHash string, ttl time.Duration) (*Family, error)
	// DeleteFamily removes a family (revocation). Deleting an absent
	// family is not an error.
	DeleteFamily(ctx context.Context, id string) error

	// PutSession stores the upstream tokens of a login under s.TSID,
	// replacing any previous one; the stored Version is 1 (s.Version is
	// ignored and set to 1 on success).
	PutSession(ctx context.Context, s *Session, ttl time.Duration) error
	// GetSession returns the session with its current Version, or
	// ErrNotFound.
	GetSession(ctx context.Context, tsid string) (*Session, error)
	// UpdateSession is a compare-and-swap: when the stored Version equals
	// s.Version, the session is replaced by s with Version s.Version+1 (and
	// s.Version is set to it on success) and the ttl reset. Otherwise it
	// returns ErrConflict (another writer, e.g. a replica that refreshed
	// the upstream token first: re-read instead of refreshing again), or
	// ErrNotFound. Of concurrent callers with the same Version exactly one
	// succeeds.
	UpdateSession(ctx context.Context, s *Session, ttl time.Duration) error
	// DeleteSession removes a session (logout, revocation, code replay).
	// Deleting an absent session is not an error.
	DeleteSession(ctx context.Context, tsid string) error

	// PutConsent records a user's approval of a client under key (the
	// Server derives it from the browser's consent cookie and the client
	// ID), replacing any previous one.
	PutConsent(ctx context.Context, key string, c *Consent, ttl time.Duration) error
	// GetConsent returns the consent, or ErrNotFound.
	GetConsent(ctx context.Context, key string) (*Consent, error)
}

// ReplayGuard is implemented by a [Store] that can remember single-use
// values for every replica sharing it (upstream/redisstore's Store and
// [MemoryStore] do). The Server uses it for the RFC 7523 §3 rule that a
// client assertion's jti is accepted once: without it, a Server falls back
// to a cache inside its own process, so an assertion accepted by one
// replica could be replayed at another within its lifetime. It is a
// separate interface so that the Store interface stays as it is for
// existing implementations.
//
// The contract, checked by the upstream/storetest suite when a store
// implements it:
//
//   - UseOnce records key and reports whether this call was its first use
//     within ttl: the first caller gets (true, nil), every later one
//     (false, nil) until ttl has passed on the store's clock, after which
//     the key may be forgotten. Of any number of concurrent callers on any
//     replica, exactly one gets true.
//   - ttl is relative, measured by the store, like every other ttl of the
//     Store, so the store's clock and the replicas' clocks need not agree;
//     the Server passes the assertion's remaining lifetime plus a margin
//     for skew. ttl <= 0 is refused with an error: a key is never
//     remembered forever.
//   - key is opaque and already namespaced by the Server (a hex SHA-256
//     of a domain, the client ID and the jti); a store may hash it again
//     and stores no value of interest with it.
//   - On a storage failure, or with ctx done, UseOnce returns false and an
//     error wrapping [ErrUnavailable], never true. The Server then refuses
//     the request with 503 temporarily_unavailable: it never accepts an
//     assertion it could not check. A failure after the key was written (a
//     lost reply) leaves the key used; the client's retry with a new
//     assertion succeeds.
//
// Implementations must be safe for concurrent use.
type ReplayGuard interface {
	UseOnce(ctx context.Context, key string, ttl time.Duration) (fresh bool, err error)
}

// Client is a registered OAuth client: from RFC 7591 dynamic registration,
// from a fetched Client ID Metadata Document, or configured statically.
type Client struct {
	// ID is the client_id (an https URL for a metadata-document client).
	ID string `json:"client_id"`
	// SecretHash is the hex SHA-256 of the client secret; empty for a
	// public client. The secret itself is never stored.
	SecretHash string `json:"secret_hash,omitempty"`
	// RedirectURIs are the registered redirect URIs, matched exactly
	// (loopback ports excepted, RFC 8252 §7.3).
	RedirectURIs []string `json:"redirect_uris"`
	// TokenEndpointAuthMethod is none, client_secret_basic,
	// client_secret_post or private_key_jwt. Empty means none, except for
	// a static client with a SecretHash (Config.Clients), where it means
	// client_secret_basic (client_secret_post accepted too).
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	// JWKS is the client's public JSON Web Key Set (private_key_jwt), as
	// registered; JWKSURI its location when registered by reference.
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI string          `json:"jwks_uri,omitempty"`
	// Name is the human-readable client_name shown on the consent page.
	Name string `json:"client_name,omitempty"`
	// URI is the client_uri shown on the consent page.
	URI string `json:"client_uri,omitempty"`
	// Scope is the space-separated scope the client registered.
	Scope string `json:"scope,omitempty"`
	// GrantTypes are the registered grant types.
	GrantTypes []string `json:"grant_types,omitempty"`
	// MetadataDocument is true for a client identified by a Client ID
	// Metadata Document URL.
	MetadataDocument bool `json:"metadata_document,omitempty"`
	// IssuedAt is when the client was registered or fetched.
	IssuedAt time.Time `json:"issued_at"`
	// LoggedInAt is when a user last completed a login through a
	// dynamically registered client (zero until the first): the Server
	// keeps an unused registration only for Config.UnusedClientTTL.
	LoggedInAt time.Time `json:"logged_in_at,omitzero"`
}

// Pending is an authorization request between /authorize and the upstream
// callback. It holds the upstream PKCE verifier and nonce: it is a secret.
type Pending struct {
	// The client's request, validated: client, redirect URI, state,
	// scope, RFC 8707 resource and PKCE S256 challenge.
	ClientID      string `json:"client_id"`
	RedirectURI   string `json:"redirect_uri"`
	State         string `json:"state,omitempty"`
	Scope         string `json:"scope,omitempty"`
	Resource      string `json:"resource"`
	CodeChallenge string `json:"code_challenge"`
	// Upstream is the name of the upstream provider chosen for this login.
	Upstream string `json:"upstream,omitempty"`
	// UpstreamVerifier is the PKCE code verifier of the upstream leg.
	UpstreamVerifier string `json:"upstream_verifier,omitempty"`
	// Nonce is the OpenID Connect nonce sent upstream.
	Nonce string `json:"nonce,omitempty"`
	// ConsentKey is the hash of the cookie of the browser that sent the
	// authorization request: the consent form and the upstream callback are
	// accepted only from that browser.
	ConsentKey string `json:"consent_key,omitempty"`
	// CreatedAt is when /authorize accepted the request.
	CreatedAt time.Time `json:"created_at"`
}

// Code is the grant an authorization code stands for. The code itself is
// never stored, only its hash as the key.
type Code struct {
	ClientID      string    `json:"client_id"`          // the client the code was issued to
	RedirectURI   string    `json:"redirect_uri"`       // the redirect URI it was sent to
	CodeChallenge string    `json:"code_challenge"`     // the client's PKCE S256 challenge
	Scope         string    `json:"scope,omitempty"`    // granted scope, space-separated
	Resource      string    `json:"resource"`           // the RFC 8707 resource (token audience)
	Subject       string    `json:"sub"`                // "<upstream>:<user id>"
	Upstream      string    `json:"upstream,omitempty"` // the provider's Name
	TSID          string    `json:"tsid"`               // the upstream-token Session
	FamilyID      string    `json:"family_id"`          // the refresh family the redemption creates
	AuthTime      time.Time `json:"auth_time"`          // when the upstream login completed
}

// Family is a refresh-token family: every refresh token rotated from one
// authorization code. Only the hash of the current token is kept; presenting
// any other token of the family (reuse) revokes it.
type Family struct {
	ID         string    `json:"id"`                 // the family ID (a prefix of its refresh tokens)
	ClientID   string    `json:"client_id"`          // the client it was issued to
	Subject    string    `json:"sub"`                // "<upstream>:<user id>"
	Upstream   string    `json:"upstream,omitempty"` // the provider's Name
	Scope      string    `json:"scope,omitempty"`    // the granted scope
	Resource   string    `json:"resource"`           // the RFC 8707 resource
	TSID       string    `json:"tsid"`               // the upstream-token Session
	Current    string    `json:"current"`            // hash of the only valid refresh token
	Generation uint64    `json:"generation"`         // number of rotations so far
	CreatedAt  time.Time `json:"created_at"`         // when the code was redeemed
	// ExpiresAt is the family's absolute end (it is not extended by
	// rotation).
	ExpiresAt time.Time `json:"expires_at"`
}

// Session holds the upstream provider's tokens for one login, keyed by the
// tsid claim of the access tokens issued for it. It is a secret: String,
// Format, LogValue and MarshalJSON redact the tokens; MarshalBinary is the
// full storage encoding.
type Session struct {
	TSID     string `json:"tsid"`               // the tsid claim of the access tokens
	Upstream string `json:"upstream,omitempty"` // the provider's Name
	Subject  string `json:"sub,omitempty"`      // "<upstream>:<user id>"
	// The upstream token response: access and refresh token, token type,
	// ID token (OIDC) and the access token's expiry (zero if unknown).
	AccessToken  string    `json:"access_token,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	IDToken      string    `json:"id_token,omitempty"`
	Expiry       time.Time `json:"expiry"`
	// Obtained is when the access token was obtained, zero if unknown. A
	// Transport sets it on refresh, and refreshes a token that lives less
	// than its RefreshSkew after half its lifetime rather than on every
	// call.
	Obtained time.Time `json:"obtained,omitzero"`
	// Version is the store's revision of this session, for UpdateSession.
	Version uint64 `json:"version"`
}

// Consent is a user's approval of a client.
type Consent struct {
	ClientID    string    `json:"client_id"`              // the approved client
	RedirectURI string    `json:"redirect_uri,omitempty"` // the redirect URI shown
	Scope       string    `json:"scope,omitempty"`        // the scope shown
	GrantedAt   time.Time `json:"granted_at"`             // when the user approved
}

// Storage encodings (JSON of the full record). The aliases drop the methods
// so the redacting MarshalJSON of Session and Pending is bypassed.

type (
	clientWire  Client
	pendingWire Pending
	codeWire    Code
	familyWire  Family
	sessionWire Session
	consentWire Consent
)

// MarshalBinary encodes the client for storage.
func (c *Client) MarshalBinary() ([]byte, error) { return json.Marshal((*clientWire)(c)) }

// UnmarshalBinary decodes a client encoded by MarshalBinary.
func (c *Client) UnmarshalBinary(b []byte) error { return decode(b, (*clientWire)(c)) }

// MarshalBinary encodes the pending authorization for storage, secrets
// included.
func (p *Pending) MarshalBinary() ([]byte, error) { return json.Marshal((*pendingWire)(p)) }

// UnmarshalBinary decodes a pending authorization encoded by MarshalBinary.
func (p *Pending) UnmarshalBinary(b []byte) error { return decode(b, (*pendingWire)(p)) }

// MarshalBinary encodes the code grant for storage.
func (c *Code) MarshalBinary() ([]byte, error) { return json.Marshal((*codeWire)(c)) }

// UnmarshalBinary decodes a code grant encoded by MarshalBinary.
func (c *Code) UnmarshalBinary(b []byte) error { return decode(b, (*codeWire)(c)) }

// MarshalBinary encodes the family for storage.
func (f *Family) MarshalBinary() ([]byte, error) { return json.Marshal((*familyWire)(f)) }

// UnmarshalBinary decodes a family encoded by MarshalBinary.
func (f *Family) UnmarshalBinary(b []byte) error { return decode(b, (*familyWire)(f)) }

// MarshalBinary encodes the session for storage, upstream tokens included.
func (s *Session) MarshalBinary() ([]byte, error) { return json.Marshal((*sessionWire)(s)) }

// UnmarshalBinary decodes a session encoded by MarshalBinary.
func (s *Session) UnmarshalBinary(b []byte) error { return decode(b, (*sessionWire)(s)) }

// MarshalBinary encodes the consent for storage.
func (c *Consent) MarshalBinary() ([]byte, error) { return json.Marshal((*consentWire)(c)) }

// UnmarshalBinary decodes a consent encoded by MarshalBinary.
func (c *Consent) UnmarshalBinary(b []byte) error { return decode(b, (*consentWire)(c)) }

func decode(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("upstream: decode stored record: %w", err)
	}
	return nil
}

const redacted = "[REDACTED]"

func redact(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// redactedSession is what a Session shows outside storage.
func (s *Session) redactedCopy() sessionWire {
	c := sessionWire(*s)
	c.AccessToken = redact(c.AccessToken)
	c.RefreshToken = redact(c.RefreshToken)
	c.IDToken = redact(c.IDToken)
	return c
}

// String describes the session without its tokens.
func (s Session) String() string {
	return fmt.Sprintf("upstream.Session{TSID:%q Upstream:%q Subject:%q Expiry:%s Version:%d tokens:%s}",
		s.TSID, s.Upstream, s.Subject, s.Expiry.Format(time.RFC3339), s.Version, redacted)
}

// GoString is String: %#v never prints the tokens.
func (s Session) GoString() string { return s.String() }

// Format prints String for every verb, so no verb prints the tokens.
func (s Session) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue logs the session without its tokens.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(slog.String("tsid", s.TSID), slog.String("upstream", s.Upstream),
		slog.String("sub", s.Subject), slog.Time("expiry", s.Expiry), slog.Uint64("version", s.Version))
}

// MarshalJSON encodes the session with its tokens redacted. Stores use
// MarshalBinary.
func (s Session) MarshalJSON() ([]byte, error) { return json.Marshal(s.redactedCopy()) }

func (p *Pending) redactedCopy() pendingWire {
	c := pendingWire(*p)
	c.UpstreamVerifier = redact(c.UpstreamVerifier)
	c.Nonce = redact(c.Nonce)
	return c
}

// String describes the pending authorization without its verifier and nonce.
func (p Pending) String() string {
	return fmt.Sprintf("upstream.Pending{ClientID:%q RedirectURI:%q Resource:%q Upstream:%q secrets:%s}",
		p.ClientID, p.RedirectURI, p.Resource, p.Upstream, redacted)
}

// GoString is String.
func (p Pending) GoString() string { return p.String() }

// Format prints String for every verb.
func (p Pending) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(p.String())) }

// LogValue logs the pending authorization without its secrets.
func (p Pending) LogValue() slog.Value {
	return slog.GroupValue(slog.String("client_id", p.ClientID), slog.String("redirect_uri", p.RedirectURI),
		slog.String("resource", p.Resource), slog.String("upstream", p.Upstream))
}

// MarshalJSON encodes the pending authorization with its secrets redacted.
// Stores use MarshalBinary.
func (p Pending) MarshalJSON() ([]byte, error) { return json.Marshal(p.redactedCopy()) }
