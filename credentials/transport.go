package credentials

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/mcpauth-go/mcpauth/internal/httpauth"
	"github.com/mcpauth-go/mcpauth/internal/netutil"
)

// Scheme says how a [Transport] writes the credential.
type Scheme int

const (
	// Bearer sets "Authorization: Bearer <secret>" (RFC 6750 §2.1). The
	// secret must match the RFC 6750 b64token syntax. It is the zero Scheme.
	Bearer Scheme = iota
	// Basic sets "Authorization: Basic base64(<username>:<password>)"
	// (RFC 7617 §2) from Config.Username and Config.Password. The user-id
	// must not contain a colon; neither part may contain control characters.
	// Both are encoded as UTF-8, as RFC 7617 §2.1 charset="UTF-8" specifies.
	Basic
	// Header sets Config.Header to Config.Prefix followed by the secret, for
	// APIs that take a key in their own header (X-API-Key: <secret>) or a
	// non-Bearer scheme (Authorization: Token <secret>).
	Header
)

// String returns the scheme's name.
func (s Scheme) String() string {
	switch s {
	case Bearer:
		return "Bearer"
	case Basic:
		return "Basic"
	case Header:
		return "Header"
	}
	return fmt.Sprintf("Scheme(%d)", int(s))
}

// Config configures a [Transport]. The zero value is not usable: a secret
// source is required.
type Config struct {
	// Scheme selects how the credential is written. The zero value is Bearer.
	Scheme Scheme

	// Secret is the source of the bearer token (Bearer) or of the header
	// value (Header). Required for those schemes; must be nil for Basic.
	Secret Source

	// Username and Password are the sources of the RFC 7617 user-id and
	// password. Both are required for Basic and must be nil otherwise (use
	// [Literal] for a fixed user name).
	Username, Password Source

	// Header is the header to set for the Header scheme, such as
	// "X-API-Key". Required for Header; must be empty (or "Authorization")
	// for Bearer and Basic, which always set Authorization. The name is
	// canonicalised.
	//
	// Refused at construction: names that are not RFC 9110 tokens; the
	// hop-by-hop headers of RFC 9110 §7.6.1 (Connection, Keep-Alive,
	// Proxy-Authenticate, Proxy-Authorization, Proxy-Connection, TE,
	// Trailer, Transfer-Encoding, Upgrade), which a proxy strips or
	// consumes; the framing and routing headers Host and Content-Length,
	// which net/http computes itself; and Cookie and Set-Cookie. Cookie is
	// a list managed by the http.Client's cookie jar: replacing it would
	// silently drop the jar's cookies, and merging would need cookie-pair
	// syntax. Send cookie credentials through an http.Client Jar instead.
	Header string

	// Prefix is written before the secret for the Header scheme, such as
	// "Token " for "Authorization: Token <secret>". Empty means the bare
	// secret. Must be empty for Bearer and Basic. Control characters are
	// refused at construction.
	Prefix string

	// Hosts, if not empty, lists the only hosts the credential may be sent
	// to. An entry "api.example.com" matches that host on any port;
	// "api.example.com:8443" matches that port only; matching is
	// case-insensitive. A request to any other host is refused with
	// [ErrDestinationNotAllowed] and not sent. Set it whenever the
	// Transport's client could be sent elsewhere. Empty means any host,
	// except on a redirect an http.Client follows: that keeps the credential
	// only for the original host and its subdomains (the rule net/http
	// applies to Authorization) and is refused otherwise.
	Hosts []string

	// InsecureAllowHTTP allows sending the credential over plain http to
	// hosts other than loopback (localhost, 127.0.0.0/8, ::1). By default
	// such requests are refused with [ErrDestinationNotAllowed]: RFC 6750
	// §5.3 says clients MUST use TLS when sending bearer tokens, and RFC
	// 7617 §4 warns that Basic sends the password in clear text. Set it
	// only when the hop is otherwise protected (a service mesh with mTLS, a
	// Unix-domain proxy) — the credential is readable by anyone on the path.
	InsecureAllowHTTP bool
}

// ErrDestinationNotAllowed is returned (wrapped) when a [Transport] refuses
// to send its credential to a request's destination: a host not listed in
// Config.Hosts, or plain http to a non-loopback host without
// Config.InsecureAllowHTTP.
var ErrDestinationNotAllowed = errors.New("credentials: destination not allowed for this credential")

