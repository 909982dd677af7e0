package authn

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Options configures [Middleware].
type Options struct {
	// ResourceMetadataURL is the RFC 9728 Protected Resource Metadata URL
	// sent as resource_metadata in every challenge (see prm.MetadataURL).
	ResourceMetadataURL string

	// Scopes are required for every request.
	Scopes []string

	// ScopesFor, if non-nil, returns additional scopes the given request
	// needs (per-route scopes). It must not read the body.
	ScopesFor func(r *http.Request) []string

	// ScopeImplies, if non-nil, reports whether a granted scope implies a
	// required one (a scope hierarchy such as "files" implying "files:read",
	// which the MCP authorization specification requires servers to account
	// for). A required scope is satisfied when it was granted or when any
	// granted scope implies it. If nil, scopes match exactly.
	ScopeImplies func(granted, required string) bool

	// Realm, if non-empty, is sent as the realm parameter.
	Realm string

	// RetryAfter is sent with 503 responses when verification is
	// unavailable. If zero, 30 seconds.
	RetryAfter time.Duration

	// Logger receives rejection causes (never token material). If nil,
	// slog.Default().
	Logger *slog.Logger
}

// The public error descriptions. They are fixed: the cause of a rejection
// goes to the log, never to the client, so a response tells an attacker
// nothing about which check failed.
const (
	descNoToken           = "A bearer token is required."
	descInvalidRequest    = "The request must carry exactly one bearer token, in the Authorization header."
	descInvalidToken      = "The access token is invalid or expired."
	descInsufficientScope = "The access token does not grant every scope this request requires."
	descUnavailable       = "The access token cannot be verified right now; retry later."
)

// Middleware returns a middleware that verifies the bearer token of every
// request with v and passes the request, with the verified [TokenInfo] in
// its context ([FromContext]), to the next handler. The outcomes are fixed
// (RFC 6750 §3, RFC 9728 §5.1, MCP authorization):
//
//   - no token, or another scheme: 401, WWW-Authenticate: Bearer
//     resource_metadata="…" (and scope="…" when scopes are required), no
//     error parameter;
//   - two Authorization headers, two credentials in one, or an
//     access_token query parameter: 400 error="invalid_request";
//   - a Bearer credential that is not token68 (see [BearerToken]), or a
//     token v rejects ([ErrInvalidToken], [ErrExpired]): 401
//     error="invalid_token" with one fixed description for every cause;
//   - a valid token missing a required scope: 403
//     error="insufficient_scope", scope= every scope the request needs
//     (not only the missing ones, so the client can step up in one go);
//   - v cannot decide ([ErrUnavailable]) or fails in any other way: 503
//     with Retry-After and no challenge.
//
// An error from v that matches none of the sentinels is treated as
// unavailable, not as an invalid token: failing closed with 503 keeps the
// request out without telling the client its token is bad, which would send
// it into a pointless re-login loop over what is most likely an outage or a
// bug on this side. Every rejection's cause is logged to opts.Logger (Info
// for client faults, Warn for outages) with the token, if it appears in the
// error text, replaced. Error responses carry a small JSON body with the
// same error code and description, and Cache-Control: no-store.
//
// The scope checks and challenge strings are prepared once, here; with no
// ScopesFor, a request allocates only what v and the context need.
func Middleware(v TokenVerifier, opts Options) func(http.Handler) http.Handler {
	m := newBearerMiddleware(v, opts)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m.serve(w, r, next)
		})
	}
}

type bearerMiddleware struct {
	v          TokenVerifier
	opts       Options
	log        *slog.Logger
	scopes     []string // opts.Scopes, deduplicated
	retryAfter string

	// Prepared responses for the static scope set (used when ScopesFor is
	// nil or returns nothing).
	noToken, badRequest, badToken, forbidden edgeResponse
}

// edgeResponse is a prepared error response.
type edgeResponse struct {
	status    int
	challenge string // WWW-Authenticate value; "" for none
	body      string
}

