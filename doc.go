// Package mcpauth is the map of a module of auth primitives for Model Context
// Protocol (MCP) servers reached over HTTP. Such a server is an OAuth 2.1
// resource server (MCP authorization specification, revision 2026-07-28,
// compatible with 2025-11-25 clients); this module gives it the pieces as
// independent packages with net/http constructors, composed around the
// server's existing http.Handler.
//
// Inbound, a request passes, in this order:
//
//   - [github.com/mcpauth-go/mcpauth/prm]: RFC 9728 Protected Resource
//     Metadata, served unauthenticated at its well-known path, so clients
//     discover the authorization server;
//   - [github.com/mcpauth-go/mcpauth/authn]: bearer token verification (JWT
//     via the issuer's JWKS, RFC 8707 audience binding, RFC 7662 introspection
//     for opaque tokens) with RFC 6750 / RFC 9728 challenges and
//     insufficient_scope step-up; the verified identity goes into the request
//     context ([github.com/mcpauth-go/mcpauth/authn.FromContext]);
//   - [github.com/mcpauth-go/mcpauth/authz]: Cedar policies over MCP JSON-RPC
//     requests, deny by default, with list results filtered to what the
//     caller may use;
//   - your MCP handler.
//
// [github.com/mcpauth-go/mcpauth/middleware] composes them (Chain, Protect).
//
// Outbound, the handler's calls to its backends go through an
// http.RoundTripper that gives each call the right credential, and never
// the client's own token (MCP forbids token passthrough):
//
//   - [github.com/mcpauth-go/mcpauth/tokenexchange]: RFC 8693 token exchange
//     of the caller's token for a backend-scoped one (same IdP or a federated
//     one such as Google STS, preset in tokenexchange/google), cached per
//     subject with single flight;
//   - [github.com/mcpauth-go/mcpauth/credentials]: static credentials (API
//     keys, tokens) from a literal, the environment or a rotating file, and a
//     passthrough guard.
//
// Both follow one rule: the header the transport sets (Authorization by
// default) is replaced whatever it held, as golang.org/x/oauth2's Transport
// does, and the client's token found anywhere else on the request refuses
// it, with the same sentinel error from either package.
//
// For tests, [github.com/mcpauth-go/mcpauth/authn/idptest] is a fake
// identity provider in the manner of net/http/httptest.
//
// To watch them run, set a [github.com/mcpauth-go/mcpauth/observe.Observer]
// in each package's Config: verifications by cause, cache hits, key
// fetches, decisions, exchanges and refreshes, as metrics and spans through
// the OpenTelemetry adapter in observe/otelobserve (a module of its own).
//
// The smallest protected server:
//
//	v, err := authn.NewVerifier(authn.Config{
//		Issuer:   "https://login.example.com",
//		Audience: []string{"https://mcp.example.com/mcp"},
//	})
//	if err != nil { ... }
//	h, err := middleware.Protect(mcpHandler, middleware.Config{
//		Metadata: prm.Metadata{
//			Resource:             "https://mcp.example.com/mcp",
//			AuthorizationServers: []string{"https://login.example.com"},
//		},
//		Verifier: v,
//	})
//	if err != nil { ... }
//	http.ListenAndServe(addr, h)
package mcpauth