// Transport is an [http.RoundTripper] that adds a credential from a [Source]
// to every request, then sends it through its base transport. Build one
// with [NewTransport]; it is safe for concurrent use.
//
// Before anything else, the destination is checked: plain http is refused
// for hosts other than loopback unless Config.InsecureAllowHTTP is set, and
// hosts outside Config.Hosts (when set) are refused; without Hosts, so is a
// redirect to a host other than the original one or its subdomains.
//
// Transport follows the RoundTripper contract: it sets the header on a
// shallow copy of the request with a cloned header map, never on the
// caller's request; any header of the same name already on the request is
// replaced. When it cannot send — the source fails, the secret is empty or
// not a valid header value, or [CheckPassthrough] finds the caller's inbound
// token on the request — it closes the request body and returns an error
// that names the cause but never contains the secret.
//
// The request is checked with [CheckPassthrough] after the credential is
// set, so a handler that copies the inbound token into another header or a
// query parameter is refused as well (MCP forbids token passthrough).
type Transport struct {
	scheme             Scheme
	header             string // canonical header name
	prefix             string
	secret             Source
	username, password Source
	base               http.RoundTripper
	hosts              map[string]bool // lower-case host or host:port; nil means any
	allowHTTP          bool

	cache atomic.Pointer[headerCache] // last encoded header value
}

// headerCache memoises the encoded header value for the Secret (or pair of
// Secrets) it was computed from, compared by identity, so a source that
// returns the same Secret costs no encoding or validation per request.
type headerCache struct {
	a, b  Secret
	value string
}

// refusedHeaders lists the headers a Transport refuses to set, in canonical
// form, with the reason given in the construction error.
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
	"Cookie":              "cookie header managed by the client's cookie jar",
	"Set-Cookie":          "response header",
}

// NewTransport returns a Transport that adds the credential described by cfg
// to each request and sends it with base. If base is nil,
// http.DefaultTransport is used (looked up at each request).
//
// NewTransport validates cfg: a missing source, a source given for the wrong
// scheme, and a refused or invalid header name or prefix are errors. The
// sources themselves are not called until the first request, so a server
// can start before its secret file exists.
func NewTransport(cfg Config, base http.RoundTripper) (*Transport, error) {
	t := &Transport{scheme: cfg.Scheme, prefix: cfg.Prefix, base: base, allowHTTP: cfg.InsecureAllowHTTP}
	if len(cfg.Hosts) > 0 {
		t.hosts = make(map[string]bool, len(cfg.Hosts))
		for _, h := range cfg.Hosts {
			if h == "" || strings.ContainsAny(h, "/?#@ ") {
				return nil, fmt.Errorf("credentials: Hosts entry %q is not a host or host:port", h)
			}
			t.hosts[strings.ToLower(h)] = true
		}
	}
	switch cfg.Scheme {
	case Bearer, Basic:
		if cfg.Header != "" && http.CanonicalHeaderKey(cfg.Header) != "Authorization" {
			return nil, fmt.Errorf("credentials: Header %q is set with scheme %s, which always sets Authorization; use scheme Header", cfg.Header, cfg.Scheme)
		}
		if cfg.Prefix != "" {
			return nil, fmt.Errorf("credentials: Prefix is set with scheme %s; use scheme Header", cfg.Scheme)
		}
		t.header = "Authorization"
	case Header:
		if cfg.Header == "" {
			return nil, errors.New("credentials: scheme Header needs a Header name")
		}
		if !validHeaderName(cfg.Header) {
			return nil, fmt.Errorf("credentials: invalid header name %q", cfg.Header)
		}
		t.header = http.CanonicalHeaderKey(cfg.Header)
		if why, bad := refusedHeaders[t.header]; bad {
			return nil, fmt.Errorf("credentials: refusing to set %s: %s", t.header, why)
		}
		if !validHeaderValueBytes(cfg.Prefix) {
			return nil, errors.New("credentials: Prefix contains control characters")
		}
	default:
		return nil, fmt.Errorf("credentials: unknown scheme %s", cfg.Scheme)
	}
	if cfg.Scheme == Basic {
		if cfg.Username == nil || cfg.Password == nil {
			return nil, errors.New("credentials: scheme Basic needs Username and Password sources")
		}
		if cfg.Secret != nil {
			return nil, errors.New("credentials: scheme Basic takes Username and Password, not Secret")
		}
		t.username, t.password = cfg.Username, cfg.Password
	} else {
		if cfg.Secret == nil {
			return nil, fmt.Errorf("credentials: scheme %s needs a Secret source", cfg.Scheme)
		}
		if cfg.Username != nil || cfg.Password != nil {
			return nil, fmt.Errorf("credentials: Username and Password are only for scheme Basic, not %s", cfg.Scheme)
		}
		t.secret = cfg.Secret
	}
	return t, nil
}

// RoundTrip implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.checkDestination(req); err != nil {
		closeBody(req)
		return nil, err
	}
	value, err := t.headerValue(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	r2 := cloneRequest(req)
	r2.Header.Set(t.header, value)
	if err := CheckPassthrough(r2); err != nil {
		closeBody(req)
		return nil, err
	}
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	// From here on the base transport owns (and closes) the body.
	return base.RoundTrip(r2)
}

