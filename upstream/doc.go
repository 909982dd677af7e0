// Package upstream is the embedded OAuth 2.1 authorization server that logs
// users in at an upstream identity provider (GitHub, Google, …), keeps their
// upstream tokens per session and issues its own short-lived JWTs.
//
// This commit defines its storage contract: the Store interface, the
// in-memory MemoryStore and the shared conformance suite in
// upstream/storetest. The server itself follows.
package upstream
