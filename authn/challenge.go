package authn

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpauth-go/mcpauth/internal/httpauth"
)

// ErrInvalidRequest means the request presented its bearer token in a way
// RFC 6750 forbids: two Authorization headers (or two credentials in one)
// or an access_token query parameter. [Middleware] answers it with 400
// invalid_request. A single Bearer credential that is not token68 is a
// malformed token instead (ErrInvalidToken, 401 invalid_token).
var ErrInvalidRequest = errors.New("authn: invalid bearer token request")

// Challenge is one RFC 6750 §3 Bearer challenge, with the RFC 9728 §5.1
// resource_metadata parameter, as sent in WWW-Authenticate.
//
// String never produces a header that could be split or re-parsed
// differently: every value is emitted as a quoted-string from which
// characters outside the RFC 6750 §3 sets are removed (for error,
// error_description, realm and resource_metadata: %x20-21 / %x23-5B /
// %x5D-7E; for each scope token: %x21 / %x23-5B / %x5D-7E). That removes
// CR, LF, other controls, '"', '\' and non-ASCII text, so no escaping is
// ever needed.
type Challenge struct {
	Realm            string   // realm; omitted if empty
	Error            string   // "", "invalid_request", "invalid_token" or "insufficient_scope"
	ErrorDescription string   // fixed public text; never a cause or a token
	Scopes           []string // scope="a b"; omitted if empty
	ResourceMetadata string   // resource_metadata URL; omitted if empty
}

// String returns the header value, e.g.
// `Bearer error="invalid_token", error_description="…", resource_metadata="https://…"`.
// Parameters appear in the fixed order realm, error, error_description,
// scope, resource_metadata; a parameter whose sanitized value is empty is
// omitted, and a challenge with no parameters is just "Bearer".
func (c Challenge) String() string {
	var b strings.Builder
	b.Grow(64 + len(c.Realm) + len(c.Error) + len(c.ErrorDescription) + len(c.ResourceMetadata))
	b.WriteString("Bearer")
	first := true
	param := func(name, value string) {
		if value == "" {
			return
		}
		if first {
			b.WriteByte(' ')
			first = false
		} else {
			b.WriteString(", ")
		}
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(value)
		b.WriteByte('"')
	}
	param("realm", sanitizeChallenge(c.Realm, true))
	param("error", sanitizeChallenge(c.Error, true))
	param("error_description", sanitizeChallenge(c.ErrorDescription, true))
	param("scope", challengeScopes(c.Scopes))
	param("resource_metadata", sanitizeChallenge(c.ResourceMetadata, true))
	return b.String()
}

// challengeChar reports whether ch may appear in a challenge value: RFC 6750
// NQSCHAR (%x20-21 / %x23-5B / %x5D-7E) when space is true, NQCHAR
// (the same without %x20) otherwise.
func challengeChar(ch byte, space bool) bool {
	switch {
	case ch == ' ':
		return space
	case ch == '"' || ch == '\\':
		return false
	default:
		return ch >= 0x21 && ch <= 0x7e
	}
}

