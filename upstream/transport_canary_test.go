package upstream_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/upstream"
)

// Canary secrets: none may appear in an error string, a log line, a
// response written by WriteError, or the printed Transport or config.
const (
	canaryAT      = "CANARYAT-0123456789abcdefghijklmnopqrstuvwxyz"
	canaryRT      = "CANARYRT-0123456789abcdefghijklmnopqrstuvwxyz"
	canaryRotated = "CANARYROTATED-0123456789abcdefghijklmnopqrstuvw"
	canarySecret  = "CANARYSECRET-0123456789abcdefghij"
	canaryInbound = "CANARYINBOUND-0123456789abcdefghijklmnopqrstuvwxyz"
)

var canaries = []string{"CANARYAT", "CANARYRT", "CANARYROTATED", "CANARYSECRET", "CANARYINBOUND"}

// failingUpdates fails every UpdateSession, so a rotated pair is kept in
// memory (the Transport's unsaved path, which logs).
type failingUpdates struct{ upstream.Store }

func (s failingUpdates) UpdateSession(ctx context.Context, sess *upstream.Session, ttl time.Duration) error {
	return fmt.Errorf("test store: %w: write refused", upstream.ErrUnavailable)
}

// TestNoSecretInErrorsOrLogs drives every failure path of a refresh and of
// the outbound guard with canary tokens and looks for them in the errors,
// in every log line (at debug level), in the inbound answer WriteError
// writes, and in the printed Transport and TransportConfig.
func TestNoSecretInErrorsOrLogs(t *testing.T) {
	answer := func(status int, ctype, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}
	}
	// Upstreams that echo what they received, in every field they have.
	echo := `{"error":"` + canaryRT + `","error_description":"` + canaryRT + ` ` + canarySecret + `","error_uri":"https://x/` + canaryRT + `"}`
	rotate := answer(200, "application/json", `{"access_token":"`+canaryRotated+`","refresh_token":"`+canaryRotated+`R","token_type":"bearer","expires_in":3600}`)
	cases := []struct {
		name    string
		handler http.HandlerFunc
		store   func(upstream.Store) upstream.Store
		mod     func(*http.Request)
		url     string
	}{
		{name: "invalid_grant echoing", handler: answer(400, "application/json", `{"error":"invalid_grant","error_description":"`+canaryRT+`"}`)},
		{name: "error code echoing the refresh token", handler: answer(400, "application/json", echo)},
		{name: "200 with error echoing", handler: answer(200, "application/json", echo)},
		{name: "form-encoded echo", handler: answer(400, "application/x-www-form-urlencoded", "error="+canaryRT+"&error_description="+canarySecret)},
		{name: "500 echoing", handler: answer(500, "text/plain", canaryRT+" "+canarySecret)},
		{name: "garbage JSON", handler: answer(200, "application/json", `{"access_token":`+canaryRT)},
		{name: "no access token", handler: answer(200, "application/json", `{"refresh_token":"`+canaryRT+`"}`)},
		{name: "timeout", handler: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Second):
			}
		}},
		{name: "store refuses the rotated pair", handler: rotate, store: func(s upstream.Store) upstream.Store { return failingUpdates{s} }},
		{name: "inbound token in a header", handler: rotate, mod: func(r *http.Request) { r.Header.Set("X-Token", canaryInbound) }},
		{name: "inbound token in the query", handler: rotate, url: "?access_token=" + canaryInbound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logs := new(syncBuffer)
			e := newTokenEndpoint(t, tc.handler)
			var store upstream.Store = upstream.NewMemoryStore()
			if tc.store != nil {
				store = tc.store(store)
			}
			err := store.PutSession(context.Background(), &upstream.Session{
				TSID: "tsid-canary", Upstream: "fake", Subject: "fake|42",
				AccessToken: canaryAT, RefreshToken: canaryRT, TokenType: "bearer", IDToken: canaryAT,
				Expiry: time.Now().Add(-time.Minute),
			}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			cfg := upstream.TransportConfig{
				Issuer: testIssuer,
				Store:  store,
				Upstreams: map[string]*oauth2.Config{"fake": {
					ClientID: "mcp-server", ClientSecret: canarySecret,
					Endpoint: oauth2.Endpoint{TokenURL: e.token.URL, AuthStyle: oauth2.AuthStyleInParams},
				}},
				RefreshTimeout: 300 * time.Millisecond,
				Logger:         slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			}
			tr, err := upstream.NewTransport(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			info := (&authn.TokenInfo{Issuer: testIssuer, Subject: "fake|42", Claims: map[string]any{"tsid": "tsid-canary"}}).WithToken(canaryInbound)
			ctx := authn.NewContext(context.Background(), info)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.backend.URL+tc.url, nil)
			if tc.mod != nil {
				tc.mod(req)
			}
			resp, rerr := tr.RoundTrip(req)
			if rerr == nil {
				resp.Body.Close()
				t.Fatal("call succeeded")
			}
			_, tsErr := tr.TokenSource(ctx).Token()
			w := httptest.NewRecorder()
			upstream.WriteError(w, rerr, upstream.ErrorOptions{})
			var jsonLog strings.Builder
			slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("config", "cfg", cfg, "transport", tr)
			seen := map[string]string{
				"JSON log of config": jsonLog.String(),
				"RoundTrip error":    rerr.Error(),
				"TokenSource error":  fmt.Sprint(tsErr),
				"logs":               logs.String(),
				"WriteError answer":  fmt.Sprint(w.Header()) + w.Body.String(),
				"Transport":          fmt.Sprintf("%v %+v %#v", tr, tr, tr),
				"TransportConfig":    fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg),
			}
			for where, text := range seen {
				for _, c := range canaries {
					if strings.Contains(text, c) {
						t.Errorf("%s contains the %s canary: %s", where, c, text)
					}
				}
			}
		})
	}
}
