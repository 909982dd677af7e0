// Package gosdk connects mcpauth to the official MCP Go SDK
// (github.com/modelcontextprotocol/go-sdk, v1.8.0): it hands the SDK the
// identity mcpauth verified, as the SDK's [auth.TokenInfo], so that the
// SDK's own checks run on it.
//
// The one that matters is session ownership. The SDK's stateful Streamable
// HTTP transport remembers the TokenInfo.UserID of the request that created
// a session and refuses, with HTTP 403, any later request for that session
// whose UserID differs. mcpauth alone never fills TokenInfo, so the UserID is
// empty and the check is off: a user holding a valid token and another
// user's Mcp-Session-Id drives that user's session, and a tool reading the
// session's context sees the session owner, not the caller. With this
// package in place the SDK refuses such a request.
//
// It is a module of its own (github.com/mcpauth-go/mcpauth/middleware/gosdk)
// so that the main mcpauth module forces no SDK version on anyone.
//
// # Two ways to use it
//
// Behind mcpauth's middleware (recommended: mcpauth answers token faults
// with RFC 6750 / RFC 9728 challenges, outages with 503 and Retry-After,
// and authz runs before the SDK), wrap the SDK handler with [Middleware]:
//
//	sdk := mcp.NewStreamableHTTPHandler(getServer, nil) // stateful
//	h, err := middleware.Protect(gosdk.Middleware(sdk), middleware.Config{...})
//
// Or use the SDK's own bearer middleware with an mcpauth verifier, through
// [Verifier]:
//
//	h := auth.RequireBearerToken(gosdk.Verifier(v), &auth.RequireBearerTokenOptions{...})(sdk)
//
// # The user id
//
// A subject (sub) is unique only within its issuer, so the SDK's UserID is
// issuer-qualified (see [UserID]):
//
//	<iss>#<sub>        e.g. https://idp.example.com#248289761001
//
// An issuer identifier is a URL without a fragment (RFC 8414 §2, OpenID
// Connect Discovery §3), so the first "#" separates the two parts and no two
// (issuer, subject) pairs give the same UserID; an identity whose issuer
// contains "#", or whose issuer or subject is empty, is refused (an empty
// UserID would turn the SDK's check off).
//
// # The rest of TokenInfo
//
// Scopes and Expiration are the token's; Extra holds the issuer, subject,
// client id and audience under [ExtraIssuer], [ExtraSubject],
// [ExtraClientID] and [ExtraAudience], and the whole verified identity under
// [ExtraIdentity] (read it with [FromTokenInfo]). In the SDK's stateful mode a
// tool handler's context is that of the session, not of the request being
// handled, so authn.FromContext(ctx) in a tool reports whoever opened the
// session; the per-request identity is in the request:
//
//	info, ok := gosdk.FromTokenInfo(req.Extra.TokenInfo)
//
// and outbound transports (tokenexchange, credentials) find it once it is
// put back in the context with authn.NewContext(ctx, info).
package gosdk
