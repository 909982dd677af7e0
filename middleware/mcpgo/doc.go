// Package mcpgo binds the sessions of a mark3labs/mcp-go Streamable HTTP
// server (github.com/mark3labs/mcp-go, v1.6.0) to the users mcpauth
// verified, so that one user cannot drive another's session.
//
// mcp-go's stateful session managers check only that an Mcp-Session-Id is
// one they issued: with mcpauth alone in front, a user holding a valid token
// and another user's session id is served in that session (its client
// information, per-session tools and log level), can open a GET stream on it
// and receive the notifications and server-to-client requests meant for the
// owner, and can answer them. mcp-go has no notion of a session owner, so
// [Binder] adds one at the HTTP layer, for every method (POST, GET, DELETE):
//
//   - when a response hands out a new Mcp-Session-Id (the answer to
//     initialize), the id is bound to the caller before the client sees it;
//   - a request carrying a session id bound to another user gets 403, one
//     carrying an id never handed out here (or forgotten, see
//     [Config.IdleTimeout]) gets 404, as for a terminated session;
//   - a successful DELETE by the owner forgets the binding.
//
// Requests without a session id pass unchanged: initialize, mcp-go's
// stateless mode, and 2026-07-28 clients, whose protocol has no sessions
// (mcp-go ignores the header for them; a stale one sent anyway is still
// checked here). A tool handler in mcp-go runs with the context of the request
// being handled, so authn.FromContext(ctx) there reports the current caller.
//
// The user is the issuer-qualified subject, the same form as the Go SDK
// adapter's auth.TokenInfo.UserID (module middleware/gosdk):
//
//	<iss>#<sub>        e.g. https://idp.example.com#248289761001
//
// An issuer identifier has no fragment (RFC 8414 §2), so the first "#"
// separates the two parts; an identity whose issuer contains "#", or whose
// issuer or subject is empty, is refused (500: a wiring error).
//
// Bindings live in the process: behind several replicas, route a session's
// requests to the replica that created it (mcp-go's own stateful session
// managers need that too), or a session created elsewhere is refused (404).
//
// It is a module of its own (github.com/mcpauth-go/mcpauth/middleware/mcpgo)
// so that the main mcpauth module forces no mcp-go version on anyone. Use:
//
//	b, err := mcpgo.New(mcpgo.Config{})
//	streamable := server.NewStreamableHTTPServer(s, server.WithStateful(true))
//	h, err := middleware.Protect(b.Middleware(streamable), middleware.Config{...})
package mcpgo
