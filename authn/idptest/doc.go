// Package idptest provides a fake OAuth 2.1 authorization server and OpenID
// provider for tests, in the manner of net/http/httptest: [NewServer] starts
// it on a random loopback port and registers its shutdown with t.Cleanup.
//
// A Server mints signed JWT access tokens ([Server.Token], [Server.TokenWith])
// and opaque tokens ([Server.OpaqueToken]) and serves:
//
//   - RFC 8414 authorization server metadata and OpenID Connect Discovery 1.0,
//     at the path-inserted and the appended well-known locations;
//   - a JSON Web Key Set (RFC 7517) with one key per configured algorithm
//     (RFC 7518, RFC 8037 EdDSA), with rotation ([Server.RotateKeys],
//     [Server.RetireOldKeys]);
//   - an RFC 6749 token endpoint: client_credentials, authorization_code with
//     PKCE S256 (RFC 7636) behind an auto-approving authorization endpoint
//     that returns the RFC 9207 iss parameter, rotating refresh tokens, RFC
//     8707 resource indicators, and RFC 8693 token exchange;
//   - RFC 7662 token introspection.
//
// Every endpoint can be made slow, down or broken ([Server.SetFault]) and
// counts its requests ([Server.Requests]), so clients' caching, retries and
// outage handling can be tested.
//
// It is for tests and local development only: keys are generated for each
// server, nothing is persisted, and the authorization endpoint approves every
// well-formed request without a login. Tokens and secrets are never logged.
package idptest
