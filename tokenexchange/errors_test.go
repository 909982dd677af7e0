package tokenexchange_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/tokenexchange"
)

const canaryIssued = "CANARY-ISSUED-token"

func TestSTSFailures(t *testing.T) {
	t.Parallel()
	echo := func(status int) func(w http.ResponseWriter, r *http.Request, form url.Values) {
		// A hostile or buggy STS echoing every secret it received.
		return func(w http.ResponseWriter, r *http.Request, form url.Values) {
			_, pass, _ := r.BasicAuth()
			writeJSON(w, status, map[string]any{
				"error":             "invalid_grant",
				"error_description": "bad subject " + form.Get("subject_token") + " actor " + form.Get("actor_token") + " secret " + pass + "\x00\x1b[31m",
				"error_uri":         "https://sts.example/errors?t=" + form.Get("subject_token"),
			})
		}
	}
	success := func(mut func(m map[string]any)) func(w http.ResponseWriter, r *http.Request, form url.Values) {
		return func(w http.ResponseWriter, r *http.Request, form url.Values) {
			m := map[string]any{"access_token": canaryIssued, "issued_token_type": form.Get("requested_token_type"), "token_type": "Bearer", "expires_in": 300}
			mut(m)
			writeJSON(w, 200, m)
		}
	}
	raw := func(status int, body string) func(w http.ResponseWriter, r *http.Request, form url.Values) {
		return func(w http.ResponseWriter, r *http.Request, form url.Values) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}
	}
	cases := []struct {
		name      string
		handle    func(w http.ResponseWriter, r *http.Request, form url.Values)
		timeout   time.Duration
		requested string
		// expectations
		wantCode      string // *Error code, "" if not an *Error
		wantStatus    int
		wantRetryable bool
		wantOK        bool
		wantErrText   string
	}{
		{name: "4xx is a typed error", handle: echo(400), wantCode: "invalid_grant", wantStatus: 400},
		{name: "401 invalid_client", handle: func(w http.ResponseWriter, r *http.Request, _ url.Values) {
			writeJSON(w, 401, map[string]any{"error": "invalid_client"})
		}, wantCode: "invalid_client", wantStatus: 401},
		{name: "4xx without JSON", handle: raw(403, "<html>nope</html>"), wantStatus: 403},
		{name: "5xx is retryable", handle: echo(503), wantCode: "invalid_grant", wantStatus: 503, wantRetryable: true},
		{name: "500 plain text is retryable", handle: raw(500, "oops "+canarySubject), wantStatus: 500, wantRetryable: true},
		{name: "429 is retryable", handle: raw(429, ""), wantStatus: 429, wantRetryable: true},
		{name: "redirect is not followed", handle: func(w http.ResponseWriter, r *http.Request, _ url.Values) {
			http.Redirect(w, r, "https://evil.example/steal", http.StatusTemporaryRedirect)
		}, wantStatus: 307},
		{name: "garbage is retryable", handle: raw(200, "{not json "+canarySubject), wantRetryable: true},
		{name: "no access_token is retryable", handle: success(func(m map[string]any) { delete(m, "access_token") }), wantRetryable: true},
		{name: "negative expires_in is retryable", handle: success(func(m map[string]any) { m["expires_in"] = -5 }), wantRetryable: true},
		{name: "oversized is retryable", handle: raw(200, `{"access_token":"`+strings.Repeat("a", tokenexchange.MaxResponseSize)+`"}`), wantRetryable: true},
		{name: "timeout is retryable", handle: func(w http.ResponseWriter, r *http.Request, _ url.Values) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, timeout: 100 * time.Millisecond, wantRetryable: true},
		{name: "issued_token_type must match", handle: success(func(m map[string]any) { m["issued_token_type"] = tokenexchange.TokenTypeIDToken }),
			wantErrText: "issued_token_type"},
		{name: "issued_token_type required", handle: success(func(m map[string]any) { delete(m, "issued_token_type") }),
			wantErrText: "issued_token_type"},
		{name: "token_type DPoP refused", handle: success(func(m map[string]any) { m["token_type"] = "DPoP" }), wantErrText: "token_type"},
		{name: "token_type N_A refused for an access token", handle: success(func(m map[string]any) { m["token_type"] = "N_A" }), wantErrText: "token_type"},
		{name: "token_type is case-insensitive", handle: success(func(m map[string]any) { m["token_type"] = "bearer" }), wantOK: true},
		{name: "expires_in as a string", handle: success(func(m map[string]any) { m["expires_in"] = "300" }), wantOK: true},
		{name: "token_type N_A for an id_token", requested: tokenexchange.TokenTypeIDToken,
			handle: success(func(m map[string]any) { m["token_type"] = "N_A" }), wantOK: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sts := newFakeSTS(t)
			sts.set(func(s *fakeSTS) { s.handle = tc.handle })
			logger, logs := logBuffer()
			tr := mustTransport(t, tokenexchange.Config{
				TokenURL: sts.URL(), ClientID: "mcp", ClientSecret: canarySecret, Logger: logger, Timeout: tc.timeout,
				RequestedTokenType: tc.requested,
				ActorToken: func(context.Context) (string, string, error) {
					return canaryActor, tokenexchange.TokenTypeJWT, nil
				},
			})
			be := newBackend(t)
			_, err := get(identity(canarySubject, time.Now().Add(time.Hour)), tr, be.srv.URL)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want error")
			}
			if be.calls.Load() != 0 {
				t.Error("backend called despite the failed exchange")
			}
			if got := errors.Is(err, tokenexchange.ErrRetryable); got != tc.wantRetryable {
				t.Errorf("retryable = %v, want %v (err %v)", got, tc.wantRetryable, err)
			}
			var te *tokenexchange.Error
			if tc.wantStatus != 0 {
				if !errors.As(err, &te) || te.StatusCode != tc.wantStatus || te.Code != tc.wantCode {
					t.Errorf("err = %#v, want *Error status %d code %q", err, tc.wantStatus, tc.wantCode)
				}
			} else if errors.As(err, &te) {
				t.Errorf("unexpected *Error %v", te)
			}
			if tc.wantErrText != "" && !strings.Contains(err.Error(), tc.wantErrText) {
				t.Errorf("err %q does not mention %q", err, tc.wantErrText)
			}
			for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), logs.String()} {
				assertClean(t, "error/log", s, canarySubject, canarySecret, canaryActor, canaryIssued, url.QueryEscape(canarySecret))
			}
			if strings.ContainsAny(err.Error(), "\x00\x1b") {
				t.Errorf("control characters in error: %q", err.Error())
			}
			if !strings.Contains(logs.String(), "exchange failed") {
				t.Errorf("failure not logged: %s", logs.String())
			}
		})
	}
}

