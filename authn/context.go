package authn

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// TokenInfo is the verified identity behind a request. It is what crosses
// from inbound verification to authorization and to outbound transports.
//
// A TokenInfo never prints, logs or marshals the raw token: String, GoString,
// Format, LogValue and MarshalJSON all leave it out. Treat a TokenInfo from a
// cache as read-only; it may be shared by concurrent requests.
type TokenInfo struct {
	Issuer   string    // iss
	Subject  string    // sub
	ClientID string    // client_id, or azp when client_id is absent
	Audience []string  // aud, always as a list
	Scopes   []string  // scope (space-separated) or scp (list)
	Expiry   time.Time // exp; zero if the token has none (introspection only)
	IssuedAt time.Time // iat; zero if absent
	// Claims holds every claim of the token (JWT payload or introspection
	// response), including the registered ones above. JSON numbers are
	// float64 unless they came from introspection with UseNumber semantics.
	Claims map[string]any

	// raw is the bearer token itself (see Token), behind a pointer so that
	// fmt and slog print an address, not the token, for a TokenInfo value:
	// the redacting methods below are on *TokenInfo and a dereferenced or
	// embedded value does not have them.
	raw *string
}

// tokenInfoWithRaw lets WithToken allocate the copy and its token pointer
// together, as one object.
type tokenInfoWithRaw struct {
	info TokenInfo
	raw  string
}

// Token returns the raw bearer token this identity was verified from. It is
// for outbound token exchange (RFC 8693 subject_token) and passthrough guards
// only: never log, print or forward it to a backend.
func (t *TokenInfo) Token() string {
	if t == nil || t.raw == nil {
		return ""
	}
	return *t.raw
}

// WithToken returns a shallow copy of t that carries raw as its bearer token.
// Custom [TokenVerifier] implementations and tests use it.
func (t *TokenInfo) WithToken(raw string) *TokenInfo {
	c := &tokenInfoWithRaw{info: *t, raw: raw}
	c.info.raw = &c.raw
	return &c.info
}

// HasScope reports whether the token was granted scope s.
func (t *TokenInfo) HasScope(s string) bool {
	return t != nil && slices.Contains(t.Scopes, s)
}

// MissingScopes returns the scopes in required that t was not granted, in
// the order given, or nil if it has them all.
func (t *TokenInfo) MissingScopes(required []string) []string {
	var missing []string
	for _, s := range required {
		if !t.HasScope(s) {
			missing = append(missing, s)
		}
	}
	return missing
}

// String describes the identity without the token.
func (t *TokenInfo) String() string {
	if t == nil {
		return "<nil>"
	}
	return fmt.Sprintf("TokenInfo{iss=%q sub=%q client_id=%q aud=%q scopes=%q exp=%s token=REDACTED}",
		t.Issuer, t.Subject, t.ClientID, t.Audience, t.Scopes, t.Expiry.UTC().Format(time.RFC3339))
}

// GoString is String, so %#v does not reveal the token either.
func (t *TokenInfo) GoString() string { return t.String() }

// Format makes every fmt verb print String.
func (t *TokenInfo) Format(f fmt.State, verb rune) { _, _ = fmt.Fprint(f, t.String()) }

// LogValue implements [slog.LogValuer] without the token.
func (t *TokenInfo) LogValue() slog.Value {
	if t == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(
		slog.String("iss", t.Issuer),
		slog.String("sub", t.Subject),
		slog.String("client_id", t.ClientID),
		slog.Any("scopes", t.Scopes),
	)
}

// MarshalJSON encodes the identity without the raw token.
func (t *TokenInfo) MarshalJSON() ([]byte, error) {
	type public struct {
		Issuer   string         `json:"iss,omitempty"`
		Subject  string         `json:"sub,omitempty"`
		ClientID string         `json:"client_id,omitempty"`
		Audience []string       `json:"aud,omitempty"`
		Scopes   []string       `json:"scopes,omitempty"`
		Expiry   *time.Time     `json:"exp,omitempty"`
		Claims   map[string]any `json:"claims,omitempty"`
	}
	p := public{Issuer: t.Issuer, Subject: t.Subject, ClientID: t.ClientID, Audience: t.Audience, Scopes: t.Scopes, Claims: t.Claims}
	if !t.Expiry.IsZero() {
		p.Expiry = &t.Expiry
	}
	return json.Marshal(p)
}

type ctxKey struct{}

// NewContext returns a copy of ctx carrying info.
func NewContext(ctx context.Context, info *TokenInfo) context.Context {
	return context.WithValue(ctx, ctxKey{}, info)
}

// FromContext returns the verified identity stored by [Middleware] or
// [NewContext], and whether there was one.
func FromContext(ctx context.Context) (*TokenInfo, bool) {
	info, ok := ctx.Value(ctxKey{}).(*TokenInfo)
	return info, ok && info != nil
}

// TokenVerifier verifies a bearer token. [Verifier] and [MultiVerifier]
// implement it; so can a five-line fake in a user's tests.
//
// Verify returns an error matching ErrInvalidToken (and ErrExpired when
// expired) for token faults, or ErrUnavailable when it cannot decide.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*TokenInfo, error)
}

// VerifierFunc adapts a function to [TokenVerifier].
type VerifierFunc func(ctx context.Context, token string) (*TokenInfo, error)

// Verify calls f.
func (f VerifierFunc) Verify(ctx context.Context, token string) (*TokenInfo, error) {
	return f(ctx, token)
}
