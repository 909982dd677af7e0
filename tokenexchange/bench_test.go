package tokenexchange_test

import (
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/tokenexchange"
)

// benchSubject is the size of a typical RS256 JWT access token.
var benchSubject = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0." + strings.Repeat("c", 420) + "." + strings.Repeat("s", 342)

// nopBackend answers every request at once without network I/O, so the
// benchmarks measure the transport, not the backend.
type nopBackend struct{}

func (nopBackend) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
}

func benchRequest(b *testing.B) *http.Request {
	req, err := http.NewRequestWithContext(identity(benchSubject, time.Now().Add(time.Hour)), http.MethodGet, "https://backend.invalid/x", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "bench")
	return req
}

// BenchmarkSHA256Subject is the raw crypto cost every lookup pays: hashing
// the subject token for the cache key.
func BenchmarkSHA256Subject(b *testing.B) {
	data := []byte(benchSubject)
	b.ReportAllocs()
	for b.Loop() {
		_ = sha256.Sum256(data)
	}
}

// BenchmarkCacheHitExchange is Exchange with a warm cache.
func BenchmarkCacheHitExchange(b *testing.B) {
	sts := newFakeSTS(b)
	tr, _ := tokenexchange.NewTransport(tokenexchange.Config{TokenURL: sts.URL(), Audience: "a", Scopes: []string{"x", "y"}}, nopBackend{})
	ctx := identity(benchSubject, time.Now().Add(time.Hour))
	if _, err := tr.Exchange(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.Exchange(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if sts.calls.Load() != 1 {
		b.Fatalf("STS calls = %d", sts.calls.Load())
	}
}

// BenchmarkCacheHitRoundTrip is a whole RoundTrip with a warm cache: lookup,
// passthrough check, request clone and header set.
func BenchmarkCacheHitRoundTrip(b *testing.B) {
	sts := newFakeSTS(b)
	tr, _ := tokenexchange.NewTransport(tokenexchange.Config{TokenURL: sts.URL(), Audience: "a"}, nopBackend{})
	req := benchRequest(b)
	if _, err := tr.RoundTrip(req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCacheHitRoundTripParallel is the same under contention.
func BenchmarkCacheHitRoundTripParallel(b *testing.B) {
	sts := newFakeSTS(b)
	tr, _ := tokenexchange.NewTransport(tokenexchange.Config{TokenURL: sts.URL(), Audience: "a"}, nopBackend{})
	if _, err := tr.RoundTrip(benchRequest(b)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := benchRequest(b)
		for pb.Next() {
			if _, err := tr.RoundTrip(req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkNoCacheRoundTrip is this package's transport with caching
// disabled: one STS call (loopback HTTP) per request.
func BenchmarkNoCacheRoundTrip(b *testing.B) {
	sts := newFakeSTS(b)
	tr, _ := tokenexchange.NewTransport(tokenexchange.Config{TokenURL: sts.URL(), Audience: "a", CacheSize: -1}, nopBackend{})
	req := benchRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}

// exchangeEveryRequest is the baseline: a transport that exchanges the
// inbound token on every request, as ToolHive's token-exchange middleware
// does today (no cache, no single flight).
type exchangeEveryRequest struct {
	tokenURL string
	client   *http.Client
	base     http.RoundTripper
}

func (e *exchangeEveryRequest) RoundTrip(req *http.Request) (*http.Response, error) {
	form := url.Values{
		"grant_type":           {tokenexchange.GrantType},
		"subject_token":        {benchSubject},
		"subject_token_type":   {tokenexchange.TokenTypeAccessToken},
		"requested_token_type": {tokenexchange.TokenTypeAccessToken},
		"audience":             {"a"},
	}
	resp, err := e.client.PostForm(e.tokenURL, form)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil {
		return nil, err
	}
	r2 := req.Clone(req.Context())
	r2.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	return e.base.RoundTrip(r2)
}

// BenchmarkBaselineExchangeEveryRequest is the baseline transport.
func BenchmarkBaselineExchangeEveryRequest(b *testing.B) {
	sts := newFakeSTS(b)
	tr := &exchangeEveryRequest{tokenURL: sts.URL(), client: sts.srv.Client(), base: nopBackend{}}
	req := benchRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}