func newBearerMiddleware(v TokenVerifier, opts Options) *bearerMiddleware {
	if v == nil || isNilVerifier(v) {
		panic("authn: Middleware called with a nil TokenVerifier")
	}
	m := &bearerMiddleware{v: v, opts: opts, log: opts.Logger, scopes: appendUniqueScopes(nil, opts.Scopes)}
	if m.log == nil {
		m.log = slog.Default()
	}
	ra := opts.RetryAfter
	if ra <= 0 {
		ra = 30 * time.Second
	}
	secs := int64((ra + time.Second - 1) / time.Second) // round up, at least 1
	m.retryAfter = strconv.FormatInt(secs, 10)
	m.noToken = m.errorResponse(http.StatusUnauthorized, "", descNoToken, m.scopes)
	m.badRequest = m.errorResponse(http.StatusBadRequest, "invalid_request", descInvalidRequest, nil)
	m.badToken = m.errorResponse(http.StatusUnauthorized, "invalid_token", descInvalidToken, nil)
	m.forbidden = m.errorResponse(http.StatusForbidden, "insufficient_scope", descInsufficientScope, m.scopes)
	return m
}

// errorResponse prepares a response with a challenge.
func (m *bearerMiddleware) errorResponse(status int, code, desc string, scopes []string) edgeResponse {
	c := Challenge{
		Realm:            m.opts.Realm,
		Error:            code,
		Scopes:           scopes,
		ResourceMetadata: m.opts.ResourceMetadataURL,
	}
	if code != "" {
		// RFC 6750 §3: error_description only accompanies an error code.
		c.ErrorDescription = desc
	}
	return edgeResponse{status: status, challenge: c.String(), body: edgeJSONBody(code, desc)}
}

// edgeJSONBody encodes {"error":code,"error_description":desc}. Both are fixed
// ASCII strings of this package, so no escaping is needed.
func edgeJSONBody(code, desc string) string {
	if code == "" {
		return `{"error_description":"` + desc + `"}` + "\n"
	}
	return `{"error":"` + code + `","error_description":"` + desc + `"}` + "\n"
}

func (m *bearerMiddleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	// The rejections are answered by methods of their own: their log
	// attributes would otherwise make this frame, which every request
	// carries below the rest of the stack, a kilobyte (see malformed).
	ctx := r.Context()
	tok, err := BearerToken(r)
	if err != nil {
		m.malformed(w, r, err)
		return
	}

	info, err := m.v.Verify(ctx, tok)
	if err == nil && info == nil {
		err = errors.New("authn: verifier returned neither a TokenInfo nor an error")
	}
	if err != nil {
		m.reject(w, r, tok, err)
		return
	}

	if required := m.required(r); len(required) > 0 {
		if missing := missingScopes(info.Scopes, required, m.opts.ScopeImplies); len(missing) > 0 {
			m.insufficient(w, r, info, missing)
			return
		}
	}

	if info.Token() == "" {
		// A custom verifier may not set the token; the outbound packages
		// need it (RFC 8693 subject_token).
		info = info.WithToken(tok)
	}
	next.ServeHTTP(w, r.WithContext(NewContext(ctx, info)))
}

// malformed answers a request whose bearer token could not be extracted
// (BearerToken's err).
//
// It and the other rejections are kept out of serve (go:noinline): every
// request's stack holds serve's frame under the handler's, and a frame
// grown by these log calls' attributes was enough, with an MCP handler and
// authz's JSON parse above it, to overflow the 8 KB a connection's
// goroutine gets back each time the collector shrinks its stack, so that
// over a real connection most requests paid for copying the stack.
//
//go:noinline
func (m *bearerMiddleware) malformed(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	switch {
	case errors.Is(err, ErrInvalidRequest):
		m.log.LogAttrs(ctx, slog.LevelInfo, "authn: malformed bearer token request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path))
		m.write(w, m.badRequest)
		return
	case errors.Is(err, ErrInvalidToken):
		m.log.LogAttrs(ctx, slog.LevelInfo, "authn: invalid token",
			slog.String("cause", err.Error()),
			slog.String("method", r.Method), slog.String("path", r.URL.Path))
		m.write(w, m.badToken)
		return
	}
	m.write(w, m.withScopes(r, m.noToken, http.StatusUnauthorized, "", descNoToken))
}

// insufficient answers a valid token that lacks the missing scopes (see
// malformed for why it is a method of its own).
//
//go:noinline
func (m *bearerMiddleware) insufficient(w http.ResponseWriter, r *http.Request, info *TokenInfo, missing []string) {
	m.log.LogAttrs(r.Context(), slog.LevelInfo, "authn: insufficient scope",
		slog.String("sub", info.Subject), slog.String("client_id", info.ClientID),
		slog.Any("missing", missing),
		slog.String("method", r.Method), slog.String("path", r.URL.Path))
	m.write(w, m.withScopes(r, m.forbidden, http.StatusForbidden, "insufficient_scope", descInsufficientScope))
}

// reject answers a failed verification (see malformed for why it is a
// method of its own).
//
//go:noinline
func (m *bearerMiddleware) reject(w http.ResponseWriter, r *http.Request, tok string, err error) {
	ctx := r.Context()
	cause := redactToken(err.Error(), tok)
	attrs := []slog.Attr{
		slog.String("cause", cause),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
	}
	switch {
	case errors.Is(err, ErrUnavailable):
		// Checked first: an error that is both (say, a joined error from
		// several verifiers) must not turn an outage into a 401.
		m.log.LogAttrs(ctx, slog.LevelWarn, "authn: token verification unavailable", attrs...)
		m.unavailable(w)
	case errors.Is(err, ErrInvalidToken), errors.Is(err, ErrExpired), errors.Is(err, ErrNoToken):
		m.log.LogAttrs(ctx, slog.LevelInfo, "authn: invalid token", attrs...)
		m.write(w, m.badToken)
	case errors.Is(err, ErrInsufficientScope):
		m.log.LogAttrs(ctx, slog.LevelInfo, "authn: insufficient scope", attrs...)
		m.write(w, m.withScopes(r, m.forbidden, http.StatusForbidden, "insufficient_scope", descInsufficientScope))
	default:
		// Unknown failure: fail closed without blaming the token (see the
		// Middleware doc). A cancelled client is not worth a warning.
		level := slog.LevelWarn
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			level = slog.LevelInfo
		}
		m.log.LogAttrs(ctx, level, "authn: token verification failed", attrs...)
		m.unavailable(w)
	}
}

