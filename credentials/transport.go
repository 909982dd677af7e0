package credentials

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/mcpauth-go/mcpauth/internal/httpauth"
	"github.com/mcpauth-go/mcpauth/internal/outbound"
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
	// which net/http computes itself; Content-Type, which describes the
	// body; and Cookie and Set-Cookie. Cookie is
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
	// case-insensitive. A request to any other host — by its URL or by a
	// Host override (req.Host), which routes it at a shared address just
	// as well — is refused with [ErrDestinationNotAllowed] and not sent.
	// Set it whenever the Transport's client could be sent elsewhere. Empty
	// means any host, except on a redirect an http.Client follows: that
	// keeps the credential only for the original host and its subdomains
	// (the rule net/http applies to Authorization) and is refused otherwise.
	Hosts []string

	// InsecureAllowHTTP allows sending the credential over plain http to
	// hosts other than loopback (localhost, 127.0.0.0/8, ::1). By default
	// such requests are refused with [ErrDestinationNotAllowed]: RFC 6750
	// §5.3 says clients MUST use TLS when sending bearer tokens, and RFC
	// 7617 §4 warns that Basic sends the password in clear text. Set it
	// only when the hop is otherwise protected (a service mesh with mTLS, a
	// Unix-domain proxy) — the credential is readable by anyone on the path.
	InsecureAllowHTTP bool

	// CheckAtStart makes NewTransport ask each source for its secret once
	// and build the header value, so a missing or unreadable file, an unset
	// or empty environment variable, or a value the scheme cannot carry (a
	// bearer token outside the b64token syntax, a user-id with a colon)
	// fails at construction with an error naming the field, the file or
	// variable and what is wrong, never the value. False means the sources
	// are first asked on the first request, so a server can start before
	// its secret file exists.
	CheckAtStart bool
}

// ErrDestinationNotAllowed is returned (wrapped) when a [Transport] refuses
// to send its credential to a request's destination: a host not listed in
// Config.Hosts, plain http to a non-loopback host without
// Config.InsecureAllowHTTP, or a redirect to another host. It is the same
// error value as tokenexchange.ErrDestinationNotAllowed.
var ErrDestinationNotAllowed = outbound.ErrDestination

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
// replaced, whatever it holds and however it is spelled. When it cannot
// send — the source fails, the secret is empty or not a valid header value,
// or [CheckPassthrough] finds the caller's inbound token on the request
// outside that header — it closes the request body and returns an error that
// names the cause but never contains the secret.
//
// So a handler that copies the inbound Authorization onto its backend call
// gets it replaced with the configured credential, while one that copies the
// inbound token into another header, a cookie or a query parameter is
// refused (MCP forbids token passthrough). The tokenexchange package's
// transport applies the same rules.
type Transport struct {
	scheme             Scheme
	prefix             string
	secret             Source
	username, password Source
	base               http.RoundTripper
	guard              *outbound.Guard // destination, passthrough, owned header

	cache atomic.Pointer[headerCache] // last encoded header value
}

// headerCache memoises the encoded header value for the Secret (or pair of
// Secrets) it was computed from, compared by identity, so a source that
// returns the same Secret costs no encoding or validation per request.
type headerCache struct {
	a, b  Secret
	value string
}

// NewTransport returns a Transport that adds the credential described by cfg
// to each request and sends it with base. If base is nil,
// http.DefaultTransport is used (looked up at each request).
//
// NewTransport validates cfg: a missing source, a source given for the wrong
// scheme, a bad Hosts entry, and a refused or invalid header name or prefix
// are errors. The sources themselves are not called until the first
// request, so a server can start before its secret file exists, unless
// Config.CheckAtStart asks for them to be checked now.
func NewTransport(cfg Config, base http.RoundTripper) (*Transport, error) {
	t := &Transport{scheme: cfg.Scheme, prefix: cfg.Prefix, base: base}
	header := "Authorization"
	switch cfg.Scheme {
	case Bearer, Basic:
		if cfg.Header != "" && http.CanonicalHeaderKey(cfg.Header) != "Authorization" {
			return nil, fmt.Errorf("credentials: Header %q is set with scheme %s, which always sets Authorization; use scheme Header", cfg.Header, cfg.Scheme)
		}
		if cfg.Prefix != "" {
			return nil, fmt.Errorf("credentials: Prefix is set with scheme %s; use scheme Header", cfg.Scheme)
		}
	case Header:
		if cfg.Header == "" {
			return nil, errors.New("credentials: scheme Header needs a Header name")
		}
		header = cfg.Header
		if !validHeaderValueBytes(cfg.Prefix) {
			return nil, errors.New("credentials: Prefix contains control characters")
		}
	default:
		return nil, fmt.Errorf("credentials: unknown scheme %s", cfg.Scheme)
	}
	g, err := outbound.New(outbound.Config{Prefix: "credentials", Header: header, Hosts: cfg.Hosts, InsecureAllowHTTP: cfg.InsecureAllowHTTP})
	if err != nil {
		return nil, err
	}
	t.guard = g
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
	if cfg.CheckAtStart {
		if err := t.checkAtStart(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// checkAtStart asks every source once and builds the header value, so a
// missing file, an unset variable or a value the scheme cannot carry fails
// at construction. Errors name the field and the source (a file path, a
// variable name), never the value.
func (t *Transport) checkAtStart() error {
	ctx := context.Background()
	roles := []struct {
		name string
		src  Source
	}{{"Secret", t.secret}, {"Username", t.username}, {"Password", t.password}}
	var names []string
	for _, r := range roles {
		if r.src == nil {
			continue
		}
		// A source's own errors name its file or variable already.
		if _, err := r.src.Secret(ctx); err != nil {
			return outbound.Wrap("credentials", "CheckAtStart: "+r.name, err)
		}
		names = append(names, r.name+" ("+describe(r.src)+")")
	}
	if _, err := t.headerValue(ctx); err != nil {
		return outbound.Wrap("credentials", "CheckAtStart: "+strings.Join(names, ", "), err)
	}
	return nil
}

// RoundTrip implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	// The destination is checked before the source is asked for the
	// secret, so a refused request costs no file check.
	if err := t.guard.CheckDestination(req); err != nil {
		return outbound.Refuse(req, err)
	}
	value, err := t.headerValue(req.Context())
	if err != nil {
		return outbound.Refuse(req, err)
	}
	inbound := outbound.InboundToken(req.Context())
	if err := t.guard.CheckPassthrough(req, inbound); err != nil {
		return outbound.Refuse(req, err)
	}
	// From here on the base transport owns (and closes) the body.
	return t.guard.Send(t.base, req, value, inbound)
}

// headerValue returns the encoded header value for the current secret(s).
func (t *Transport) headerValue(ctx context.Context) (string, error) {
	if t.scheme == Basic {
		user, err := t.username.Secret(ctx)
		if err != nil {
			return "", outbound.Wrap("credentials", "username source", err)
		}
		pass, err := t.password.Secret(ctx)
		if err != nil {
			return "", outbound.Wrap("credentials", "password source", err)
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
		return "", outbound.Wrap("credentials", "secret source", err)
	}
	if c := t.cache.Load(); c != nil && c.a.same(s) {
		return c.value, nil
	}
	raw := s.Reveal()
	if raw == "" {
		return "", fmt.Errorf("%w: %s value", ErrEmptySecret, t.guard.Header())
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
			return "", fmt.Errorf("credentials: secret is not a valid %s header value (control characters or surrounding white space)", t.guard.Header())
		}
	}
	t.cache.Store(&headerCache{a: s, value: v})
	return v, nil
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
