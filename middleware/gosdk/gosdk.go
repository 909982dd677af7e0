package gosdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/modelcontextprotocol/go-sdk/auth"
)

// Keys of auth.TokenInfo.Extra filled by [TokenInfo].
const (
	// ExtraIssuer holds the token's issuer (iss), a string.
	ExtraIssuer = "iss"
	// ExtraSubject holds the token's subject (sub), a string.
	ExtraSubject = "sub"
	// ExtraClientID holds the client the token was issued to (client_id or
	// azp), a string; absent when the token names none.
	ExtraClientID = "client_id"
	// ExtraAudience holds the token's audiences (aud), a []string.
	ExtraAudience = "aud"
	// ExtraIdentity holds the verified identity, an *authn.TokenInfo; read
	// it with [FromTokenInfo].
	ExtraIdentity = "mcpauth.identity"
)

// ErrNoIdentity is returned when a request reaching [Middleware] carries no
// verified identity: Middleware was not put behind authn's middleware (or
// middleware.Protect).
var ErrNoIdentity = errors.New("gosdk: no verified identity in the request context")

// errUserID is the cause of every identity that cannot be turned into a
// UserID.
var errUserID = errors.New("gosdk: identity cannot be issuer-qualified")

// UserID returns the issuer-qualified subject "<iss>#<sub>" that the SDK
// compares to bind a session to its user. It fails for an empty issuer or
// subject, and for an issuer containing "#" (not a valid issuer identifier,
// and it would make two (issuer, subject) pairs ambiguous).
func UserID(info *authn.TokenInfo) (string, error) {
	switch {
	case info == nil:
		return "", fmt.Errorf("%w: no identity", errUserID)
	case info.Issuer == "":
		return "", fmt.Errorf("%w: empty issuer", errUserID)
	case strings.Contains(info.Issuer, "#"):
		return "", fmt.Errorf("%w: issuer %q contains '#'", errUserID, info.Issuer)
	case info.Subject == "":
		return "", fmt.Errorf("%w: empty subject (issuer %q)", errUserID, info.Issuer)
	}
	return info.Issuer + "#" + info.Subject, nil
}

// TokenInfo maps mcpauth's verified identity to the SDK's: UserID is
// [UserID], Scopes and Expiration are the token's (Expiration is zero when
// the token had no exp, which introspection allows), and Extra is described
// in the package documentation. The scopes and audience are copies.
func TokenInfo(info *authn.TokenInfo) (*auth.TokenInfo, error) {
	uid, err := UserID(info)
	if err != nil {
		return nil, err
	}
	extra := map[string]any{
		ExtraIssuer:   info.Issuer,
		ExtraSubject:  info.Subject,
		ExtraAudience: slices.Clone(info.Audience),
		ExtraIdentity: info,
	}
	if info.ClientID != "" {
		extra[ExtraClientID] = info.ClientID
	}
	return &auth.TokenInfo{
		UserID:     uid,
		Scopes:     slices.Clone(info.Scopes),
		Expiration: info.Expiry,
		Extra:      extra,
	}, nil
}

// FromTokenInfo returns the mcpauth identity that [TokenInfo] stored in ti,
// and whether there was one. In a tool handler, pass req.Extra.TokenInfo.
func FromTokenInfo(ti *auth.TokenInfo) (*authn.TokenInfo, bool) {
	if ti == nil {
		return nil, false
	}
	info, ok := ti.Extra[ExtraIdentity].(*authn.TokenInfo)
	return info, ok && info != nil
}

// Verifier returns an SDK token verifier for auth.RequireBearerToken that
// verifies with v (an *authn.Verifier, *authn.MultiVerifier, ...) and
// returns [TokenInfo] of the result.
//
// The SDK writes a verifier's error message into the response body, so the
// errors returned are fixed texts that never carry the cause: a token fault
// (authn.ErrInvalidToken, an identity without issuer or subject) matches
// auth.ErrInvalidToken (the SDK answers 401); anything else, such as the
// IdP being unreachable (authn.ErrUnavailable), is another error (the SDK
// answers 500, where mcpauth's middleware would answer 503 with Retry-After).
//
// The SDK checks expiry itself with RequireBearerTokenOptions.ClockSkew
// (zero by default, where authn allows 60 s), and refuses a token without
// expiry unless AllowMissingExpiration: set both to match the verifier.
func Verifier(v authn.TokenVerifier) auth.TokenVerifier {
	if v == nil {
		panic("gosdk: Verifier: nil authn.TokenVerifier")
	}
	return func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		info, err := v.Verify(ctx, token)
		switch {
		case errors.Is(err, authn.ErrUnavailable):
			return nil, errUnavailable
		case err != nil:
			return nil, errInvalid
		}
		ti, err := TokenInfo(info)
		if err != nil {
			return nil, errInvalid
		}
		return ti, nil
	}
}

// Fixed errors for the SDK, whose message becomes the response body.
var (
	errInvalid     = fmt.Errorf("gosdk: %w", auth.ErrInvalidToken)
	errUnavailable = errors.New("gosdk: token verification unavailable")
)

// maxLeeway is the largest clock skew authn allows for exp. Middleware
// passes it to the SDK so that the SDK's second expiry check never refuses
// a token authn has just accepted within its leeway.
const maxLeeway = 5 * time.Minute

// Middleware gives next (the SDK's Streamable HTTP handler) the identity
// that authn's middleware verified for the request, as the SDK's
// [auth.TokenInfo] ([TokenInfo]), so the SDK binds each stateful session to
// its user and refuses other users' requests for it (HTTP 403).
//
// It must run behind authn.Middleware or middleware.Protect (as the handler
// passed to Protect), which verify the token; it does not verify anything
// itself. A request without a verified identity, or with one that cannot be
// issuer-qualified, gets HTTP 500 and never reaches next (fail closed).
//
// It uses auth.RequireBearerToken, the only way to put a TokenInfo in the
// SDK's context, with a verifier reading the identity already in the
// request context.
func Middleware(next http.Handler) http.Handler {
	if next == nil {
		panic("gosdk: Middleware: nil handler")
	}
	fromContext := func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		info, ok := authn.FromContext(ctx)
		if !ok {
			return nil, ErrNoIdentity
		}
		return TokenInfo(info)
	}
	sdk := auth.RequireBearerToken(fromContext, &auth.RequireBearerTokenOptions{
		// authn has decided expiry with its own leeway and Now; an identity
		// without exp (introspection) is authn's call too.
		AllowMissingExpiration: true,
		ClockSkew:              maxLeeway,
	})(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Answer a wiring error ourselves: the SDK would put the error's text
		// in the body.
		info, ok := authn.FromContext(r.Context())
		if !ok {
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		}
		if _, err := UserID(info); err != nil {
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		}
		sdk.ServeHTTP(w, r)
	})
}
