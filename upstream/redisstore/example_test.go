package redisstore_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/mcpauth-go/mcpauth/upstream"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore"
)

// A Store on Redis for upstream.Config.Store. Here Redis is an in-process
// miniredis; in production it is redis.NewUniversalClient's client with
// ContextTimeoutEnabled (and TLSConfig, MasterName or several Addrs for
// TLS, Sentinel or Cluster).
func ExampleNew() {
	m, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer m.Close()
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
	defer rdb.Close()

	secret := make([]byte, 32) // in production: 32 random bytes from your secret store, the same on every replica
	_, _ = rand.Read(secret)
	store, err := redisstore.New(redisstore.Config{Client: rdb, Keys: []redisstore.Key{{ID: "2026-12", Secret: secret}}})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	_ = store.PutSession(ctx, &upstream.Session{TSID: "s1", AccessToken: "gho_token"}, time.Hour)
	s, _ := store.GetSession(ctx, "s1")
	fmt.Println(s.AccessToken == "gho_token", s.Version)

	// What Redis holds is sealed: no token, no session ID.
	for _, k := range m.Keys() {
		v, _ := m.Get(k)
		fmt.Println(len(k) > len("mcpauth:session:"), len(v) > 0, v != "gho_token")
	}
	// Output:
	// true 1
	// true true true
}
