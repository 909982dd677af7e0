// Package upstream is an embedded OAuth 2.1 authorization server for an MCP
// server whose tools act as the logged-in user at an upstream provider
// (GitHub, Google, Atlassian, a corporate OpenID provider).
//
// MCP clients discover it through the MCP server's Protected Resource
// Metadata (package prm), register, and log in. The Server sends the user on
// to the upstream provider, keeps the upstream tokens in a Store under a
// session id, and issues its own short-lived JWT access token whose audience
// is the MCP server's resource and whose tsid claim names that session.
// Package authn verifies those tokens like any other issuer's
// (authn.NewVerifier with Issuer set to Config.Issuer); the stored upstream
// token is what the MCP server forwards to backends.
//
//	as, err := upstream.NewServer(upstream.Config{
//		Issuer:    "https://mcp.example.com",
//		Resources: []string{"https://mcp.example.com/mcp"},
//		Upstreams: []upstream.Provider{{
//			Name: "github", Type: upstream.OAuth2,
//			AuthURL:     "https://github.com/login/oauth/authorize",
//			TokenURL:    "https://github.com/login/oauth/access_token",
//			UserinfoURL: "https://api.github.com/user",
//			ClientID:    id, ClientSecret: secret,
//		}},
//		SigningKeys: []upstream.SigningKey{{PEM: keyPEM}},
//	})
//	mux.Handle("/", as) // serves the well-known documents and its endpoints
//
// # Protocol
//
//   - Discovery: RFC 8414 authorization server metadata and OpenID Connect
//     Discovery 1.0 at all three well-known locations for an issuer with a
//     path; code_challenge_methods_supported is ["S256"],
//     authorization_response_iss_parameter_supported and
//     client_id_metadata_document_supported are advertised. The JWKS
//     (RFC 7517) publishes the active key and every previous key still
//     needed, so rotation (Server.RotateSigningKey) never invalidates a live
//     token.
//   - Authorization (OAuth 2.1): response_type=code with PKCE S256 only
//     (RFC 7636; plain or a missing challenge is an error); exact redirect
//     URI match except the port of a loopback redirect (RFC 8252 §7.3); an
//     unknown client or unregistered redirect URI gets an error page, never
//     a redirect; state echoed; the RFC 9207 iss parameter on every
//     authorization response, errors included; one RFC 8707 resource from
//     Config.Resources (defaulted when only one is configured), else
//     invalid_target.
//   - Consent (the MCP "confused deputy" rule): before the user is sent to
//     the upstream for a client this browser has not approved, a consent
//     page names the client, its client_id and the redirect host. The form
//     is CSRF-protected by a token derived from an HttpOnly SameSite cookie,
//     the login is bound to the browser that started it, a repeated GET
//     shows the same page, and Config.ConsentPage lets an application render
//     its own.
//   - Upstream login: OpenID Connect (discovery, ID token verified with
//     package authn: signature, iss, aud, exp and nonce) or plain OAuth 2.0
//     with explicit endpoints and the user id from a userinfo endpoint
//     (GitHub), always with its own PKCE and state. Several upstreams may be
//     configured; the user chooses on the consent page (or the client
//     preselects one with the extra authorization parameter
//     upstream=<name>). Issued subjects are
//     namespaced: "<provider name>:<upstream user id>".
//   - Token endpoint (RFC 6749 §3.2): single-use authorization codes (60 s
//     by default) whose replay revokes the refresh tokens and upstream
//     session the first redemption issued; the code verifier checked; the
//     resource must match the authorized one; refresh tokens rotated on
//     every use, and the reuse of a rotated-out one revokes its whole
//     family (OAuth 2.1 §4.3.1); Cache-Control: no-store; client
//     authentication none, client_secret_basic, client_secret_post or
//     private_key_jwt (RFC 7523, single-use jti: remembered in the Store
//     when it is a [ReplayGuard], so a replica refuses an assertion another
//     replica accepted; a failed check is a 503, never an acceptance).
//     Revocation per RFC 7009.
//   - Access tokens are JWTs (RFC 9068 typ at+jwt) with iss, aud (the
//     resource), sub, client_id, scope, tsid, exp, iat and jti.
//   - Clients: Client ID Metadata Documents (the client_id is an https URL,
//     preferred by MCP 2026-07-28), fetched over https only, never from a
//     private, loopback or link-local address (checked on the address
//     actually dialled, so DNS rebinding does not help) unless
//     ClientMetadataConfig.AllowedNetworks allows it, with size and time
//     caps, redirects refused, cached per Cache-Control, and the client_id
//     inside required to equal the URL. RFC 7591 dynamic registration is
//     deprecated by MCP 2026-07-28 and on by default for older clients; a
//     client registering a narrower scope set than the server needs gets
//     Config.DefaultScopes as well. Registration is unauthenticated, so it
//     is bounded by default: 60 registrations a minute per process
//     (Config.RegistrationLimit, then 429 with Retry-After), and a client
//     nobody has logged in through is dropped after 24 hours
//     (Config.UnusedClientTTL); each login keeps it for Config.ClientTTL.
//   - Errors are RFC 6749 JSON (error, error_description); a storage outage
//     is 503 with Retry-After, never an OAuth error that would send a client
//     into a new login. No code, token, verifier or secret is logged or
//     returned in an error; every endpoint bounds its input.
//
// # Calling backends as the user
//
// [NewTransport] returns an http.RoundTripper for the tools' backend calls:
// it reads the verified caller from the request context (authn's
// middleware puts it there), loads the upstream token of the session the
// caller's tsid claim names, and sends it in place of any Authorization
// header: over https (or to loopback), only to TransportConfig.Hosts when
// set, and never without a verified caller. A token that expired (or is
// about to) is refreshed first, once per session however many requests and
// replicas need it at the same moment:
//
//	tr, err := upstream.NewTransport(upstream.TransportConfig{Server: as, Hosts: []string{"api.github.com"}}, nil)
//	client := &http.Client{Transport: tr}
//	// in a tool handler, with the inbound request's context:
//	req, _ := http.NewRequestWithContext(ctx, "GET", "https://api.github.com/user", nil)
//	resp, err := client.Do(req)
//
// [Transport] and [TransportConfig] document the refresh rules (skew, the
// refresh token kept when the upstream returns none, the session's ttl)
// and the failures. The repository's examples/embedded-as runs it all: an
// MCP server with this authorization server whose upstream_profile tool
// calls the upstream as the logged-in user.
//
// # Answering a lost grant or an outage
//
// When a backend call cannot be made because the user's upstream grant is
// gone ([ErrReauthenticate]: revoked at the provider, session expired) or
// the store is down ([ErrUnavailable]), the MCP client must learn it from
// the HTTP status, not from a tool result. [HandleErrors], around the MCP
// handler and inside authn's middleware, answers such a request with 401
// invalid_token and an error_description telling the client to log in
// again, or with 503 and Retry-After (never 401, which would log every user
// out during an outage). [WriteError] does the same for a handler that sees
// the error itself. A pair the upstream rotated but the store refused is
// kept in memory under the session's refresh lock and stored as soon as
// the store answers again, by the next request or in the background while
// the lock holds, so an outage does not spend the user's refresh token.
//
// # SDK clients that take a token source
//
// [Transport.TokenSource] gives an oauth2.TokenSource bound to one inbound
// request's context, for backend SDKs that accept one instead of an
// http.Client: each Token call returns that caller's fresh upstream access
// token (refreshed like the Transport's), never the refresh token.
//
// # Storage
//
// Everything the server remembers goes through the Store interface:
// clients, logins in flight, codes (hashed), refresh-token families (only the
// hash of the current token), upstream-token sessions (versioned for
// compare-and-swap refresh) and consents, each with a TTL. Two optional
// interfaces let a shared store do more without changing Store:
// [SessionLocker] (one upstream refresh across replicas) and [ReplayGuard]
// (a client assertion's jti used once across replicas; without it each
// Server remembers jtis in its own process). MemoryStore is the default for
// one replica and implements both; package upstream/storetest is the
// conformance suite every implementation runs. Package upstream/upstreamtest
// is a fake upstream provider for tests and demos.
//
// # Several replicas on Redis
//
// Package upstream/redisstore (its own module,
// github.com/mcpauth-go/mcpauth/upstream/redisstore, so that only those who
// use it build go-redis) is a Store on Redis: every replica given the same
// Redis, encryption key and signing key behaves as one server. Its values
// are encrypted with AES-256-GCM, single-use records are consumed
// atomically, and it implements [SessionLocker], so a Transport refreshes
// each upstream token once across all replicas, and [ReplayGuard], so a
// client assertion accepted by one replica is refused by every other. Its
// package documentation
// covers connection (TLS, Sentinel, Cluster), key layout, encryption,
// atomicity and durability.
//
// # Why no OAuth server framework
//
// The server is written on golang.org/x/oauth2 (the upstream leg, PKCE),
// github.com/lestrrat-go/jwx/v3 (signing keys, JWKS, client assertions) and
// package authn (upstream ID tokens). The only OAuth server framework the Go
// module proxy serves in a recent version that would fit, ory/fosite
// (v0.49.0), has had no release for two years, brings some fifty modules
// (OpenTelemetry, gRPC, an ORM, a second JOSE library) into every user's
// build, and lacks exactly what MCP needs: RFC 8707 resource binding, the
// RFC 9207 iss parameter, dynamic registration and Client ID Metadata
// Documents. zitadel/oidc's op package lacks them too and treats a missing
// PKCE method as plain. Either would still need the same surrounding code
// (consent, upstream login, session storage), so it would add weight and
// attack surface without removing work.
package upstream
