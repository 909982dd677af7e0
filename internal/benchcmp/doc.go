// Package benchcmp benchmarks mcpauth against peer Go JWT/OIDC libraries on
// the same tokens in the same run. It is its own module so the library's
// users never inherit these peers.
//
// The tokens are JWT access tokens (RFC 7519) in the RFC 9068 profile, signed
// as compact JWS (RFC 7515) with RS256 or ES256 (RFC 7518), whose audience is
// the MCP server's resource URI (RFC 8707). BenchmarkPeers times each
// verifier beside the bare signature check; TestPeersVerifyFully checks that
// each one does the same work (signature, iss, aud, exp). See README.md.
package benchcmp
