package credentials

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpauth-go/mcpauth/authn"
)

// ErrTokenPassthrough is returned (wrapped) when an outgoing request carries
// the bearer token the MCP client sent to this server. MCP forbids token
// passthrough: a server MUST NOT pass the token it received from the client
// on to an upstream API (MCP authorization, "Access Token Privilege
// Restriction"; security best practices, "Token Passthrough").
var ErrTokenPassthrough = errors.New("credentials: request carries the inbound access token (token passthrough)")

// minSubstringLen is the shortest inbound token that is also searched for
// inside larger values (JSON in a header, a token in a longer query value).
// Shorter tokens are only matched exactly, to avoid refusing requests
// because a short token happens to occur inside unrelated text.
const minSubstringLen = 16

// CheckPassthrough returns an error if req would send the inbound token of
// the verified caller in its context ([authn.FromContext], raw token from
// [authn.TokenInfo.Token]) to a backend. It returns nil when the context has
// no identity or the identity has no raw token: then there is nothing to
// leak.
//
// The token is looked for in every header and trailer value and every query parameter
// value; in the URL's user info (and, for long tokens, its path); as the credentials part of a
// "<scheme> <credentials>" value (Bearer, DPoP, Token, …); in the user-id
// and password of a Basic credential (RFC 7617); and in each cookie value.
// These comparisons are constant-time for equal lengths. Tokens of 16 bytes
// or more are also searched for as a substring of each header and query
// value (a token wrapped in JSON, for instance); that search is not
// constant-time, which is acceptable because its only secret operand is the
// caller's own token. The request body is not inspected.
//
// The error wraps [ErrTokenPassthrough] and names where the token was found
// ("header Authorization", "trailer X-…", "query parameter", "URL path",
// "URL user info"), never the token. Note that an [http.Client] wraps a
// transport's error in a *url.Error that quotes the request URL: when the
// token was found in the URL, the client's error text contains it, so log
// errors.Unwrap of that error rather than the error itself.
func CheckPassthrough(req *http.Request) error {
	info, ok := authn.FromContext(req.Context())
	if !ok {
		return nil
	}
	token := info.Token()
	if token == "" {
		return nil
	}
	for _, h := range [...]struct {
		kind   string
		fields http.Header
	}{{"header", req.Header}, {"trailer", req.Trailer}} {
		for name, values := range h.fields {
			for _, v := range values {
				if headerCarries(name, v, token) {
					return fmt.Errorf("%w: %s %s", ErrTokenPassthrough, h.kind, name)
				}
			}
		}
	}
	if req.URL != nil {
		if u := req.URL.User; u != nil {
			p, _ := u.Password()
			if equal(u.Username(), token) || equal(p, token) {
				return fmt.Errorf("%w: URL user info", ErrTokenPassthrough)
			}
		}
		long := len(token) >= minSubstringLen
		if long && (strings.Contains(req.URL.Path, token) || strings.Contains(req.URL.RawPath, token) ||
			strings.Contains(req.URL.Opaque, token)) {
			return fmt.Errorf("%w: URL path", ErrTokenPassthrough)
		}
		if req.URL.RawQuery != "" {
			// The raw form catches an unencoded token even in a query that
			// url.ParseQuery would reject; queryCarries catches encoded ones
			// and short tokens that are a whole name or value.
			if long && strings.Contains(req.URL.RawQuery, token) {
				return fmt.Errorf("%w: query parameter", ErrTokenPassthrough)
			}
			if queryCarries(req.URL.RawQuery, token) {
				return fmt.Errorf("%w: query parameter", ErrTokenPassthrough)
			}
		}
	}
	return nil
}

// headerCarries reports whether the header value v carries token.
func headerCarries(name, v, token string) bool {
	if valueCarries(v, token) {
		return true
	}
	v = strings.TrimSpace(v)
	// "<scheme> <credentials>" (RFC 9110 §11.4); covers Bearer, DPoP, Token.
	if i := strings.IndexAny(v, " \t"); i > 0 {
		scheme, cred := v[:i], strings.TrimSpace(v[i+1:])
		if equal(cred, token) {
			return true
		}
		// The user-id and the password are each no longer than the decoded
		// credential, so a longer token can be neither: skip decoding (and
		// its allocations), as for an inbound JWT beside a service password.
		if strings.EqualFold(scheme, "Basic") && len(token) <= base64.StdEncoding.DecodedLen(len(cred)) {
			if raw, err := base64.StdEncoding.DecodeString(cred); err == nil {
				user, pass, _ := strings.Cut(string(raw), ":")
				if equal(user, token) || equal(pass, token) {
					return true
				}
			}
		}
	}
	if strings.EqualFold(name, "Cookie") {
		for part := range strings.SplitSeq(v, ";") {
			_, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			if equal(strings.Trim(val, `"`), token) {
				return true
			}
		}
	}
	return false
}

// valueCarries reports whether v is the token, or contains it when the
// token is long enough for a substring match to be meaningful.
func valueCarries(v, token string) bool {
	if equal(strings.TrimSpace(v), token) {
		return true
	}
	return len(token) >= minSubstringLen && strings.Contains(v, token)
}

// queryCarries reports whether a name or value of the raw query is the
// token. It splits the query itself rather than calling url.ParseQuery,
// which allocates a map on every request, and unescapes only the parts
// that need it. Parts that do not unescape are compared raw.
func queryCarries(rawQuery, token string) bool {
	for rawQuery != "" {
		var part string
		part, rawQuery, _ = strings.Cut(rawQuery, "&")
		// ';' is not a separator for url.ParseQuery, but some servers
		// accept it; splitting on it as well only adds candidates.
		for part != "" {
			var kv string
			kv, part, _ = strings.Cut(part, ";")
			k, v, _ := strings.Cut(kv, "=")
			if valueCarries(unescapeQuery(v), token) || equal(unescapeQuery(k), token) {
				return true
			}
		}
	}
	return false
}

func unescapeQuery(s string) string {
	if strings.ContainsAny(s, "%+") {
		if u, err := url.QueryUnescape(s); err == nil {
			return u
		}
	}
	return s
}

// equal compares two strings in time that depends on their lengths only
// (crypto/subtle.ConstantTimeCompare without the []byte conversions, which
// would allocate for values longer than 32 bytes).
func equal(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		v |= a[i] ^ b[i]
	}
	return subtle.ConstantTimeByteEq(v, 0) == 1
}

// PassthroughGuard is an [http.RoundTripper] that refuses to send a request
// for which [CheckPassthrough] fails: the request is not sent, its body is
// closed, and the error wraps [ErrTokenPassthrough]. Put it in front of any
// outbound transport of an MCP server — in particular one that copies
// headers from inbound requests — so a mistake cannot forward the client's
// token. Requests whose context has no verified identity pass unchanged.
//
// The zero value is ready to use and sends through http.DefaultTransport.
// A PassthroughGuard never modifies the request; it is safe for concurrent
// use.
type PassthroughGuard struct {
	// Base sends the requests that pass the check. If nil,
	// http.DefaultTransport is used.
	Base http.RoundTripper
}

// NewPassthroughGuard returns a PassthroughGuard sending through base.
func NewPassthroughGuard(base http.RoundTripper) *PassthroughGuard {
	return &PassthroughGuard{Base: base}
}

// RoundTrip implements [http.RoundTripper].
func (g *PassthroughGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := CheckPassthrough(req); err != nil {
		closeBody(req)
		return nil, err
	}
	base := g.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req)
}
