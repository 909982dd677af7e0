package outbound

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// minSubstringLen is the shortest inbound token that is also searched for
// inside larger values (JSON in a header, a token in a longer query value or
// path). Shorter tokens are only matched whole, so that a short token does
// not refuse requests in which it happens to occur by chance.
const minSubstringLen = 16

// CheckPassthrough returns an error wrapping [ErrPassthrough] when req
// carries token anywhere but the header the guard owns, and nil when token
// is empty (nothing to leak).
//
// The token is looked for in every header name and value (the owned
// header's value excepted) and every trailer name and value; as the
// credentials of a "<scheme> <credentials>" value (Bearer, DPoP, Token, …);
// as the user-id or the password of a Basic credential (RFC 7617); as a
// cookie name or value; in the URL's user info; and as a query parameter
// name or value, raw or unescaped, whatever the separator ('&' or ';').
// Tokens of 16 bytes or more are also searched for
// as a substring of each of those values, of the URL's host, path and raw
// query, and of the Host override (a token wrapped in JSON, for instance).
// Whole-value comparisons are constant-time for equal lengths; the
// substring search is not, which is acceptable because its only secret
// operand is the caller's own token. The body is not inspected. The check
// allocates nothing unless it decodes a Basic credential or unescapes a
// query part long enough to hold the token.
//
// The error names where the token was found ("header Authorization",
// "header Cookie", "trailer X-…", "a header name", "query parameter", "URL
// path", "URL host", "URL user info"), never the token.
func (g *Guard) CheckPassthrough(req *http.Request, token string) error {
	if token == "" {
		return nil
	}
	for name, values := range req.Header {
		if g.header != "" && len(name) == len(g.header) && strings.EqualFold(name, g.header) {
			continue // replaced by Send, whatever it holds
		}
		for _, v := range values {
			if headerCarries(name, v, token) {
				return fmt.Errorf("%s%w: header %s", g.prefix, ErrPassthrough, name)
			}
		}
		if nameCarries(name, token) {
			return fmt.Errorf("%s%w: a header name", g.prefix, ErrPassthrough)
		}
	}
	for name, values := range req.Trailer {
		for _, v := range values {
			if headerCarries(name, v, token) {
				return fmt.Errorf("%s%w: trailer %s", g.prefix, ErrPassthrough, name)
			}
		}
		if nameCarries(name, token) {
			return fmt.Errorf("%s%w: a trailer name", g.prefix, ErrPassthrough)
		}
	}
	long := len(token) >= minSubstringLen
	if long && strings.Contains(req.Host, token) {
		return fmt.Errorf("%s%w: header Host", g.prefix, ErrPassthrough)
	}
	u := req.URL
	if u == nil {
		return nil
	}
	if u.User != nil {
		p, _ := u.User.Password()
		if valueCarries(u.User.Username(), token) || valueCarries(p, token) {
			return fmt.Errorf("%s%w: URL user info", g.prefix, ErrPassthrough)
		}
	}
	if long && strings.Contains(u.Host, token) {
		return fmt.Errorf("%s%w: URL host", g.prefix, ErrPassthrough)
	}
	if long && (strings.Contains(u.Path, token) || strings.Contains(u.RawPath, token) || strings.Contains(u.Opaque, token)) {
		return fmt.Errorf("%s%w: URL path", g.prefix, ErrPassthrough)
	}
	if u.RawQuery != "" {
		// The raw form catches an unencoded token even in a query that
		// url.ParseQuery would reject; queryCarries catches escaped ones
		// and short tokens that are a whole name or value.
		if long && strings.Contains(u.RawQuery, token) || queryCarries(u.RawQuery, token) {
			return fmt.Errorf("%s%w: query parameter", g.prefix, ErrPassthrough)
		}
	}
	return nil
}

// nameCarries reports whether a header or trailer name carries token: a
// name is sent as it is in the map (a JWT consists of token characters, so
// it is a valid field name), and compared case-insensitively because field
// names are.
func nameCarries(name, token string) bool {
	if len(name) < len(token) {
		return false
	}
	return len(name) == len(token) && strings.EqualFold(name, token) ||
		len(token) >= minSubstringLen && strings.Contains(name, token)
}

// headerCarries reports whether the header value v carries token.
func headerCarries(name, v, token string) bool {
	// Nothing in a header value encodes a token in fewer bytes than the
	// token itself (base64 and quoting only add), so a shorter value cannot
	// carry it.
	if len(v) < len(token) {
		return false
	}
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
				if valueCarries(user, token) || valueCarries(pass, token) {
					return true
				}
			}
		}
	}
	if len(name) == len("Cookie") && strings.EqualFold(name, "Cookie") {
		for rest := v; rest != ""; {
			var part string
			part, rest, _ = strings.Cut(rest, ";")
			k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			if equal(strings.Trim(val, `"`), token) || equal(k, token) {
				return true
			}
		}
	}
	return false
}

// valueCarries reports whether v is the token once trimmed (net/http trims
// header values on the wire), or contains it when the token is long enough
// for a substring match to be meaningful.
func valueCarries(v, token string) bool {
	if equal(strings.TrimSpace(v), token) {
		return true
	}
	return len(token) >= minSubstringLen && strings.Contains(v, token)
}

// queryCarries reports whether a name or value of the raw query carries
// token, raw or unescaped. It splits the query itself rather than calling
// url.ParseQuery, which allocates a map on every request, and unescapes
// only the parts that need it.
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
			if queryPartCarries(k, token) || queryPartCarries(v, token) {
				return true
			}
		}
	}
	return false
}

func queryPartCarries(s, token string) bool {
	// Unescaping never lengthens a part, so a part shorter than the token
	// cannot carry it, raw or unescaped: skip it without allocating.
	if len(s) < len(token) {
		return false
	}
	if valueCarries(s, token) {
		return true
	}
	if !strings.ContainsAny(s, "%+") {
		return false
	}
	return valueCarries(unescapeLenient(s), token)
}

// unescapeLenient decodes '+' and every valid %XX escape of a query part
// and keeps an invalid escape as it is, so that a malformed escape next to
// an escaped token does not hide the token (url.QueryUnescape would fail on
// the whole part).
func unescapeLenient(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
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
