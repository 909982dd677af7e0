package upstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/upstream"
)

// registerPublic registers a public loopback client and returns the HTTP
// status, the response headers and, on success, the client_id.
func (e *env) registerPublic() (int, http.Header, string) {
	e.t.Helper()
	resp, err := http.Post(e.issuer+"/register", "application/json",
		strings.NewReader(`{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		ClientID string `json:"client_id"`
		Error    string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode == http.StatusTooManyRequests && m.Error != "temporarily_unavailable" {
		e.t.Fatalf("429 with error %q, want temporarily_unavailable", m.Error)
	}
	return resp.StatusCode, resp.Header, m.ClientID
}

// TestRegistrationLimit: open registration is rate limited per process by
// default (60 a minute, a burst of 60), answered 429 with Retry-After
// beyond it and refilled with time; a configured limit replaces the
// default and a negative one turns it off. The limited cases run on a
// frozen clock: on the real one the bucket refills while the test runs
// (a token a second by default), so a slow machine's registrations would
// pass the limit.
func TestRegistrationLimit(t *testing.T) {
	t.Run("default 60 a minute", func(t *testing.T) {
		e := newEnv(t, func(e *env, _ *upstream.Config) { e.clock.freeze() })
		for i := range 60 {
			if st, _, _ := e.registerPublic(); st != http.StatusCreated {
				t.Fatalf("registration %d: HTTP %d, want 201", i+1, st)
			}
		}
		st, h, id := e.registerPublic()
		if st != http.StatusTooManyRequests || id != "" {
			t.Fatalf("registration 61 within the minute: HTTP %d (client %q), want 429 and no client", st, id)
		}
		if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
			t.Fatalf("Retry-After = %q, want about one second (one token at 60 a minute)", h.Get("Retry-After"))
		}
		e.clock.Advance(time.Second)
		if st, _, _ := e.registerPublic(); st != http.StatusCreated {
			t.Fatalf("after a second: HTTP %d, want 201 (one token refilled)", st)
		}
		if st, _, _ := e.registerPublic(); st != http.StatusTooManyRequests {
			t.Fatalf("second registration after a second: HTTP %d, want 429", st)
		}
	})
	t.Run("configured", func(t *testing.T) {
		e := newEnv(t, func(e *env, c *upstream.Config) { e.clock.freeze(); c.RegistrationLimit = 2 })
		for range 2 {
			if st, _, _ := e.registerPublic(); st != http.StatusCreated {
				t.Fatalf("HTTP %d, want 201", st)
			}
		}
		st, h, _ := e.registerPublic()
		if st != http.StatusTooManyRequests || h.Get("Retry-After") != "30" {
			t.Fatalf("third registration: HTTP %d Retry-After %q, want 429 and 30 (2 a minute)", st, h.Get("Retry-After"))
		}
		e.clock.Advance(time.Minute)
		for range 2 {
			if st, _, _ := e.registerPublic(); st != http.StatusCreated {
				t.Fatalf("after a minute: HTTP %d, want 201", st)
			}
		}
	})
	t.Run("off", func(t *testing.T) {
		e := newEnv(t, func(_ *env, c *upstream.Config) { c.RegistrationLimit = -1 })
		for i := range 100 {
			if st, _, _ := e.registerPublic(); st != http.StatusCreated {
				t.Fatalf("registration %d with no limit: HTTP %d", i+1, st)
			}
		}
	})
	t.Run("refused requests do not spend the budget", func(t *testing.T) {
		e := newEnv(t, func(e *env, c *upstream.Config) { e.clock.freeze(); c.RegistrationLimit = 1 })
		for range 5 {
			if st, _ := e.register(map[string]any{"redirect_uris": []string{"javascript:alert(1)"}}); st != http.StatusBadRequest {
				t.Fatalf("invalid registration: HTTP %d, want 400", st)
			}
		}
		if st, _, _ := e.registerPublic(); st != http.StatusCreated {
			t.Fatalf("first valid registration: HTTP %d, want 201", st)
		}
	})
}

// TestUnusedClientExpires: a dynamically registered client nobody logged
// in through is dropped after UnusedClientTTL (24 hours by default); a
// login keeps it, forever when ClientTTL is zero, else for ClientTTL from
// the last login and never less than the refresh-token lifetime that login
// was given.
func TestUnusedClientExpires(t *testing.T) {
	const redirect = "http://127.0.0.1/cb"
	loginWith := func(e *env, id string) {
		e.t.Helper()
		v, c := pkce()
		e.exchange(id, redirect, e.login(id, redirect, c, nil), v)
	}
	known := func(e *env, id string) bool {
		e.t.Helper()
		_, err := e.store.GetClient(context.Background(), id)
		if err != nil && !errors.Is(err, upstream.ErrNotFound) {
			e.t.Fatal(err)
		}
		return err == nil
	}

	t.Run("defaults", func(t *testing.T) {
		e := newEnv(t, nil)
		_, _, used := e.registerPublic()
		_, _, unused := e.registerPublic()
		loginWith(e, used)
		e.clock.Advance(23 * time.Hour)
		if !known(e, unused) {
			t.Fatal("an unused client is gone before 24 hours")
		}
		e.clock.Advance(2 * time.Hour)
		if known(e, unused) {
			t.Fatal("a client nobody logged in through is kept after 24 hours")
		}
		// The application still holds the client_id: the page says what
		// happened and what to do, never redirecting.
		_, c := pkce()
		resp := e.get(e.browser, e.authorizeURL(unused, redirect, c, nil))
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "registration expired") ||
			resp.Header.Get("Location") != "" {
			t.Fatalf("authorize with an expired registration: HTTP %d, Location %q; want 400 and a page saying the registration expired",
				resp.StatusCode, resp.Header.Get("Location"))
		}
		e.clock.Advance(365 * 24 * time.Hour)
		if !known(e, used) {
			t.Fatal("a client a user logged in through expired although ClientTTL is zero (forever)")
		}
	})
	t.Run("ClientTTL shorter than the refresh-token lifetime", func(t *testing.T) {
		// The fake upstream's ID tokens live an hour of real time: every
		// login here happens within the first hour of the test clock.
		e := newEnv(t, func(_ *env, c *upstream.Config) {
			c.ClientTTL = 20 * time.Minute
			c.RefreshTokenTTL = 30 * time.Minute
			c.UnusedClientTTL = 5 * time.Minute
			c.LoginTTL = 3 * time.Minute
		})
		_, _, id := e.registerPublic()
		e.clock.Advance(4 * time.Minute)
		loginWith(e, id) // kept until 4+30 minutes
		e.clock.Advance(25 * time.Minute)
		if !known(e, id) {
			t.Fatal("the client expired before the refresh token its login was given")
		}
		loginWith(e, id) // at 29 minutes: kept until 59
		e.clock.Advance(29 * time.Minute)
		if !known(e, id) {
			t.Fatal("a second login did not extend the client")
		}
		e.clock.Advance(2 * time.Minute)
		if known(e, id) {
			t.Fatal("the client is kept past max(ClientTTL, RefreshTokenTTL) after its last login")
		}
	})
	t.Run("ClientTTL longer", func(t *testing.T) {
		e := newEnv(t, func(_ *env, c *upstream.Config) {
			c.ClientTTL = 90 * 24 * time.Hour
		})
		_, _, id := e.registerPublic()
		loginWith(e, id)
		e.clock.Advance(89 * 24 * time.Hour)
		if !known(e, id) {
			t.Fatal("the client expired before ClientTTL")
		}
		e.clock.Advance(2 * 24 * time.Hour)
		if known(e, id) {
			t.Fatal("the client is kept past ClientTTL")
		}
	})
	t.Run("ClientTTL lowered to zero", func(t *testing.T) {
		// An operator who set ClientTTL (the earlier advice to bound the
		// Store) drops it to zero, forever, now that UnusedClientTTL
		// bounds unused registrations. A client logged in through under
		// the old setting is stored with its TTL; a login after the change
		// must still keep it at least as long as the grant that login got.
		e := newEnv(t, func(_ *env, c *upstream.Config) {
			c.ClientTTL = 20 * time.Minute
			c.RefreshTokenTTL = 30 * time.Minute
		})
		_, _, id := e.registerPublic()
		loginWith(e, id) // kept until 30 minutes
		e.restart(func(c *upstream.Config) { c.ClientTTL = 0 })
		e.clock.Advance(20 * time.Minute)
		loginWith(e, id) // its refresh token lives until 50 minutes; the client forever
		e.clock.Advance(20 * time.Minute)
		if !known(e, id) {
			t.Fatal("a client logged in through after ClientTTL became zero expired under the refresh token that login was given")
		}
	})
	t.Run("failed redemptions do not keep it", func(t *testing.T) {
		// Only a completed login keeps a client: a code presented with the
		// wrong verifier, or by another client, leaves the registration to
		// expire after UnusedClientTTL.
		e := newEnv(t, func(_ *env, c *upstream.Config) { c.UnusedClientTTL, c.LoginTTL = 5*time.Minute, 3*time.Minute })
		_, _, x := e.registerPublic()
		_, _, y := e.registerPublic()
		redeem := func(asClient, code, verifier string) {
			t.Helper()
			st, m, _ := e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {asClient}, "code": {code},
				"redirect_uri": {redirect}, "code_verifier": {verifier}, "resource": {resource}})
			wantOAuthError(t, "a redemption that must fail", st, m, http.StatusBadRequest, "invalid_grant")
		}
		wrong, _ := pkce()
		_, c := pkce()
		redeem(x, e.login(x, redirect, c, nil), wrong)
		v, c := pkce()
		redeem(y, e.login(x, redirect, c, nil), v)
		e.clock.Advance(6 * time.Minute)
		if known(e, x) || known(e, y) {
			t.Fatalf("a failed redemption kept a client past UnusedClientTTL (x kept %v, y kept %v)", known(e, x), known(e, y))
		}
	})
}