// checkDestination refuses hosts outside Config.Hosts and plain http to
// non-loopback hosts (unless InsecureAllowHTTP). It runs before the source is
// asked for the secret, so a refused request costs no file check.
func (t *Transport) checkDestination(req *http.Request) error {
	u := req.URL
	if u == nil {
		return fmt.Errorf("%w: request has no URL", ErrDestinationNotAllowed)
	}
	host := u.Hostname()
	if t.hosts != nil && !t.hosts[strings.ToLower(u.Host)] && !t.hosts[strings.ToLower(host)] {
		return fmt.Errorf("%w: host %q is not in Hosts", ErrDestinationNotAllowed, u.Host)
	}
	if t.hosts == nil && req.Response != nil && req.Response.Request != nil {
		// A redirect an http.Client follows (req.Response is set): net/http
		// keeps Authorization only for the original host and its
		// subdomains; setting the credential on every hop must not undo it.
		first := req.Response.Request
		for first.Response != nil && first.Response.Request != nil {
			first = first.Response.Request
		}
		if first.URL != nil {
			from, to := strings.ToLower(first.URL.Hostname()), strings.ToLower(host)
			if to != from && !strings.HasSuffix(to, "."+from) {
				return fmt.Errorf("%w: redirect from host %q to %q", ErrDestinationNotAllowed, from, to)
			}
		}
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if t.allowHTTP || netutil.IsLoopbackHost(host) {
			return nil
		}
		return fmt.Errorf("%w: plain http to non-loopback host %q (see Config.InsecureAllowHTTP)", ErrDestinationNotAllowed, u.Host)
	}
	return fmt.Errorf("%w: URL scheme %q", ErrDestinationNotAllowed, u.Scheme)
}

// headerValue returns the encoded header value for the current secret(s).
func (t *Transport) headerValue(req *http.Request) (string, error) {
	ctx := req.Context()
	if t.scheme == Basic {
		user, err := t.username.Secret(ctx)
		if err != nil {
			return "", fmt.Errorf("credentials: username source: %w", err)
		}
		pass, err := t.password.Secret(ctx)
		if err != nil {
			return "", fmt.Errorf("credentials: password source: %w", err)
		}
		if c := t.cache.Load(); c != nil && c.a.same(user) && c.b.same(pass) {
			return c.value, nil
		}
		u, p := user.Reveal(), pass.Reveal()
		if u == "" || p == "" {
			return "", fmt.Errorf("%w: Basic username or password", ErrEmptySecret)
		}
		if strings.IndexByte(u, ':') >= 0 {
			return "", errors.New("credentials: Basic user-id contains a colon (RFC 7617 §2)")
		}
		if hasCTL(u) || hasCTL(p) {
			return "", errors.New("credentials: Basic user-id or password contains control characters (RFC 7617 §2)")
		}
		v := "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))
		t.cache.Store(&headerCache{a: user, b: pass, value: v})
		return v, nil
	}

	s, err := t.secret.Secret(ctx)
	if err != nil {
		return "", fmt.Errorf("credentials: secret source: %w", err)
	}
	if c := t.cache.Load(); c != nil && c.a.same(s) {
		return c.value, nil
	}
	raw := s.Reveal()
	if raw == "" {
		return "", fmt.Errorf("%w: %s value", ErrEmptySecret, t.header)
	}
	var v string
	if t.scheme == Bearer {
		if !httpauth.IsToken68(raw) {
			return "", errors.New("credentials: bearer token does not match the RFC 6750 b64token syntax")
		}
		v = "Bearer " + raw
	} else {
		v = t.prefix + raw
		if !validHeaderValueBytes(raw) || strings.TrimSpace(v) != v {
			return "", fmt.Errorf("credentials: secret is not a valid %s header value (control characters or surrounding white space)", t.header)
		}
	}
	t.cache.Store(&headerCache{a: s, value: v})
	return v, nil
}

// cloneRequest returns a shallow copy of r with its own header map, which
// is all RoundTrip mutates; the value slices are shared but capped. Body, URL and context are shared, as in
// golang.org/x/oauth2's Transport; a full r.Clone would deep-copy the URL,
// trailers and form for nothing.
func cloneRequest(r *http.Request) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	r2.Header = make(http.Header, len(r.Header)+1)
	for k, vv := range r.Header {
		// Full slice expression: an append by a later transport reallocates
		// instead of writing into the caller's backing array.
		r2.Header[k] = vv[:len(vv):len(vv)]
	}
	return r2
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
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

// validHeaderValueBytes reports whether s has no control characters other
// than horizontal tab (RFC 9110 §5.5: CR, LF and NUL are never allowed).
func validHeaderValueBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}
