// Package interop holds interoperability tests that run mcpauth against real,
// independent third-party peers (identity providers, security token
// services). It is its own module so the library's users never inherit these
// test peers.
package interop