// sanitizeChallenge removes the bytes that challengeChar refuses. It does not allocate
// when s is already clean, which is the case for every configured value.
func sanitizeChallenge(s string, space bool) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if !challengeChar(s[i], space) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if challengeChar(s[i], space) {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// challengeScopes joins the sanitized, non-empty scope tokens with single spaces.
func challengeScopes(scopes []string) string {
	var b strings.Builder
	for _, s := range scopes {
		s = sanitizeChallenge(s, false)
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}

// BearerToken extracts the RFC 6750 §2.1 bearer token from r's
// Authorization header. It returns:
//
//   - ErrNoToken when there is no Authorization header, the scheme is not
//     Bearer, or the Bearer credential is empty (401 without an error code);
//   - ErrInvalidRequest when the request presents more than one credential
//     (the header appears more than once, or one header comma-combines a
//     second credential) or the URL has an access_token query parameter,
//     with or without a header (RFC 6750 §2.3 is never accepted; a token in
//     the URL leaks to logs and caches);
//   - an error matching ErrInvalidToken when the one Bearer credential is
//     not token68: characters such as '?', '*', '%', NUL or non-ASCII, a JWS
//     JSON serialization, bare JSON, a tab after the scheme (RFC 6750 §3.1
//     lists a malformed token under invalid_token).
//
// The scheme is matched case-insensitively (RFC 9110 §11.1). The form-body
// method (RFC 6750 §2.2) is never read or accepted.
func BearerToken(r *http.Request) (string, error) {
	return parseBearer(r.Header.Values("Authorization"), r.URL.RawQuery)
}

// parseBearer is BearerToken on the raw inputs, so it can be fuzzed.
func parseBearer(values []string, rawQuery string) (string, error) {
	if queryHasAccessToken(rawQuery) {
		return "", ErrInvalidRequest
	}
	switch len(values) {
	case 0:
		return "", ErrNoToken
	case 1:
	default:
		return "", ErrInvalidRequest
	}
	v := strings.Trim(values[0], " \t")
	const scheme = "bearer"
	if !hasBearerScheme(v) {
		// Another scheme, or none. A Bearer credential comma-combined
		// after another one ("Basic …, Bearer …") is two credentials.
		if _, after, found := strings.Cut(v, ","); found {
			for part := range strings.SplitSeq(after, ",") {
				if hasBearerScheme(strings.TrimLeft(part, " \t")) {
					return "", ErrInvalidRequest
				}
			}
		}
		return "", ErrNoToken
	}
	rest := v[len(scheme):]
	if rest == "" {
		return "", ErrNoToken // "Bearer" with no credential
	}
	if rest[0] == ',' {
		return "", ErrInvalidRequest // "Bearer, Basic …": a second credential
	}
	tok := strings.TrimLeft(rest, " ")
	if rest[0] == ' ' && httpauth.IsToken68(tok) {
		return tok, nil
	}
	// Not one token68 credential. A comma followed by something shaped like
	// another credential ("a, Bearer b", "a,b") is two credentials; anything
	// else (JSON, a JWS JSON serialization, characters outside token68, a
	// tab separator) is one malformed token (RFC 6750 §3.1 invalid_token).
	for _, part := range strings.Split(tok, ",")[1:] {
		if credentialStart(strings.TrimLeft(part, " \t")) {
			return "", ErrInvalidRequest
		}
	}
	return "", errMalformedToken
}

// errMalformedToken is BearerToken's answer to a Bearer credential that is
// not token68. It matches ErrInvalidToken.
var errMalformedToken error = &tokenError{kind: ErrInvalidToken, cause: "the bearer credential is not token68"}

// credentialStart reports whether s begins like an RFC 9110 credentials
// production: an auth-scheme (1*tchar) followed by a space or the end.
func credentialStart(s string) bool {
	n := 0
	for n < len(s) && isTChar(s[n]) {
		n++
	}
	return n > 0 && (n == len(s) || s[n] == ' ')
}

// hasBearerScheme reports whether v starts with the Bearer scheme name,
// in any case, followed by the end of v or a non-token character.
func hasBearerScheme(v string) bool {
	const scheme = "bearer"
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return false
	}
	return len(v) == len(scheme) || !isTChar(v[len(scheme)])
}

// queryHasAccessToken reports whether rawQuery carries an access_token
// parameter, even an empty one or one with a percent-encoded name.
func queryHasAccessToken(rawQuery string) bool {
	if rawQuery == "" {
		return false
	}
	for part := range strings.SplitSeq(rawQuery, "&") {
		// Semicolons are no longer separators (Go 1.17), but a server
		// behind a proxy that treats them as such could still see the
		// parameter, so split on them too.
		for kv := range strings.SplitSeq(part, ";") {
			k, _, _ := strings.Cut(kv, "=")
			if k == "access_token" {
				return true
			}
			if strings.ContainsAny(k, "%+") {
				if dk, err := url.QueryUnescape(k); err == nil && dk == "access_token" {
					return true
				}
			}
		}
	}
	return false
}

// isTChar reports whether c is an RFC 9110 tchar.
func isTChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
