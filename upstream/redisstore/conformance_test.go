package redisstore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/mcpauth-go/mcpauth/upstream"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore/internal/redistest"
	"github.com/mcpauth-go/mcpauth/upstream/storetest"
)

// TestConformance runs the shared Store suite against a real redis-server,
// each store a separate client (connection pool) on the one server.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	key := newKey("k1")
	storetest.Run(t, func(t *testing.T) upstream.Store {
		s, err := redisstore.New(redisstore.Config{Client: newClient(t, srv.Addr()), Keys: []redisstore.Key{key}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestConformanceUnavailable runs the suite's outage checks against a
// stopped server.
func TestConformanceUnavailable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	addr := srv.Addr()
	srv.Kill()
	storetest.RunUnavailable(t, func(t *testing.T) upstream.Store {
		s, err := redisstore.New(redisstore.Config{Client: newClient(t, addr), Keys: []redisstore.Key{newKey("k")}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestConformanceMiniredis runs the suite on miniredis with its clock fast
// forwarded, so the package is exercised on machines without redis-server.
func TestConformanceMiniredis(t *testing.T) {
	m := miniredis.RunT(t)
	var mu sync.Mutex
	key := newKey("k1")
	storetest.RunWith(t, func(t *testing.T) upstream.Store {
		c := redis.NewClient(&redis.Options{Addr: m.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		s, err := redisstore.New(redisstore.Config{Client: c, Keys: []redisstore.Key{key}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, storetest.Options{TTL: time.Minute, Advance: func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		m.FastForward(d)
	}})
}