// redactToken removes tok from s, in case a custom verifier put the token in
// its error text.
func redactToken(s, tok string) string {
	if tok == "" || !strings.Contains(s, tok) {
		return s
	}
	return strings.ReplaceAll(s, tok, "[REDACTED]")
}

func (m *bearerMiddleware) unavailable(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Retry-After", m.retryAfter)
	writeEdgeBody(w, http.StatusServiceUnavailable, edgeJSONBody("temporarily_unavailable", descUnavailable))
}

// required returns every scope r needs: opts.Scopes then ScopesFor(r),
// without duplicates.
func (m *bearerMiddleware) required(r *http.Request) []string {
	if m.opts.ScopesFor == nil {
		return m.scopes
	}
	extra := m.opts.ScopesFor(r)
	if len(extra) == 0 {
		return m.scopes
	}
	return appendUniqueScopes(append([]string(nil), m.scopes...), extra)
}

// withScopes returns the prepared response, or, when r needs more scopes
// than the static ones, the same response built for them.
func (m *bearerMiddleware) withScopes(r *http.Request, prepared edgeResponse, status int, code, desc string) edgeResponse {
	if m.opts.ScopesFor == nil {
		return prepared
	}
	required := m.required(r)
	if len(required) == len(m.scopes) {
		return prepared
	}
	return m.errorResponse(status, code, desc, required)
}

// appendUniqueScopes appends the non-empty scopes of add to dst, skipping those
// already present.
func appendUniqueScopes(dst, add []string) []string {
	for _, s := range add {
		if s == "" {
			continue
		}
		dup := false
		for _, d := range dst {
			if d == s {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, s)
		}
	}
	return dst
}

func (m *bearerMiddleware) write(w http.ResponseWriter, resp edgeResponse) {
	if resp.challenge != "" {
		w.Header().Set("WWW-Authenticate", resp.challenge)
	}
	writeEdgeBody(w, resp.status, resp.body)
}

func writeEdgeBody(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// missingScopes returns the scopes in required that granted neither holds
// nor, through implies, covers.
func missingScopes(granted, required []string, implies func(granted, required string) bool) []string {
	var missing []string
	for _, req := range required {
		ok := false
		for _, g := range granted {
			if g == req || (implies != nil && implies(g, req)) {
				ok = true
				break
			}
		}
		if !ok {
			missing = append(missing, req)
		}
	}
	return missing
}

// isNilVerifier catches a typed nil, such as a (*Verifier)(nil) held in the
// interface, which would otherwise panic on the first request instead of at
// construction.
func isNilVerifier(v TokenVerifier) bool {
	switch x := v.(type) {
	case *Verifier:
		return x == nil
	case *MultiVerifier:
		return x == nil
	case VerifierFunc:
		return x == nil
	}
	return false
}
