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

// TestConformanceTLS runs the suite over TLS (go-redis's TLSConfig) to a
// real redis-server that accepts nothing else.
func TestConformanceTLS(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{TLS: true})
	key := newKey("k1")
	storetest.Run(t, func(t *testing.T) upstream.Store {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = c.Close() })
		s, err := redisstore.New(redisstore.Config{Client: c, Keys: []redisstore.Key{key}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
	// And plain TCP is refused: the data only travels encrypted.
	plain := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialerRetries: 1, MaxRetries: -1})
	defer plain.Close()
	if err := plain.Ping(t.Context()).Err(); err == nil {
		t.Fatal("the TLS server answered plain TCP")
	}
}

// TestConformanceCluster runs the suite through a redis.ClusterClient on a
// one-node Redis Cluster: every command touches one key, so slot routing
// needs no hash tags.
func TestConformanceCluster(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Cluster: true})
	key := newKey("k1")
	storetest.Run(t, func(t *testing.T) upstream.Store {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr()}, ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = c.Close() })
		s, err := redisstore.New(redisstore.Config{Client: c, Keys: []redisstore.Key{key}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestConformanceSentinel runs the suite through a redis.FailoverClient
// that finds the master through a real Redis Sentinel.
func TestConformanceSentinel(t *testing.T) {
	master := redistest.Start(t, redistest.Options{})
	sentinel := redistest.StartSentinel(t, master)
	key := newKey("k1")
	storetest.Run(t, func(t *testing.T) upstream.Store {
		c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: []string{sentinel}, ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = c.Close() })
		s, err := redisstore.New(redisstore.Config{Client: c, Keys: []redisstore.Key{key}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
