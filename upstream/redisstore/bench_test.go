package redisstore_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpauth-go/mcpauth/upstream"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore/internal/redistest"
)

// stubRT answers every request in memory, so a benchmark through it
// measures the Transport's own cost, not the backend's.
type stubRT struct{}

func (stubRT) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
}

// BenchmarkForward compares the cached forward (token fresh) with the
// session in Redis on loopback, with the session in memory, and a bare
// RoundTrip of the same base transport, in one run: "stub" answers in
// memory, "loopback" sends to an httptest server on 127.0.0.1. Also the
// store read alone.
func BenchmarkForward(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	rs, err := redisstore.New(redisstore.Config{Client: newClient(b, srv.Addr()), Keys: []redisstore.Key{newKey("k1")}})
	if err != nil {
		b.Fatal(err)
	}
	sess := &upstream.Session{
		TSID: "bench", Upstream: "u", Subject: "fake|42", AccessToken: "gho_" + strings.Repeat("a", 36),
		RefreshToken: "ghr_" + strings.Repeat("b", 76), TokenType: "bearer", Expiry: time.Now().Add(time.Hour),
	}
	stores := map[string]upstream.Store{"redis": rs, "memory": upstream.NewMemoryStore()}
	for _, s := range stores {
		if err := s.PutSession(context.Background(), sess, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	ctx := withIdentity(context.Background(), "bench")
	transport := func(b *testing.B, s upstream.Store, base http.RoundTripper) *upstream.Transport {
		tr, err := upstream.NewTransport(upstream.TransportConfig{
			Store:     s,
			Upstreams: map[string]*oauth2.Config{"u": {Endpoint: oauth2.Endpoint{TokenURL: "https://idp.example.com/token"}}},
		}, base)
		if err != nil {
			b.Fatal(err)
		}
		return tr
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()
	base := &http.Transport{MaxIdleConnsPerHost: 4}
	defer base.CloseIdleConnections()
	send := func(b *testing.B, rt http.RoundTripper, url string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		b.ReportAllocs()
		for b.Loop() {
			resp, err := rt.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	b.Run("stub/bare", func(b *testing.B) { send(b, stubRT{}, "https://api.example.com/user") })
	b.Run("stub/memory", func(b *testing.B) { send(b, transport(b, stores["memory"], stubRT{}), "https://api.example.com/user") })
	b.Run("stub/redis", func(b *testing.B) { send(b, transport(b, rs, stubRT{}), "https://api.example.com/user") })
	b.Run("loopback/bare", func(b *testing.B) { send(b, base, backend.URL+"/user") })
	b.Run("loopback/memory", func(b *testing.B) { send(b, transport(b, stores["memory"], base), backend.URL+"/user") })
	b.Run("loopback/redis", func(b *testing.B) { send(b, transport(b, rs, base), backend.URL+"/user") })
	b.Run("GetSession/redis", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rs.GetSession(ctx, "bench"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
