// Package outbound is the one guard every outbound transport of mcpauth
// (credentials, tokenexchange, and the coming upstream transport) puts
// around a request before it leaves the MCP server with a credential. It
// holds the only implementation of:
//
//   - the destination policy ([Guard.CheckDestination]): https, or plain
//     http only to a loopback host ([netutil.CheckHTTPS]) unless the user
//     allows it; the optional Hosts pinning; and, without Hosts, net/http's
//     rule for a redirect an http.Client follows (the credential goes only
//     to the original host and its subdomains);
//   - the passthrough check ([Guard.CheckPassthrough]): MCP forbids a server
//     to pass the token it received from the client on to an upstream API,
//     so the inbound token found anywhere on the request — a header, a
//     cookie, the user or password part of a Basic credential, the URL
//     (user info, host, path, query names and values, escaped or not), a
//     trailer — refuses it, except in the one header the transport owns;
//   - header-name validation ([CheckHeaderName]): hop-by-hop and framing
//     headers, Host, Cookie and Set-Cookie cannot carry a credential;
//   - clone-and-send ([Guard.Send]) and close-on-refusal ([Refuse]), which
//     follow the http.RoundTripper contract: the caller's request is never
//     modified, and its body is closed on every error path.
//
// The rule is identical in every transport: the header the transport owns
// is replaced, whatever it held (a handler that copies the inbound
// Authorization onto its backend call — the classic proxy pattern — gets
// the call sent with the transport's credential, as
// golang.org/x/oauth2.Transport does); the inbound token anywhere else is
// refused with an error wrapping [ErrPassthrough], the one sentinel that
// credentials.ErrTokenPassthrough and tokenexchange.ErrPassthrough name, so
// errors.Is works the same on an error from any of them. Destination
// refusals wrap [ErrDestination] (credentials.ErrDestinationNotAllowed,
// tokenexchange.ErrDestinationNotAllowed).
//
// # Usage
//
// A transport builds one Guard at construction and calls it in RoundTrip.
// A transport that sends a per-user token looks like this:
//
//	func NewTransport(cfg Config, base http.RoundTripper) (*Transport, error) {
//		g, err := outbound.New(outbound.Config{
//			Prefix: "upstream", Header: "Authorization",
//			Hosts: cfg.Hosts, InsecureAllowHTTP: cfg.InsecureAllowHTTP,
//		})
//		if err != nil {
//			return nil, err // names the bad Hosts entry or header
//		}
//		return &Transport{guard: g, base: base}, nil
//	}
//
//	func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
//		inbound := outbound.InboundToken(req.Context())
//		if err := t.guard.Check(req, inbound); err != nil {
//			return outbound.Refuse(req, err) // closes the body
//		}
//		// The user's token; an error without a verified identity: the
//		// request is never sent anonymously.
//		tok, err := t.tokenFor(req.Context())
//		if err != nil {
//			return outbound.Refuse(req, outbound.Wrap("upstream", "token", err))
//		}
//		// A clone of req with Authorization replaced, sent through base
//		// (http.DefaultTransport if nil).
//		return t.guard.Send(t.base, req, "Bearer "+tok, inbound)
//	}
//
// Check runs before the credential is fetched, so a refused request costs
// no token lookup and reaches nobody. A transport that must not leak a
// second token (the subject token tokenexchange exchanges, when it is not
// the inbound one) calls [Guard.CheckPassthrough] once more with it.
//
// Error messages start with Config.Prefix and never contain a token. An
// http.Client wraps a transport's error in a *url.Error that quotes the
// request URL: when the token was found in the URL, that text contains it,
// so log errors.Unwrap of the client's error rather than the error itself.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/internal/netutil"
)

// ErrPassthrough is returned (wrapped) when an outgoing request carries the
// inbound access token outside the header its transport owns. MCP forbids
// token passthrough: a server MUST NOT pass the token it received from the
// client on to an upstream API (MCP authorization, "Access Token Privilege
// Restriction"; security best practices, "Token Passthrough"). Its text has
// no package prefix because several packages return it; every error that
// wraps it starts with the prefix of the package that refused.
var ErrPassthrough = errors.New("request carries the inbound access token (token passthrough)")

