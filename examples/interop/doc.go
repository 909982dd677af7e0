// Package interop runs mcpauth and its examples against real, independent
// third-party software, in CI on every change. It has tests only:
//
//   - verify_test.go: the certified OpenID provider oidc-provider 9.13.3
//     (npm, run by Node 22 on 127.0.0.1) as the IdP of authn.Verifier and
//     middleware.Protect: its RFC 9068 JWT access tokens issued through RFC
//     8707 resource indicators (client_credentials, authorization code with
//     PKCE through its development login and consent pages driven by a
//     plain Go HTTP client, a client registered with RFC 7591 DCR) are
//     accepted; tokens for another resource, expired or tampered are
//     refused; its opaque tokens pass RFC 7662 introspection and fail once
//     revoked (RFC 7009).
//   - tsclient_test.go, goclient_test.go, inspector_test.go: the official
//     MCP clients (TypeScript SDK 1.32.2, Go SDK v1.8.0, Inspector CLI
//     2.12.0) against examples/gosdk (authn + Cedar authz + list filtering)
//     trusting that IdP: probe → 401 → protected resource metadata →
//     authorization server metadata → (DCR) → token → tools/list, filtered
//     per caller → tools/call, and a 403 insufficient_scope step-up. The Go
//     SDK's client-credentials handler, which sends no resource indicator,
//     is kept as a negative test.
//   - conformance_test.go: every server scenario of the official MCP
//     conformance suite (0.2.0-alpha.12) against examples/gosdk,
//     twice (stateless at 2026-07-28, stateful at 2025-11-25), each checked
//     against its baseline in testdata/conformance-baseline-gosdk-*.yml.
//   - embeddedas_test.go: the embedded authorization server (package
//     upstream, run as examples/embedded-as) with oidc-provider as its
//     upstream IdP. The conformance suite's authorization-server scenarios
//     (metadata, and an authorization code grant whose printed URL the test
//     opens: consent page, upstream login, callback) end "3 passed, 0
//     failed" for a DCR client, a Client ID Metadata Document client and a
//     pre-registered client (issuer with a path); the TypeScript SDK and Go
//     SDK clients log in through it (DCR, CIMD with the document on https
//     from 127.0.0.1, allowed by -cimd-allow and trusted through
//     SSL_CERT_FILE, and DCR with an issuer path) and call a tool with the
//     token it issued, which names the upstream user; the TypeScript SDK
//     then refreshes (rotated refresh token) and calls again; the Inspector
//     CLI logs in and reuses its stored authorization.
//
// The Node programs and their pinned packages are in testdata/node
// (package.json and package-lock.json; node_modules is not committed).
// Install them, then run the tests from the repository root:
//
//	. .ci/node-interop-setup.sh        # exports MCPAUTH_INTEROP_NODE
//	go test ./examples/interop/
//
// Without Node 22 and those packages the tests skip, saying what to install
// (on standard error and the terminal, even without -v); with CI=true they
// fail instead.
//
// The package lives in the examples module, not in internal/interop: it
// builds and runs the examples (go build of examples/gosdk) and drives them
// with the MCP Go SDK client, whose version the examples module already pins;
// internal/interop keeps the in-process Go peers (zitadel) that need no
// installation.
package interop
