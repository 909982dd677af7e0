package outbound

import (
	"fmt"
	"net/http"
	"strings"
)

// refusedHeaders lists, in canonical form, the headers that cannot carry a
// credential, with the reason given in the error.
var refusedHeaders = map[string]string{
	"Connection":          "hop-by-hop header (RFC 9110 §7.6.1)",
	"Keep-Alive":          "hop-by-hop header (RFC 9110 §7.6.1)",
	"Proxy-Authenticate":  "hop-by-hop header (RFC 9110 §7.6.1)",
	"Proxy-Authorization": "hop-by-hop header (RFC 9110 §7.6.1)",
	"Proxy-Connection":    "hop-by-hop header (RFC 9110 §7.6.1)",
	"Te":                  "hop-by-hop header (RFC 9110 §7.6.1)",
	"Trailer":             "hop-by-hop header (RFC 9110 §7.6.1)",
	"Transfer-Encoding":   "hop-by-hop header (RFC 9110 §7.6.1)",
	"Upgrade":             "hop-by-hop header (RFC 9110 §7.6.1)",
	"Host":                "routing header set by net/http",
	"Content-Length":      "framing header set by net/http",
	"Content-Type":        "header describing the body",
	"Cookie":              "cookie header managed by the client's cookie jar",
	"Set-Cookie":          "response header",
}

// CheckHeaderName returns the canonical form of name if a transport may put
// a credential in that header, and an error (without a package prefix)
// otherwise. Refused: names that are not RFC 9110 §5.1 tokens; the
// hop-by-hop headers of RFC 9110 §7.6.1 (Connection, Keep-Alive,
// Proxy-Authenticate, Proxy-Authorization, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade), which a proxy strips or consumes; Host and
// Content-Length, which net/http computes itself; Content-Type, which
// describes the body; and Cookie and Set-Cookie. Cookie is a list managed
// by the http.Client's cookie jar: replacing it would silently drop the
// jar's cookies, and merging would need cookie-pair syntax.
func CheckHeaderName(name string) (string, error) {
	if !validHeaderName(name) {
		return "", fmt.Errorf("invalid header name %q", name)
	}
	canon := http.CanonicalHeaderKey(name)
	if why, bad := refusedHeaders[canon]; bad {
		return "", fmt.Errorf("refusing to set %s: %s", canon, why)
	}
	return canon, nil
}

// validHeaderName reports whether s is an RFC 9110 §5.1 field name (a token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
