package redisstore_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpauth-go/mcpauth/upstream/redisstore"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore/internal/redistest"
)

// newKey returns a fresh random AES-256 key named id.
func newKey(id string) redisstore.Key {
	k := redisstore.Key{ID: id, Secret: make([]byte, 32)}
	_, _ = rand.Read(k.Secret)
	return k
}

// newClient returns a go-redis client for addr whose commands honour their
// context's deadline, closed when t ends.
func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
		MaxRetries:            -1, // a failure is reported, not hidden behind retries
		DialerRetries:         2,
		PoolSize:              32,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newStore returns a Store on a fresh real redis-server (see redistest).
func newStore(t testing.TB, keys ...redisstore.Key) (*redisstore.Store, *redistest.Server, *redis.Client) {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, srv.Addr())
	if len(keys) == 0 {
		keys = []redisstore.Key{newKey("k1")}
	}
	s, err := redisstore.New(redisstore.Config{Client: c, Keys: keys, Prefix: "test:"})
	if err != nil {
		t.Fatal(err)
	}
	return s, srv, c
}
