// Package redisstore is a Redis implementation of [upstream.Store], for
// running several replicas of an MCP server with the embedded authorization
// server: every replica shares one Redis and behaves as one server (a login
// started on one replica finishes on another; an upstream token is refreshed
// once, whichever replica needs it).
//
// # Connection
//
// [Config].Client is any [redis.UniversalClient]: a *redis.Client for one
// server (with Options.TLSConfig for TLS), a *redis.FailoverClient for
// Sentinel, a *redis.ClusterClient for Cluster, or what
// redis.NewUniversalClient builds from one set of options. Every command
// touches a single key, so Cluster needs no hash tags. Set
// ContextTimeoutEnabled in the client's options so that a request's own
// deadline bounds the Redis calls made for it (go-redis otherwise waits for
// its ReadTimeout on a slow server).
//
// # Layout and expiry
//
// Keys are Config.Prefix (default "mcpauth:") + kind + ":" + base64url(SHA-256(id)):
// kinds client, pending, code, family, session, consent, lock, and once (a
// client assertion's jti, [Store.UseOnce]). IDs are
// hashed because a key name is not encrypted and some IDs are handles worth
// keeping out of a dump. Every record carries the ttl the Store contract
// gives it as a Redis expiry (PX), so Redis itself drops what has expired;
// ttl <= 0 stores without expiry.
//
// # Encryption at rest
//
// Every value is sealed with AES-256-GCM under Config.Keys[0]: a random
// 96-bit nonce per write, the key's ID in the value (so older keys still
// decrypt after a rotation), and the key name as additional data, so a
// value copied to another key — one session's tokens onto another session,
// a code onto a refresh family — does not decrypt. A dump of the Redis (RDB,
// AOF, replica, MONITOR) contains no token, code, verifier or ID in the
// clear. A value that no configured key opens is reported as
// [ErrUndecryptable], wrapped in upstream.ErrUnavailable (never as absent:
// a replica missing a key must not make the server revoke what it cannot
// read). A value read under an older key is re-sealed under Keys[0],
// keeping its TTL. Authenticated encryption does not stop a writer to the
// Redis from restoring an older value of the same key (a rollback): keep
// write access to the Redis as private as the keys.
//
// # Atomicity
//
// Single-use and compare-and-swap operations are atomic across all
// replicas: ConsumePending is GETDEL; ConsumeCode a Lua script that reads the
// record and counts its uses in one step; RotateFamily and UpdateSession
// read and decrypt the record, check the condition in Go, then write with a
// Lua script that swaps only if the stored ciphertext is still the one
// read (a random nonce makes every write's ciphertext unique, so this is an
// exact compare-and-swap). [Store.LockSession] is the refresh lock
// upstream.Transport takes across replicas (SET NX PX with an owner token,
// released by a compare-and-delete script); its lifetime, Config.LockTTL,
// must exceed the Transport's RefreshTimeout, which upstream.NewTransport
// checks through [Store.LockTTL]. [Store.UseOnce] is the
// upstream.ReplayGuard the Server checks RFC 7523 client assertion jtis
// with: SET NX PX under a once key, so an assertion accepted by one replica
// is refused by every other until the key expires (the assertion's
// remaining lifetime plus two minutes of skew). When Redis cannot answer,
// the token request is refused with 503, never accepted unchecked.
//
// # Durability
//
// Run Redis with persistence (appendonly yes; appendfsync everysec loses at
// most a second of writes, always loses none): a restarted Redis without its
// data has forgotten every login, and users must log in again. Replication
// to Sentinel or Cluster replicas is asynchronous, so a failover can lose the
// last writes — among them, rarely, a just-rotated upstream refresh token,
// after which that user logs in again. The tests kill a Redis running with
// appendfsync always mid-traffic and find every session after the restart.
//
// # Why a nested module
//
// DESIGN.md allows go-redis in the main module, but this package is its own
// module (github.com/mcpauth-go/mcpauth/upstream/redisstore, joined to the
// repository by go.work): an application that keeps its sessions in memory,
// or in another store, never downloads or builds go-redis and its
// dependencies, and a go-redis upgrade is this module's release, not the
// library's. The cost is one more require line for those who want Redis.
package redisstore
