package credentials

import (
	"net/http"

	"github.com/mcpauth-go/mcpauth/internal/outbound"
)

// ErrTokenPassthrough is returned (wrapped) when an outgoing request carries
// the bearer token the MCP client sent to this server. MCP forbids token
// passthrough: a server MUST NOT pass the token it received from the client
// on to an upstream API (MCP authorization, "Access Token Privilege
// Restriction"; security best practices, "Token Passthrough").
//
// It is the same error value as tokenexchange.ErrPassthrough, so errors.Is
// works the same on an error from either package.
var ErrTokenPassthrough = outbound.ErrPassthrough

// passthroughOnly is the guard of CheckPassthrough and PassthroughGuard: it
// owns no header, so the token is looked for everywhere.
var passthroughOnly = mustGuard(outbound.New(outbound.Config{Prefix: "credentials"}))

func mustGuard(g *outbound.Guard, err error) *outbound.Guard {
	if err != nil {
		panic(err)
	}
	return g
}

// CheckPassthrough returns an error if req would send the inbound token of
// the verified caller in its context ([authn.FromContext], raw token from
// [authn.TokenInfo.Token]) to a backend. It returns nil when the context has
// no identity or the identity has no raw token: then there is nothing to
// leak.
//
// The token is looked for in every header and trailer value and every query
// parameter name and value (raw or unescaped); in the URL's user info (and,
// for long tokens, its host and path); as the credentials part of a
// "<scheme> <credentials>" value (Bearer, DPoP, Token, …); in the user-id
// and password of a Basic credential (RFC 7617); and in each cookie. These
// comparisons are constant-time for equal lengths. Tokens of 16 bytes or
// more are also searched for as a substring of each header and query value
// (a token wrapped in JSON, for instance); that search is not constant-time,
// which is acceptable because its only secret operand is the caller's own
// token. The request body is not inspected. The same check guards
// [Transport] and the tokenexchange package's transport.
//
// The error wraps [ErrTokenPassthrough] and names where the token was found
// ("header Authorization", "trailer X-…", "query parameter", "URL path",
// "URL user info"), never the token. Note that an [http.Client] wraps a
// transport's error in a *url.Error that quotes the request URL: when the
// token was found in the URL, the client's error text contains it, so log
// errors.Unwrap of that error rather than the error itself.
func CheckPassthrough(req *http.Request) error {
	return passthroughOnly.CheckPassthrough(req, outbound.InboundToken(req.Context()))
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
		return outbound.Refuse(req, err)
	}
	base := g.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req)
}
