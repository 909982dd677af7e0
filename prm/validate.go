package prm

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/mcpauth-go/mcpauth/internal/netutil"
)

// ErrInvalidMetadata matches (with [errors.Is]) every error this package
// returns for an invalid document or resource identifier. The error text
// names the member and the problem.
var ErrInvalidMetadata = errors.New("prm: invalid metadata")

// validationError is one configuration problem. Its message starts with
// "prm: " and names the member at fault; it matches ErrInvalidMetadata.
type validationError struct{ msg string }

func (e *validationError) Error() string        { return "prm: " + e.msg }
func (e *validationError) Is(target error) bool { return target == ErrInvalidMetadata }

func invalidf(format string, args ...any) error {
	return &validationError{msg: fmt.Sprintf(format, args...)}
}

// Validate reports the first problem that makes md unfit to publish for an
// MCP server, or nil. It checks the rules of RFC 9728 §1.2 and §2 plus the
// MCP requirements (at least one authorization server, no query-string
// tokens); see the field comments for each rule. The error matches
// [ErrInvalidMetadata].
func (md Metadata) Validate() error {
	if _, err := parseResource(md.Resource); err != nil {
		return err
	}
	if len(md.AuthorizationServers) == 0 {
		return invalidf("authorization_servers: at least one authorization server is required (MCP)")
	}
	for i, as := range md.AuthorizationServers {
		if err := checkIssuer(as); err != nil {
			return invalidf("authorization_servers[%d]: %v", i, err)
		}
		if slices.Contains(md.AuthorizationServers[:i], as) {
			return invalidf("authorization_servers[%d]: duplicate %q", i, as)
		}
	}
	if md.JWKSURI != "" {
		if err := checkSecureURL(md.JWKSURI); err != nil {
			return invalidf("jwks_uri: %v", err)
		}
	}
	for i, s := range md.ScopesSupported {
		if err := checkScopeToken(s); err != nil {
			return invalidf("scopes_supported[%d]: %v", i, err)
		}
	}
	if err := checkStrings("scopes_supported", md.ScopesSupported); err != nil {
		return err
	}
	for i, m := range md.BearerMethodsSupported {
		switch m {
		case "header", "body":
		case "query":
			return invalidf(`bearer_methods_supported[%d]: "query" is not allowed: MCP forbids access tokens in the URI query string`, i)
		default:
			return invalidf(`bearer_methods_supported[%d]: unknown method %q (want "header" or "body")`, i, m)
		}
	}
	if err := checkStrings("bearer_methods_supported", md.BearerMethodsSupported); err != nil {
		return err
	}
	if err := checkAlgs("resource_signing_alg_values_supported", md.ResourceSigningAlgValuesSupported); err != nil {
		return err
	}
	if err := checkAlgs("dpop_signing_alg_values_supported", md.DPoPSigningAlgValuesSupported); err != nil {
		return err
	}
	if err := checkStrings("authorization_details_types_supported", md.AuthorizationDetailsTypesSupported); err != nil {
		return err
	}
	for _, f := range []struct{ name, val string }{
		{"resource_documentation", md.ResourceDocumentation},
		{"resource_policy_uri", md.ResourcePolicyURI},
		{"resource_tos_uri", md.ResourceTOSURI},
	} {
		if f.val == "" {
			continue
		}
		if err := checkWebURL(f.val); err != nil {
			return invalidf("%s: %v", f.name, err)
		}
	}
	if md.SignedMetadata != "" && !isCompactJWS(md.SignedMetadata) {
		return invalidf("signed_metadata: not a JWS in compact serialization")
	}
	for k := range md.Extra {
		if err := checkExtraName(k); err != nil {
			return err
		}
	}
	return nil
}

// resourceParts is a validated resource identifier split as RFC 9728 §3
// needs it, taken from the configured string itself so that nothing is
// re-encoded: path insertion must preserve the identifier byte for byte.
type resourceParts struct {
	scheme    string // "https" or "http"
	authority string // host[:port], as written
	path      string // as written; "" when the identifier has no path or only "/"
	query     string // as written, without "?"
	hasQuery  bool
}

// parseResource validates resource as an RFC 9728 §1.2 resource identifier
// (with MCP's canonical-form rules) and splits it.
func parseResource(resource string) (resourceParts, error) {
	if resource == "" {
		return resourceParts{}, invalidf("resource: required")
	}
	if err := checkURIChars(resource); err != nil {
		return resourceParts{}, invalidf("resource %s: %v", quoteURL(resource), err)
	}
	u, err := url.Parse(resource)
	if err != nil {
		return resourceParts{}, invalidf("resource %s: not a URL", quoteURL(resource))
	}
	if err := checkAbsolute(u, resource); err != nil {
		return resourceParts{}, invalidf("resource %s: %v", quoteURL(resource), err)
	}
	if err := checkScheme(u, true); err != nil {
		return resourceParts{}, invalidf("resource %s: %v", quoteURL(resource), err)
	}
	for seg := range strings.SplitSeq(u.EscapedPath(), "/") {
		if seg == "." || seg == ".." {
			return resourceParts{}, invalidf("resource %q: path must not contain %q segments (not canonical)", resource, seg)
		}
	}
	// checkAbsolute guarantees the "scheme://" prefix and no userinfo.
	rest := resource[len(u.Scheme)+len("://"):]
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	p := resourceParts{scheme: u.Scheme, authority: rest[:end]}
	rest = rest[end:]
	p.path, p.query, p.hasQuery = strings.Cut(rest, "?")
	if p.path == "/" {
		// RFC 9728 §3.1: the terminating slash after the host is removed
		// before the well-known string is inserted.
		p.path = ""
	}
	return p, nil
}

