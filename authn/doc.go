// Package authn verifies the bearer tokens of requests to an MCP server, the
// OAuth 2.1 resource server role of the MCP authorization specification
// (revision 2026-07-28).
//
// [Verifier] checks tokens of one issuer. A JWT access token (RFC 7519,
// RFC 9068) is verified locally against the issuer's JSON Web Key Set
// (RFC 7517), configured or discovered from the issuer (RFC 8414, then
// OpenID Connect Discovery; the document's issuer must equal the configured
// one). An opaque token is introspected (RFC 7662) when configured. The
// token's audience must contain this server's canonical URI (RFC 8707).
// [MultiVerifier] routes tokens to one of several Verifiers by issuer.
//
// [Middleware] puts a [TokenVerifier] in front of a handler and answers as
// RFC 6750 §3 and RFC 9728 §5.1 prescribe: 401 with a resource_metadata
// challenge and no error when there is no token; 401 invalid_token, with one
// fixed public description, for a bad token; 403 insufficient_scope naming
// every scope the request needs (step-up); 400 invalid_request for
// ambiguous credentials or a token in the query string; and 503 with
// Retry-After, never 401, when the keys or the introspection endpoint are
// unreachable. The verified identity travels in the request context
// ([FromContext]).
//
// # Security decisions
//
//   - Only asymmetric algorithms (RS*, PS*, ES*, EdDSA); "none" and HS*
//     cannot be enabled. The key, selected by kid from the JWKS, decides the
//     verification: a JWK's alg, when present, must equal the token's, and
//     its type must suit the algorithm. jku, x5u, jwk and x5c headers are
//     never read; any crit header rejects the token.
//   - Compact JWS only (no JWE, no JSON serialization), strict base64url,
//     header and payload read by the module's one JSON reader
//     (internal/jsonread), which rejects duplicate and case-variant member
//     names at any depth and invalid UTF-8; token size capped (16 KiB)
//     before any decoding. A bearer credential that is not token68 (JSON,
//     a JWS JSON serialization, stray characters) is an invalid token.
//   - iss matched exactly; aud (string or array) must contain a configured
//     resource; sub required; exp required; exp, nbf and iat checked with a
//     leeway of 60 s by default (5 min at most). typ "at+jwt" and "JWT" by
//     default; Config.StrictTyp requires RFC 9068's at+jwt.
//   - A JWS is never sent to introspection, so a verification failure cannot
//     be retried through another path.
//   - Errors match [ErrInvalidToken] (and [ErrExpired]) or [ErrUnavailable];
//     their text names the cause and never contains the token. No log line,
//     error, String or MarshalJSON output contains a token or secret.
//
// # Keys, caches and outages
//
// NewVerifier contacts nobody: discovery and the first key fetch happen on
// the first request and are retried, so a server may start before its IdP;
// [Verifier.Ready] fetches them at start instead, so a mistyped issuer fails
// the deployment. Discovery happens once per Verifier and serves both the
// JWKS URL and the introspection endpoint. Readers use an immutable key
// snapshot without locks. The snapshot is refreshed in the background when
// the JWKS response's Cache-Control max-age (bounded by KeyCacheMinTTL and
// KeyCacheMaxTTL) runs out. A token with an unknown kid triggers at most one
// refetch per RefreshInterval (5 min), shared by every waiter, each of which
// can give up on its own context. During an outage the last good keys are
// used up to MaxStaleness. With fixed keys, Config.KeySet (a [StaticKeySet]
// or the user's own [KeySet]) replaces the JWKS and nothing is fetched.
//
// A verified token is remembered until its exp or TokenCacheMaxTTL,
// whichever is sooner, and forgotten when its key leaves the JWKS: a
// repeated token costs a keyed 64-bit hash (hash/maphash, seeded per
// Verifier), a map lookup and a constant-time comparison with the token the
// entry was verified from, so no token is ever answered with another's
// identity. The token is held only inside the cached [TokenInfo], which
// never prints, logs or marshals it.
package authn
