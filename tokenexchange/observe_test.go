package tokenexchange_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/observe"
	"github.com/mcpauth-go/mcpauth/tokenexchange"
)

// TestObserverExchanges: one event per STS call (timed, with its outcome)
// and one per token served from the cache; a refused exchange is Failed,
// an STS outage Unavailable.
func TestObserverExchanges(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	obs := &observe.Observer{Exchange: func(_ context.Context, e observe.Exchange) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, e.Cache.String()+"/"+e.Outcome.String())
		if (e.Cache == observe.CacheHit) != (e.Duration == 0) {
			t.Errorf("event %+v: only a cache hit is untimed", e)
		}
	}}
	srv := newIdP(t, 10*time.Minute)
	tr, _ := idpTransport(t, srv, func(c *tokenexchange.Config) { c.Observer = obs })
	be := newBackend(t)
	ctx := identity(srv.Token(map[string]any{"sub": "alice"}), time.Now().Add(time.Hour))
	for range 3 {
		if _, err := get(ctx, tr, be.srv.URL); err != nil {
			t.Fatal(err)
		}
	}
	srv.SetFault(idptest.EndpointToken, idptest.Fault{Status: 400, Body: `{"error":"invalid_grant"}`})
	if _, err := get(identity(srv.Token(map[string]any{"sub": "bob"}), time.Now().Add(time.Hour)), tr, be.srv.URL); err == nil {
		t.Fatal("refused exchange sent the request")
	}
	srv.SetFault(idptest.EndpointToken, idptest.Fault{Status: 503})
	if _, err := get(identity(srv.Token(map[string]any{"sub": "carol"}), time.Now().Add(time.Hour)), tr, be.srv.URL); err == nil {
		t.Fatal("exchange during an outage sent the request")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "miss/ok hit/ok hit/ok miss/failed miss/unavailable"; strings.Join(got, " ") != want {
		t.Fatalf("events = %q, want %q", strings.Join(got, " "), want)
	}
}