// checkIssuer checks an RFC 8414 issuer identifier: an https URL (http on
// loopback) without query or fragment.
func checkIssuer(s string) error {
	u, err := parseAbsolute(s)
	if err != nil {
		return err
	}
	if err := checkScheme(u, true); err != nil {
		return fmt.Errorf("%s: %w", quoteURL(s), err)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return fmt.Errorf("%s: an issuer identifier must not contain a query (RFC 8414 §2)", quoteURL(s))
	}
	return nil
}

// checkSecureURL checks a URL the client fetches keys from: https, or http
// on loopback.
func checkSecureURL(s string) error {
	u, err := parseAbsolute(s)
	if err != nil {
		return err
	}
	if err := checkScheme(u, true); err != nil {
		return fmt.Errorf("%s: %w", quoteURL(s), err)
	}
	return nil
}

// checkWebURL checks a URL shown to people: absolute http or https, so that
// no javascript: or data: URL reaches a client's consent screen.
func checkWebURL(s string) error {
	u, err := parseAbsolute(s)
	if err != nil {
		return err
	}
	if err := checkScheme(u, false); err != nil {
		return fmt.Errorf("%s: %w", quoteURL(s), err)
	}
	return nil
}

// parseAbsolute parses an absolute http(s) URL without fragment or userinfo.
func parseAbsolute(s string) (*url.URL, error) {
	if err := checkURIChars(s); err != nil {
		return nil, fmt.Errorf("%s: %w", quoteURL(s), err)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%s: not a URL", quoteURL(s))
	}
	if err := checkAbsolute(u, s); err != nil {
		return nil, fmt.Errorf("%s: %w", quoteURL(s), err)
	}
	return u, nil
}

func checkAbsolute(u *url.URL, raw string) error {
	switch {
	case u.Scheme == "" || u.Opaque != "" || u.Host == "" || !strings.HasPrefix(raw[len(u.Scheme):], "://"):
		return errors.New("must be an absolute URL with a host")
	case strings.Contains(raw, "#"):
		return errors.New("must not contain a fragment")
	case u.User != nil:
		return errors.New("must not contain user information")
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("scheme %q is not https", raw[:len(u.Scheme)])
	case raw[:len(u.Scheme)] != u.Scheme || u.Host != strings.ToLower(u.Host):
		return errors.New("scheme and host must be lowercase (canonical form)")
	case u.Port() == "" && strings.HasSuffix(u.Host, ":"):
		return errors.New("empty port")
	}
	return nil
}

// checkScheme enforces https, allowing http only for loopback hosts when
// loopbackOnly is true and for any host when it is false.
func checkScheme(u *url.URL, loopbackOnly bool) error {
	return netutil.CheckHTTPS(u, !loopbackOnly)
}

// checkURIChars rejects bytes that cannot appear in a URI (RFC 3986 §2):
// controls, space, non-ASCII and the excluded delimiters. A URL with them
// would be re-encoded somewhere between here and the client, and RFC 9728
// §3.3 compares the resource value byte for byte.
func checkURIChars(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"<>\^`+"`{|}", c) >= 0 {
			return fmt.Errorf("contains a character not allowed in a URI at byte %d (percent-encode it)", i)
		}
	}
	return nil
}

// checkScopeToken checks an RFC 6749 §3.3 scope-token: 1*NQCHAR, where
// NQCHAR = %x21 / %x23-5B / %x5D-7E.
func checkScopeToken(s string) error {
	if s == "" {
		return errors.New("empty scope")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return fmt.Errorf("scope %q has a character not allowed in a scope token (RFC 6749 §3.3)", s)
		}
	}
	return nil
}

// checkStrings rejects empty and duplicate values in a list member.
func checkStrings(member string, vals []string) error {
	for i, v := range vals {
		if v == "" {
			return invalidf("%s[%d]: empty value", member, i)
		}
		if slices.Contains(vals[:i], v) {
			return invalidf("%s[%d]: duplicate %q", member, i, v)
		}
	}
	return nil
}

func checkAlgs(member string, algs []string) error {
	for i, a := range algs {
		if a == "none" {
			return invalidf(`%s[%d]: "none" must not be used (RFC 9728 §2)`, member, i)
		}
	}
	return checkStrings(member, algs)
}

// isCompactJWS reports whether s has the shape of a JWS compact
// serialization: three base64url segments, the first two non-empty.
func isCompactJWS(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// quoteURL quotes a URL for an error message with any user information
// (which may hold a password) removed.
func quoteURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return fmt.Sprintf("%q", u.Redacted())
	}
	if at := strings.IndexByte(s, '@'); at >= 0 {
		if i := strings.Index(s, "://"); i >= 0 && i < at {
			return fmt.Sprintf("%q", s[:i+3]+"REDACTED"+s[at:])
		}
	}
	return fmt.Sprintf("%q", s)
}