// ErrDestination is returned (wrapped) when a request's destination may not
// receive the credential: plain http to a host other than loopback without
// InsecureAllowHTTP, a scheme other than http(s), a host outside Hosts, or a
// redirect to another host.
var ErrDestination = errors.New("destination not allowed for this credential")

// Config configures a [Guard]. The zero value is a guard that owns no
// header, sends nowhere but https or loopback, and has the empty prefix.
type Config struct {
	// Prefix starts every error message ("credentials", "tokenexchange").
	// Empty means none.
	Prefix string

	// Header is the header the transport owns: [Guard.Send] replaces it
	// (every spelling of it) with the transport's credential, and
	// [Guard.CheckPassthrough] does not look in it, since whatever it holds
	// is overwritten. It is checked with [CheckHeaderName] and
	// canonicalised. Empty means the transport sets no header: every header
	// is checked.
	Header string

	// Hosts, if not empty, lists the only hosts a request may be sent to:
	// "api.example.com" matches that host on any port, "api.example.com:8443"
	// that port only, case-insensitively. A request whose URL host, or whose
	// Host override, is not listed is refused. Empty means any host, except
	// on a redirect an http.Client follows: then only the original host and
	// its subdomains (net/http's rule for Authorization).
	Hosts []string

	// InsecureAllowHTTP allows plain http to hosts other than loopback.
	// False means https only, or plain http to a loopback host.
	InsecureAllowHTTP bool
}

// Guard applies the outbound rules of one transport. Build it with [New];
// it is immutable and safe for concurrent use.
type Guard struct {
	prefix    string // "credentials: ", with the separator; "" for none
	header    string // canonical owned header; "" for none
	hosts     map[string]bool
	allowHTTP bool
}

// New validates cfg and returns its Guard. A Hosts entry that is not a host
// or host:port and a Header that [CheckHeaderName] refuses are errors.
func New(cfg Config) (*Guard, error) {
	g := &Guard{allowHTTP: cfg.InsecureAllowHTTP}
	if cfg.Prefix != "" {
		g.prefix = cfg.Prefix + ": "
	}
	if len(cfg.Hosts) > 0 {
		g.hosts = make(map[string]bool, len(cfg.Hosts))
		for _, h := range cfg.Hosts {
			if h == "" || strings.ContainsAny(h, "/?#@ \t\r\n") {
				return nil, fmt.Errorf("%sHosts entry %q is not a host or host:port", g.prefix, h)
			}
			g.hosts[strings.ToLower(h)] = true
		}
	}
	if cfg.Header != "" {
		name, err := CheckHeaderName(cfg.Header)
		if err != nil {
			return nil, fmt.Errorf("%s%w", g.prefix, err)
		}
		g.header = name
	}
	return g, nil
}

// Header returns the canonical name of the header the guard's transport
// owns, or "" if none.
func (g *Guard) Header() string { return g.header }

// InboundToken returns the raw inbound access token of the verified caller
// in ctx ([authn.FromContext]), or "" when there is none: then there is
// nothing to leak.
func InboundToken(ctx context.Context) string {
	info, ok := authn.FromContext(ctx)
	if !ok {
		return ""
	}
	return info.Token()
}

// Check is [Guard.CheckDestination] then [Guard.CheckPassthrough] for
// token.
func (g *Guard) Check(req *http.Request, token string) error {
	if err := g.CheckDestination(req); err != nil {
		return err
	}
	return g.CheckPassthrough(req, token)
}

