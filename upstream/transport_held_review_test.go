package upstream_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/upstream"
)

// TestTransportPassthroughVectors: the inbound token anywhere but the
// Authorization header the Transport replaces refuses the request, and
// nothing reaches the backend.
func TestTransportPassthroughVectors(t *testing.T) {
	f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(time.Hour), nil)
	ctx := withIdentity(context.Background(), f.tsid)
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	api, _ := url.Parse(f.up.APIURL())
	for name, mod := range map[string]func(*http.Request){
		"Basic password":      func(r *http.Request) { r.Header.Set("X-Backend-Auth", basic("svc", inboundToken)) },
		"Proxy-Authorization": func(r *http.Request) { r.Header.Set("Proxy-Authorization", "Bearer "+inboundToken) },
		"trailer":             func(r *http.Request) { r.Trailer = http.Header{"X-Sig": {inboundToken}} },
		"URL user info":       func(r *http.Request) { r.URL.User = url.UserPassword("u", inboundToken) },
		"URL path":            func(r *http.Request) { r.URL.Path = "/api/" + inboundToken },
		"escaped query":       func(r *http.Request) { r.URL.RawQuery = "ctx=" + url.QueryEscape(`{"t":"`+inboundToken+`"}`) },
		"JSON in a header":    func(r *http.Request) { r.Header.Set("X-Ctx", `{"token":"`+inboundToken+`"}`) },
		"header name":         func(r *http.Request) { r.Header[inboundToken] = []string{"1"} },
		"DPoP scheme":         func(r *http.Request) { r.Header.Set("X-Auth", "DPoP "+inboundToken) },
	} {
		t.Run(name, func(t *testing.T) {
			before := f.up.APICalls.Load()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.String(), nil)
			mod(req)
			resp, err := f.tr.RoundTrip(req)
			if resp != nil || !errors.Is(err, upstream.ErrPassthrough) || strings.Contains(err.Error(), inboundToken) {
				t.Fatalf("RoundTrip = %v, %v", resp, err)
			}
			if f.up.APICalls.Load() != before {
				t.Fatal("backend reached")
			}
		})
	}
}

// TestTransportRedirects: an http.Client following a backend's redirect
// sends the upstream token to the original host only (without Hosts), or
// to pinned hosts only; never over plain http off loopback.
func TestTransportRedirects(t *testing.T) {
	f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(time.Hour), nil)
	at, _, _ := f.up.State(f.grantID)
	var leaked atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Authorization"), at) {
			leaked.Add(1)
		}
	}))
	t.Cleanup(other.Close)
	// The same listener under another host name: 127.0.0.1 → localhost.
	otherHost := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	for _, target := range []string{otherHost + "/steal", "http://attacker.example/steal"} {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target, http.StatusTemporaryRedirect)
		}))
		t.Cleanup(redirector.Close)
		for name, tr := range map[string]*upstream.Transport{
			"no Hosts": f.tr,
			"Hosts":    f.transport(t, f.store, func(c *upstream.TransportConfig) { c.Hosts = []string{strings.TrimPrefix(redirector.URL, "http://")} }),
		} {
			client := &http.Client{Transport: tr}
			req, _ := http.NewRequestWithContext(withIdentity(context.Background(), f.tsid), http.MethodGet, redirector.URL, nil)
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			if !errors.Is(err, upstream.ErrDestinationNotAllowed) {
				t.Errorf("%s, redirect to %s: %v", name, target, err)
			}
		}
	}
	if leaked.Load() != 0 {
		t.Fatalf("the upstream token reached another host %d times", leaked.Load())
	}
	// Pinned host reached through a Host override of an allowed URL.
	pinned := f.transport(t, f.store, func(c *upstream.TransportConfig) { c.Hosts = []string{strings.TrimPrefix(f.up.URL(), "http://")} })
	req, _ := http.NewRequestWithContext(withIdentity(context.Background(), f.tsid), http.MethodGet, f.up.APIURL(), nil)
	req.Host = "attacker.example"
	if _, err := pinned.RoundTrip(req); !errors.Is(err, upstream.ErrDestinationNotAllowed) {
		t.Fatalf("Host override off the pinned hosts: %v", err)
	}
}

// TestCancelledRequestKeepsRotatedPair: the request that started a
// refresh is cancelled while the upstream rotates the refresh token; the
// rotated pair is still stored, and the next request uses it without a
// second refresh (a lost pair would mean spending the old refresh token
// again, which revokes the grant).
func TestCancelledRequestKeepsRotatedPair(t *testing.T) {
	f := newFixture(t, upstream.NewMemoryStore(), time.Now().Add(-time.Minute), nil)
	f.up.Delay = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(withIdentity(context.Background(), f.tsid))
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := call(ctx, f.tr, f.up.APIURL()); err == nil {
		t.Fatal("cancelled call succeeded")
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		s, err := f.store.GetSession(context.Background(), f.tsid)
		if err == nil && s.Version == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rotated pair not stored: %v, %v", s, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := call(withIdentity(context.Background(), f.tsid), f.tr, f.up.APIURL())
	expectGrant(t, resp, err, f.grantID)
	if _, _, revoked := f.up.State(f.grantID); revoked || f.up.Refreshes.Load() != 1 {
		t.Fatalf("revoked %v, %d refreshes", revoked, f.up.Refreshes.Load())
	}
}

// conflictOnce makes the first UpdateSession lose its compare-and-swap:
// another writer bumps the stored version just before it.
type conflictOnce struct {
	upstream.Store
	done atomic.Bool
}

func (s *conflictOnce) UpdateSession(ctx context.Context, sess *upstream.Session, ttl time.Duration) error {
	if s.done.CompareAndSwap(false, true) {
		other, err := s.Store.GetSession(ctx, sess.TSID)
		if err != nil {
			return err
		}
		if err := s.Store.UpdateSession(ctx, other, ttl); err != nil {
			return err
		}
	}
	return s.Store.UpdateSession(ctx, sess, ttl)
}

// TestRefreshCASConflict: a compare-and-swap lost after the upstream
// rotated the refresh token is retried on the current version (the rotated
// pair exists nowhere else); no second refresh, the grant survives, and the
// stored session holds the rotated pair.
func TestRefreshCASConflict(t *testing.T) {
	store := &conflictOnce{Store: upstream.NewMemoryStore()}
	f := newFixture(t, store, time.Now().Add(-time.Minute), nil)
	resp, err := call(withIdentity(context.Background(), f.tsid), f.tr, f.up.APIURL())
	expectGrant(t, resp, err, f.grantID)
	at, rt, revoked := f.up.State(f.grantID)
	s, err := store.GetSession(context.Background(), f.tsid)
	if err != nil || s.AccessToken != at || s.RefreshToken != rt || revoked || f.up.Refreshes.Load() != 1 || !store.done.Load() {
		t.Fatalf("after a lost CAS: %v %v, revoked %v, %d refreshes", s, err, revoked, f.up.Refreshes.Load())
	}
}