func TestErrorDescriptionIsCapped(t *testing.T) {
	t.Parallel()
	sts := newFakeSTS(t)
	sts.set(func(s *fakeSTS) {
		s.handle = func(w http.ResponseWriter, _ *http.Request, _ url.Values) {
			writeJSON(w, 400, map[string]any{"error": "invalid_request", "error_description": strings.Repeat("x", 10000)})
		}
	})
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL()})
	_, err := tr.Exchange(identity("u", time.Time{}))
	var te *tokenexchange.Error
	if !errors.As(err, &te) || len([]rune(te.Description)) > 257 {
		t.Errorf("description not capped: %d", len(te.Description))
	}
}

func TestRedaction(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cfg := tokenexchange.Config{TokenURL: "https://sts.example/token", ClientID: "mcp", ClientSecret: canarySecret, PrivateKey: key}
	tok := &tokenexchange.Token{AccessToken: canaryIssued, RefreshToken: canaryActor, TokenType: "Bearer", Expiry: time.Now()}
	logger, logs := logBuffer()
	logger.Info("config", "cfg", cfg, "token", tok)
	cj, _ := json.Marshal(cfg)
	tj, _ := json.Marshal(tok)
	ptr := &cfg
	for _, s := range []string{
		fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s %q", cfg, cfg, cfg, cfg, cfg), fmt.Sprintf("%+v %#v", ptr, ptr),
		fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok), fmt.Sprintf("%+v", *tok),
		string(cj), string(tj), logs.String(),
	} {
		assertClean(t, "output", s, canarySecret, canaryIssued, canaryActor, fmt.Sprint(key.D))
		if !strings.Contains(s, "REDACTED") {
			t.Errorf("no REDACTED marker in %q", s)
		}
	}
	// A Transport holds the config and cached tokens: it must not print them.
	sts := newFakeSTS(t)
	cfg.TokenURL = sts.URL()
	tr := mustTransport(t, cfg)
	if _, err := tr.Exchange(identity(canarySubject, time.Time{})); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", tr, tr, tr, tr), fmt.Sprintf("%+v", []any{tr})} {
		assertClean(t, "transport", s, canarySecret, canarySubject, issued(canarySubject+"|"))
	}
	if !strings.Contains(string(cj), `"client_id":"mcp"`) {
		t.Errorf("config JSON lost public fields: %s", cj)
	}
}

