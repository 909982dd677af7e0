package upstream_test

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
)

// stubRT answers every request in memory, so a benchmark through it
// measures the Transport's own cost, not the network's.
type stubRT struct{}

func (stubRT) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
}

// benchTransport returns a Transport over a MemoryStore holding a fresh
// token for the caller in ctx.
func benchTransport(b *testing.B, base http.RoundTripper) (*upstream.Transport, context.Context) {
	store := upstream.NewMemoryStore()
	err := store.PutSession(context.Background(), &upstream.Session{
		TSID: "bench", Upstream: "u", Subject: "fake|42", AccessToken: "gho_" + strings.Repeat("a", 36), RefreshToken: "r",
		TokenType: "bearer", Expiry: time.Now().Add(time.Hour),
	}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := upstream.NewTransport(upstream.TransportConfig{
		Store:     store,
		Upstreams: map[string]*oauth2.Config{"u": {Endpoint: oauth2.Endpoint{TokenURL: "https://idp.example.com/token"}}},
	}, base)
	if err != nil {
		b.Fatal(err)
	}
	return tr, withIdentity(context.Background(), "bench")
}

// BenchmarkForward compares the cached forward (token fresh, in-memory
// store) with a bare RoundTrip of the same base transport: "stub" answers in
// memory (the difference is the Transport's whole cost), "loopback" sends to
// an httptest server on 127.0.0.1.
func BenchmarkForward(b *testing.B) {
	b.Run("stub/bare", func(b *testing.B) {
		_, ctx := benchTransport(b, stubRT{})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/user", nil)
		b.ReportAllocs()
		for b.Loop() {
			resp, _ := stubRT{}.RoundTrip(req)
			resp.Body.Close()
		}
	})
	b.Run("stub/memory", func(b *testing.B) {
		tr, ctx := benchTransport(b, stubRT{})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/user", nil)
		b.ReportAllocs()
		for b.Loop() {
			resp, err := tr.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	base := &http.Transport{MaxIdleConnsPerHost: 4}
	defer base.CloseIdleConnections()
	send := func(b *testing.B, rt http.RoundTripper, ctx context.Context) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/user", nil)
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
	b.Run("loopback/bare", func(b *testing.B) {
		_, ctx := benchTransport(b, base)
		send(b, base, ctx)
	})
	b.Run("loopback/memory", func(b *testing.B) {
		tr, ctx := benchTransport(b, base)
		send(b, tr, ctx)
	})
}