// CheckDestination returns an error wrapping [ErrDestination] when req may
// not be sent with the credential: a host outside Hosts (the URL's or the
// Host override), without Hosts a redirect to a host that is neither the
// original one nor its subdomain, or a URL that [netutil.CheckHTTPS]
// refuses.
func (g *Guard) CheckDestination(req *http.Request) error {
	u := req.URL
	if u == nil {
		return fmt.Errorf("%s%w: request has no URL", g.prefix, ErrDestination)
	}
	if g.hosts != nil {
		if !g.allowed(u.Host) {
			return fmt.Errorf("%s%w: host %q is not in Hosts", g.prefix, ErrDestination, u.Host)
		}
		// The Host header routes the request at a shared address (a CDN,
		// a virtual-hosting proxy) just as the URL's host does.
		if req.Host != "" && req.Host != u.Host && !g.allowed(req.Host) {
			return fmt.Errorf("%s%w: Host header %q is not in Hosts", g.prefix, ErrDestination, req.Host)
		}
	} else if req.Response != nil && req.Response.Request != nil {
		// A redirect an http.Client follows (req.Response is set): net/http
		// keeps Authorization only for the original host and its
		// subdomains; setting the credential on every hop must not undo it.
		first := req.Response.Request
		for first.Response != nil && first.Response.Request != nil {
			first = first.Response.Request
		}
		if first.URL != nil {
			from, to := strings.ToLower(first.URL.Hostname()), strings.ToLower(u.Hostname())
			if to != from && !strings.HasSuffix(to, "."+from) {
				return fmt.Errorf("%s%w: redirect from host %q to %q", g.prefix, ErrDestination, from, to)
			}
		}
	}
	if err := netutil.CheckHTTPS(u, g.allowHTTP); err != nil {
		return fmt.Errorf("%s%w: %w (InsecureAllowHTTP allows plain http)", g.prefix, ErrDestination, err)
	}
	return nil
}

// allowed reports whether hostport, or its host without the port, is listed.
func (g *Guard) allowed(hostport string) bool {
	hp := strings.ToLower(hostport)
	if g.hosts[hp] {
		return true
	}
	if i := strings.LastIndexByte(hp, ':'); i >= 0 && !strings.Contains(hp[i:], "]") {
		hp = hp[:i]
	}
	return g.hosts[strings.TrimSuffix(strings.TrimPrefix(hp, "["), "]")]
}

// Send sends a clone of req with the owned header set to value through base
// (http.DefaultTransport if nil). The clone has its own header map without
// any other spelling of the owned header; req itself is never modified. If
// value carries token (the credential is the inbound token, or wraps it),
// nothing is sent, req's body is closed and the error wraps
// [ErrPassthrough]. From the call to base on, base owns (and closes) the
// body. Send panics if the guard owns no header.
func (g *Guard) Send(base http.RoundTripper, req *http.Request, value, token string) (*http.Response, error) {
	if g.header == "" {
		panic("outbound: Send on a Guard that owns no header")
	}
	if token != "" && headerCarries(g.header, value, token) {
		return Refuse(req, fmt.Errorf("%s%w: the credential set in header %s carries it", g.prefix, ErrPassthrough, g.header))
	}
	// One allocation for the request and the credential's value slice.
	c := new(struct {
		r http.Request
		v [1]string
	})
	c.r, c.v[0] = *req, value
	r2 := &c.r
	h := make(http.Header, len(req.Header)+1)
	for k, vv := range req.Header {
		if len(k) == len(g.header) && strings.EqualFold(k, g.header) {
			continue // replaced, whatever its spelling
		}
		// Full slice expression: an append by a later transport reallocates
		// instead of writing into the caller's backing array.
		h[k] = vv[:len(vv):len(vv)]
	}
	h[g.header] = c.v[:1:1]
	r2.Header = h
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r2)
}

// Refuse closes req's body, if any, and returns (nil, err): the
// RoundTripper contract for a request that is not sent.
func Refuse(req *http.Request, err error) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return nil, err
}

// Wrap returns an error wrapping err whose message is
// "<pkg>: <context>: <err's message>", with a leading "<pkg>: " of err's
// message dropped, so that an error of the package wrapped again by that
// package names its prefix once ("credentials: secret source: empty secret:
// …", not "credentials: secret source: credentials: empty secret: …").
// errors.Is and errors.As see err unchanged.
func Wrap(pkg, context string, err error) error {
	msg := strings.TrimPrefix(err.Error(), pkg+": ")
	return &wrapped{msg: pkg + ": " + context + ": " + msg, err: err}
}

type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }
