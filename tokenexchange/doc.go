// Package tokenexchange gives an MCP server's outbound HTTP calls a credential
// of their own: for each request it exchanges the verified caller's token
// (the subject token, taken from the request context by [authn.FromContext])
// at a Security Token Service for a short-lived token meant for the backend,
// and sends that instead. The client's own token is never forwarded (the MCP
// authorization specification forbids token passthrough).
//
// Protocols:
//   - RFC 8693, OAuth 2.0 Token Exchange: the request parameters
//     (grant_type, subject_token, subject_token_type, requested_token_type,
//     audience, resource, scope, actor_token, actor_token_type) and the
//     response (issued_token_type, token_type, expires_in).
//   - RFC 6749 §2.3 and §5.2: client authentication (client_secret_basic,
//     client_secret_post, public clients) and the error response
//     (error, error_description, error_uri), surfaced as [*Error].
//   - RFC 7523 §2.2 and §3: private_key_jwt client authentication with a
//     signed client assertion.
//   - RFC 8707: several resource parameters.
//   - RFC 8414 / OpenID Connect Discovery: the token endpoint may be
//     discovered from the issuer.
//
// # Caching
//
// Exchanged tokens are cached per subject: the cache key is a SHA-256 hash
// over the hash of the subject token, its type, the audience, the sorted
// scopes, the sorted resources, the requested token type and the actor token
// (the raw token is never a key). An entry lives until the issued token's
// expiry minus [Config.Skew], and never past the subject token's expiry. The
// cache is bounded ([Config.CacheSize], least recently used entries go first).
// A token issued without expires_in, or one that expires within the skew,
// is used for the request at hand and not cached.
// Concurrent misses for one key make exactly one STS call; each waiting
// request still gives up on its own context.
//
// # Federated identity providers
//
// The tokenexchange/google sub-package fills a [Config] for Google Cloud's
// Security Token Service (workload identity federation). For another
// federated STS, fill a [Config] by hand:
//
//   - TokenURL: the STS token endpoint (or Issuer, to discover it).
//   - Audience and/or Resources: what the STS expects to name the target
//     (a provider resource name for Google, an API identifier or URL elsewhere).
//   - SubjectTokenType: the type the STS expects for the inbound token, often
//     urn:ietf:params:oauth:token-type:jwt or ...:id_token for a foreign JWT.
//   - AuthMethod: [None] if the STS trusts the subject token alone (no client
//     credentials), otherwise one of the client authentication methods.
//   - SubjectTokenSource: when the subject is not the inbound token but
//     another token held for the user (one issued by an upstream identity
//     provider, say), implement [SubjectTokenSource] or use a
//     [SubjectTokenFunc].
//
// # Outbound rules
//
// The exchanged token goes in the configured header (Authorization by
// default), replacing whatever the request held there: a handler that copies
// the inbound Authorization onto its backend call gets its call sent with
// the exchanged token, as with golang.org/x/oauth2's Transport. The inbound
// token found anywhere else — another header, a cookie, the user or password
// part of a Basic credential, the URL, a trailer — refuses the request with
// [ErrPassthrough] before any exchange. The token is sent only over https,
// or plain http to a loopback host, unless [Config.InsecureAllowHTTP];
// [Config.Hosts] pins it to the backend's hosts; without Hosts a redirect to
// another host (other than a subdomain) does not get it
// ([ErrDestinationNotAllowed]). These rules, and their sentinels, are
// shared with the credentials package: errors.Is works the same on an
// error from either.
//
// # Errors and secrets
//
// A request without a verified identity in its context fails with
// [ErrNoIdentity] and is never sent; one that carries the inbound token
// outside the credential header fails with [ErrPassthrough] before any
// exchange, and so does a token endpoint that answers with the subject or
// actor token itself; a destination the token may not reach fails with
// [ErrDestinationNotAllowed]; an expired subject token is never sent to the
// STS ([ErrSubjectExpired]). STS 4xx answers are [*Error] values
// carrying the RFC 6749 error code; 5xx answers, timeouts, malformed and
// oversized (more than 1 MiB) responses match [ErrRetryable]. No error string
// or log line ever contains a subject, actor or issued token or a client
// secret; [Config] and [Token] redact them when printed or marshalled.
//
// This package depends on golang.org/x/oauth2 only for the [oauth2.TokenSource]
// adapter and on golang.org/x/sync for single flight.
package tokenexchange