// expires_in values too large for a time.Duration must not wrap around into
// an expiry in the past (or at a random time); NaN is not a number of seconds.
func TestExpiresInBounds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		expiresIn any
		wantErr   bool
	}{
		{"1e10 seconds", 1e10, false},
		{"2e10 seconds", 2e10, false},
		{"1e12 seconds", 1e12, false},
		{"quoted huge", "10000000000", false},
		{"quoted NaN", "NaN", true},
		{"quoted Inf", "+Inf", true},
		{"max float", math.MaxFloat64, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sts := newFakeSTS(t)
			sts.set(func(s *fakeSTS) {
				s.handle = func(w http.ResponseWriter, _ *http.Request, form url.Values) {
					writeJSON(w, 200, map[string]any{"access_token": "issued-token", "issued_token_type": form.Get("requested_token_type"),
						"token_type": "Bearer", "expires_in": tc.expiresIn})
				}
			})
			tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL()})
			tok, err := tr.Exchange(identity(canarySubject, time.Time{}))
			if tc.wantErr {
				if !errors.Is(err, tokenexchange.ErrRetryable) {
					t.Errorf("err = %v, want ErrRetryable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if min := time.Now().AddDate(100, 0, 0); tok.Expiry.Before(min) {
				t.Errorf("expiry %v, want at least 100 years ahead", tok.Expiry)
			}
		})
	}
}

// An STS that quotes the client credentials in the form it received them —
// the Basic header, the client assertion — must not get them into an error.
func TestErrorHidesEncodedClientCredentials(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, cfg := range []tokenexchange.Config{
		{ClientID: "mcp", ClientSecret: canarySecret},
		{ClientID: "mcp", PrivateKey: key},
	} {
		t.Run(string(cfg.AuthMethod)+fmt.Sprint(cfg.PrivateKey != nil), func(t *testing.T) {
			t.Parallel()
			sts := newFakeSTS(t)
			var mu sync.Mutex
			var sent []string
			sts.set(func(s *fakeSTS) {
				s.handle = func(w http.ResponseWriter, r *http.Request, form url.Values) {
					h := r.Header.Get("Authorization")
					mu.Lock()
					sent = append(sent, strings.TrimPrefix(h, "Basic "), form.Get("client_assertion"))
					mu.Unlock()
					writeJSON(w, 401, map[string]any{"error": "invalid_client",
						"error_description": "got " + h + " / " + form.Get("client_assertion")})
				}
			})
			logger, logs := logBuffer()
			cfg.TokenURL, cfg.Logger = sts.URL(), logger
			tr := mustTransport(t, cfg)
			_, err := tr.Exchange(identity(canarySubject, time.Time{}))
			if err == nil {
				t.Fatal("want error")
			}
			mu.Lock()
			defer mu.Unlock()
			assertClean(t, "error/log", fmt.Sprintf("%v %#v", err, err)+logs.String(), sent...)
		})
	}
}
