// Package interop holds interoperability tests that run mcpauth against real,
// independent third-party peers (identity providers, security token
// services). It is its own module so the library's users never inherit these
// test peers.
//
// zitadel_test.go runs the tokenexchange transport against the example
// OpenID Provider of github.com/zitadel/oidc/v3 (fetched through the Go
// module proxy, built in-process, listening on 127.0.0.1 only): RFC 8693
// token exchange at its token endpoint, with and without an actor token, and
// RFC 7662 introspection of the exchanged token by the backend it is meant
// for. Nothing needs installing, so these tests never skip. Run them from
// the repository root:
//
//	go test ./internal/interop/...
package interop
