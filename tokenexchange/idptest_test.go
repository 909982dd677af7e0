package tokenexchange_test

// Tests against the module's fake IdP (authn/idptest), whose token endpoint
// implements RFC 8693 and can inject faults.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/tokenexchange"
)

const idpSecret = "CANARY-IDP-CLIENT-SECRET"

func newIdP(t *testing.T, ttl time.Duration) *idptest.Server {
	t.Helper()
	return idptest.NewServer(t, idptest.Config{
		Audience:    []string{"https://mcp.example"},
		Clients:     []idptest.Client{{ID: "mcp", Secret: idpSecret}},
		ExchangeTTL: ttl,
	})
}

func idpTransport(t *testing.T, srv *idptest.Server, mut func(*tokenexchange.Config)) (*tokenexchange.Transport, *syncBuffer) {
	t.Helper()
	logger, logs := logBuffer()
	cfg := tokenexchange.Config{
		Issuer:       srv.Issuer(),
		ClientID:     "mcp",
		ClientSecret: idpSecret,
		Audience:     "https://backend.example",
		Scopes:       []string{"read"},
		HTTPClient:   srv.Client(),
		Logger:       logger,
	}
	if mut != nil {
		mut(&cfg)
	}
	return mustTransport(t, cfg), logs
}

func TestIdPTestExchange(t *testing.T) {
	t.Parallel()
	srv := newIdP(t, 10*time.Minute)
	tr, _ := idpTransport(t, srv, nil)
	be := newBackend(t)
	subject := srv.Token(map[string]any{"sub": "alice"})
	ctx := identity(subject, time.Now().Add(time.Hour))
	for range 3 {
		if _, err := get(ctx, tr, be.srv.URL); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Requests(idptest.EndpointToken); n != 1 {
		t.Errorf("token endpoint requests = %d, want 1", n)
	}
	form := srv.LastTokenRequest()
	if form.Get("grant_type") != tokenexchange.GrantType || form.Get("subject_token") != subject ||
		form.Get("audience") != "https://backend.example" || form.Get("scope") != "read" {
		t.Errorf("token request = %v", form)
	}
	be.assertNeverSaw(t, subject)
	h := be.lastRequest(t).Header.Get("Authorization")
	if !strings.HasPrefix(h, "Bearer ") || len(h) < 20 {
		t.Errorf("backend Authorization = %.10q…", h)
	}
}

func TestIdPTestFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		fault         idptest.Fault
		timeout       time.Duration
		wantRetryable bool
		wantStatus    int
	}{
		{name: "5xx", fault: idptest.Fault{Status: 500}, wantRetryable: true, wantStatus: 500},
		{name: "503 garbage", fault: idptest.Fault{Status: 503, Garbage: true}, wantRetryable: true, wantStatus: 503},
		{name: "slow", fault: idptest.Fault{Delay: 2 * time.Second}, timeout: 100 * time.Millisecond, wantRetryable: true},
		{name: "garbage 200", fault: idptest.Fault{Garbage: true}, wantRetryable: true},
		{name: "connection dropped", fault: idptest.Fault{Down: true}, wantRetryable: true},
		{name: "oversized", fault: idptest.Fault{Body: `{"access_token":"` + strings.Repeat("x", tokenexchange.MaxResponseSize) + `"}`}, wantRetryable: true},
		{name: "4xx", fault: idptest.Fault{Status: 400}, wantStatus: 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newIdP(t, 0)
			tr, logs := idpTransport(t, srv, func(c *tokenexchange.Config) { c.Timeout = tc.timeout })
			subject := srv.Token(map[string]any{"sub": "alice"})
			ctx := identity(subject, time.Now().Add(time.Hour))
			srv.SetFault(idptest.EndpointToken, tc.fault)
			_, err := tr.Exchange(ctx)
			if err == nil {
				t.Fatal("want error")
			}
			if got := errors.Is(err, tokenexchange.ErrRetryable); got != tc.wantRetryable {
				t.Errorf("retryable = %v, want %v: %v", got, tc.wantRetryable, err)
			}
			var te *tokenexchange.Error
			if tc.wantStatus != 0 && (!errors.As(err, &te) || te.StatusCode != tc.wantStatus) {
				t.Errorf("err = %v, want *Error with status %d", err, tc.wantStatus)
			}
			assertClean(t, "error", err.Error(), subject, idpSecret)
			assertClean(t, "log", logs.String(), subject, idpSecret)

			// Healthy again: the failure was not cached.
			srv.SetFault(idptest.EndpointToken, idptest.Fault{})
			if _, err := tr.Exchange(ctx); err != nil {
				t.Fatalf("after recovery: %v", err)
			}
		})
	}
}

func TestIdPTestExpiredIssuedTokens(t *testing.T) {
	t.Parallel()
	t.Run("short-lived issued token expires from the cache", func(t *testing.T) {
		t.Parallel()
		srv := newIdP(t, 2*time.Second)
		clock := newClock()
		tr, _ := idpTransport(t, srv, func(c *tokenexchange.Config) { c.Skew = -1; c.Now = clock.Now })
		ctx := identity(srv.Token(map[string]any{"sub": "alice"}), time.Time{})
		for _, step := range []struct {
			advance time.Duration
			want    int64
		}{{0, 1}, {time.Second, 1}, {time.Second, 2}, {0, 2}} {
			clock.Advance(step.advance)
			if _, err := tr.Exchange(ctx); err != nil {
				t.Fatal(err)
			}
			if n := srv.Requests(idptest.EndpointToken); n != step.want {
				t.Fatalf("after +%v: token requests = %d, want %d", step.advance, n, step.want)
			}
		}
	})
	t.Run("already expired issued token is never cached", func(t *testing.T) {
		t.Parallel()
		srv := newIdP(t, 500*time.Millisecond) // expires_in 0
		tr, _ := idpTransport(t, srv, nil)
		ctx := identity(srv.Token(map[string]any{"sub": "alice"}), time.Time{})
		for range 3 {
			if _, err := tr.Exchange(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if n := srv.Requests(idptest.EndpointToken); n != 3 {
			t.Errorf("token requests = %d, want 3", n)
		}
	})
}

func TestIdPTestConcurrentMisses(t *testing.T) {
	t.Parallel()
	srv := newIdP(t, 0)
	tr, _ := idpTransport(t, srv, nil)
	users := make([]string, 10)
	for i := range users {
		users[i] = srv.Token(map[string]any{"sub": fmt.Sprintf("user-%d", i)})
	}
	// Discover the endpoint, then make the STS slow so the misses overlap.
	if _, err := tr.Exchange(identity(srv.Token(nil), time.Time{})); err != nil {
		t.Fatal(err)
	}
	base := srv.Requests(idptest.EndpointToken)
	srv.SetFault(idptest.EndpointToken, idptest.Fault{Delay: 200 * time.Millisecond})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(identity(users[i%len(users)], time.Time{}), 10*time.Second)
			defer cancel()
			if _, err := tr.Exchange(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	if n := srv.Requests(idptest.EndpointToken) - base; n != int64(len(users)) {
		t.Errorf("token requests = %d, want %d (one per user)", n, len(users))
	}
}
