// Package benchcmp benchmarks mcpauth against peer Go JWT/OIDC libraries on
// the same tokens in the same run. It is its own module so the library's
// users never inherit these peers.
package benchcmp
