package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpauth-go/mcpauth/authn"
)

// ErrorOptions configures [WriteError] and [HandleErrors].
type ErrorOptions struct {
	// ResourceMetadataURL is the MCP server's RFC 9728 metadata URL, sent
	// as resource_metadata in the 401 challenge so the client can find the
	// authorization server again (prm.MetadataURL gives it). Empty omits
	// the parameter.
	ResourceMetadataURL string

	// RetryAfter is the Retry-After of a 503. Zero means 5 seconds.
	RetryAfter time.Duration
}

// DescReauthenticate is the error_description of the 401 answering
// [ErrReauthenticate].
const DescReauthenticate = "The upstream authorization for this session is no longer valid; log in again."

const descUnavailable = "The session store or the upstream token service is temporarily unavailable."

// WriteError writes the inbound response for an error of a [Transport] (or
// of its [oauth2.TokenSource]) and reports whether it did:
//
//   - [ErrReauthenticate]: 401 with `WWW-Authenticate: Bearer
//     error="invalid_token", error_description="…log in again."` (plus
//     resource_metadata), so an MCP client starts a new login;
//   - [ErrUnavailable] (storage or upstream down): 503 with Retry-After,
//     never 401 — a 401 would log every user out during an outage.
//
// ErrUnavailable wins when an error matches both. For any other error it
// writes nothing and returns false. The body is an RFC 6749-style JSON
// error with a fixed description; the cause is never written.
func WriteError(w http.ResponseWriter, err error, opts ErrorOptions) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrUnavailable):
		ra := opts.RetryAfter
		if ra <= 0 {
			ra = 5 * time.Second
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(max(ra.Round(time.Second), time.Second)/time.Second)))
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", descUnavailable)
		return true
	case errors.Is(err, ErrReauthenticate):
		w.Header().Set("WWW-Authenticate", authn.Challenge{
			Error:            "invalid_token",
			ErrorDescription: DescReauthenticate,
			ResourceMetadata: opts.ResourceMetadataURL,
		}.String())
		writeJSONError(w, http.StatusUnauthorized, "invalid_token", DescReauthenticate)
		return true
	}
	return false
}

func writeJSONError(w http.ResponseWriter, status int, code, desc string) {
	b, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, desc})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// failure records the first Transport failure of an inbound request, for
// HandleErrors.
type failure struct{ err atomic.Pointer[error] }

type failureKey struct{}

// noteFailure records err in the request's failure slot, if HandleErrors
// put one in ctx, when it is an error HandleErrors answers.
func noteFailure(ctx context.Context, err error) {
	f, ok := ctx.Value(failureKey{}).(*failure)
	if !ok || !(errors.Is(err, ErrUnavailable) || errors.Is(err, ErrReauthenticate)) {
		return
	}
	f.err.CompareAndSwap(nil, &err)
}

// HandleErrors returns middleware for the MCP handler whose backend calls
// go through a [Transport]. When such a call fails with [ErrReauthenticate]
// or [ErrUnavailable] before the handler has sent its response status, the
// inbound request is answered as [WriteError] says (401 invalid_token, or
// 503 with Retry-After) and what the handler writes is discarded. That is
// what an MCP client needs: an SDK handler would otherwise turn the failed
// backend call into a tool result with status 200, and the client would
// never learn that it must log in again.
//
// The failure travels in the request context, so the backend call must use
// a context derived from the inbound request's (req.Context()), as any
// handler should. A response the handler has already started (headers
// flushed, a stream open) cannot be changed and is left alone. Put it
// inside authn's middleware.
func HandleErrors(opts ErrorOptions) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f := new(failure)
			fw := &failureWriter{ResponseWriter: w, f: f, opts: opts}
			next.ServeHTTP(fw, r.WithContext(context.WithValue(r.Context(), failureKey{}, f)))
			fw.decide()
		})
	}
}

// failureWriter replaces the handler's response with the recorded failure's,
// deciding at the handler's first WriteHeader, Write or Flush (or when it
// returns without writing).
type failureWriter struct {
	http.ResponseWriter
	f    *failure
	opts ErrorOptions

	once     sync.Once
	replaced bool
}

// decide writes the failure response if one was recorded; it runs once.
func (fw *failureWriter) decide() {
	fw.once.Do(func() {
		if p := fw.f.err.Load(); p != nil {
			// The handler's headers belong to the response it meant to
			// send, not to this one.
			clear(fw.ResponseWriter.Header())
			fw.replaced = WriteError(fw.ResponseWriter, *p, fw.opts)
		}
	})
}

func (fw *failureWriter) WriteHeader(status int) {
	fw.decide()
	if !fw.replaced {
		fw.ResponseWriter.WriteHeader(status)
	}
}

func (fw *failureWriter) Write(b []byte) (int, error) {
	fw.decide()
	if fw.replaced {
		return len(b), nil // discarded: the failure response was sent
	}
	return fw.ResponseWriter.Write(b)
}

// Flush implements http.Flusher when the underlying writer does.
func (fw *failureWriter) Flush() {
	fw.decide()
	if fw.replaced {
		return
	}
	if fl, ok := fw.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (fw *failureWriter) Unwrap() http.ResponseWriter { return fw.ResponseWriter }

// TokenSource returns an [oauth2.TokenSource] for the caller verified in
// ctx, for SDK clients that take one: each Token call returns that
// session's fresh upstream access token (refreshed as [Transport] does),
// without the refresh token. Use it for the request ctx belongs to only;
// its errors are the Transport's.
func (t *Transport) TokenSource(ctx context.Context) oauth2.TokenSource {
	return tokenSource{t: t, ctx: ctx}
}

type tokenSource struct {
	t   *Transport
	ctx context.Context
}

// Token implements [oauth2.TokenSource].
func (ts tokenSource) Token() (*oauth2.Token, error) {
	s, err := ts.t.session(ts.ctx)
	if err != nil {
		noteFailure(ts.ctx, err)
		return nil, err
	}
	typ := s.TokenType
	if typ == "" {
		typ = "Bearer"
	}
	return &oauth2.Token{AccessToken: s.AccessToken, TokenType: typ, Expiry: s.Expiry}, nil
}
