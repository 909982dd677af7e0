package tokenexchange_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/tokenexchange"
)

// A handler that copies the inbound token into the URL must be refused just
// like one that copies it into a header: nothing reaches the STS or the
// backend.
func TestInboundTokenInURLRefused(t *testing.T) {
	t.Parallel()
	const special = "opaque/token+with=chars-0123456789" // needs query escaping
	cases := []struct {
		name, token, url string // url: "%s" is the backend URL, "%t" the token
		wantRefused      bool
	}{
		{"query value", canarySubject, "%s/x?access_token=%t", true},
		{"query value among others", canarySubject, "%s/x?a=1&token=%t&b=2", true},
		{"query escaped", special, "%s/x?access_token=" + url.QueryEscape(special), true},
		{"query escaped in lower case", special, "%s/x?access_token=" + strings.ReplaceAll(url.QueryEscape(special), "%2F", "%2f"), true},
		{"query escaped as a name", special, "%s/x?" + strings.ReplaceAll(url.QueryEscape(special), "%2B", "%2b"), true},
		{"short token as a name", "abc", "%s/x?abc", true},
		{"query inside JSON", canarySubject, "%s/x?state=" + url.QueryEscape(`{"t":"`+canarySubject+`"}`), true},
		{"path", canarySubject, "%s/tokens/%t", true},
		{"short token as a whole query value", "abc", "%s/x?k=abc", true},
		{"short token inside another value is not refused", "abc", "%s/x?k=xabcx&abc1=2", false},
		{"no token", canarySubject, "%s/x?q=1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sts, be := newFakeSTS(t), newBackend(t)
			// Without a cache, an exchange before the check shows as an STS call.
			tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), CacheSize: -1})
			u := strings.ReplaceAll(strings.ReplaceAll(tc.url, "%s", be.srv.URL), "%t", tc.token)
			body := &trackingBody{Reader: strings.NewReader("x")}
			req, err := http.NewRequestWithContext(identity(tc.token, time.Now().Add(time.Hour)), http.MethodPost, u, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tr.RoundTrip(req)
			if !tc.wantRefused {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				resp.Body.Close()
				return
			}
			if !errors.Is(err, tokenexchange.ErrPassthrough) {
				t.Fatalf("err = %v, want ErrPassthrough", err)
			}
			if !body.closed.Load() {
				t.Error("body not closed")
			}
			if be.calls.Load() != 0 || sts.calls.Load() != 0 {
				t.Errorf("backend calls %d, STS calls %d; want 0, 0", be.calls.Load(), sts.calls.Load())
			}
			assertClean(t, "error", fmt.Sprintf("%v %+v", err, err), tc.token)
		})
	}
}

// An STS that answers with the subject token itself (a misconfigured no-op
// exchange, an echoing test double) must not make the transport forward the
// inbound token.
func TestIssuedSubjectTokenNotSent(t *testing.T) {
	t.Parallel()
	for _, echo := range []string{"subject_token", "actor_token"} {
		t.Run(echo, func(t *testing.T) {
			t.Parallel()
			sts, be := newFakeSTS(t), newBackend(t)
			sts.set(func(s *fakeSTS) {
				s.handle = func(w http.ResponseWriter, _ *http.Request, form url.Values) {
					writeJSON(w, 200, map[string]any{"access_token": form.Get(echo), "issued_token_type": form.Get("requested_token_type"),
						"token_type": "Bearer", "expires_in": 300})
				}
			})
			logger, logs := logBuffer()
			tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), Logger: logger,
				ActorToken: func(context.Context) (string, string, error) { return canaryActor, "", nil }})
			body := &trackingBody{Reader: strings.NewReader("x")}
			req, _ := http.NewRequestWithContext(identity(canarySubject, time.Now().Add(time.Hour)), http.MethodPost, be.srv.URL, body)
			_, err := tr.RoundTrip(req)
			if !errors.Is(err, tokenexchange.ErrPassthrough) {
				t.Fatalf("err = %v, want ErrPassthrough", err)
			}
			if !body.closed.Load() {
				t.Error("body not closed")
			}
			if be.calls.Load() != 0 {
				t.Error("backend called with the echoed token")
			}
			be.assertNeverSaw(t, canarySubject)
			be.assertNeverSaw(t, canaryActor)
			assertClean(t, "error/log", fmt.Sprintf("%v %+v", err, err)+logs.String(), canarySubject, canaryActor)
		})
	}
}

// net/http drops Authorization when a redirect leaves the original host; a
// transport that sets the credential on every hop must not undo that, or an
// open redirect on the backend hands the user's exchanged token to anyone.
func TestRedirectToOtherHostGetsNoToken(t *testing.T) {
	t.Parallel()
	sts, other := newFakeSTS(t), newBackend(t)
	// other listens on 127.0.0.1; reached as "localhost" it is another host.
	otherURL := strings.Replace(other.srv.URL, "127.0.0.1", "localhost", 1)
	origin := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, otherURL+"/stolen", http.StatusFound)
		case "/here":
			http.Redirect(w, r, "/final", http.StatusFound)
		default:
			if r.Header.Get("Authorization") != "Bearer "+issued(canarySubject+"|") {
				http.Error(w, "no token", http.StatusUnauthorized)
			}
		}
	}))
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL()})
	client := &http.Client{Transport: tr}
	ctx := identity(canarySubject, time.Now().Add(time.Hour))

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, origin+"/here", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("same-host redirect: status %d, want 200", resp.StatusCode)
	}

	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, origin+"/away", nil)
	resp, err = client.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Errorf("err = %v, want a refused redirect", err)
	}
	other.assertNeverSaw(t, issued(canarySubject+"|"))
}

// net/http trims header values before writing them, and a token may travel
// wrapped in a larger value: neither may slip past the passthrough check.
func TestInboundTokenInHeaderVariantsRefused(t *testing.T) {
	t.Parallel()
	for _, v := range []string{
		"Bearer " + canarySubject + " ",
		" " + canarySubject + "\t",
		"Bearer\t" + canarySubject,
		`{"token":"` + canarySubject + `"}`,
	} {
		sts, be := newFakeSTS(t), newBackend(t)
		tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), CacheSize: -1})
		req, _ := http.NewRequestWithContext(identity(canarySubject, time.Now().Add(time.Hour)), http.MethodGet, be.srv.URL, nil)
		req.Header.Set("X-Forwarded-Token", v)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, tokenexchange.ErrPassthrough) {
			t.Errorf("header %q…: err = %v, want ErrPassthrough", v[:8], err)
		}
		be.assertNeverSaw(t, canarySubject)
		if sts.calls.Load() != 0 {
			t.Error("the refused request still caused an exchange")
		}
	}
}

// Trailers are sent to the backend as well.
func TestInboundTokenInTrailerRefused(t *testing.T) {
	t.Parallel()
	sts, be := newFakeSTS(t), newBackend(t)
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), CacheSize: -1})
	body := &trackingBody{Reader: strings.NewReader("x")}
	req, _ := http.NewRequestWithContext(identity(canarySubject, time.Now().Add(time.Hour)), http.MethodPost, be.srv.URL, body)
	req.ContentLength = -1
	req.Trailer = http.Header{"X-Token": {canarySubject}}
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, tokenexchange.ErrPassthrough) {
		t.Errorf("err = %v, want ErrPassthrough", err)
	}
	if !body.closed.Load() || be.calls.Load() != 0 || sts.calls.Load() != 0 {
		t.Errorf("body closed %v, backend calls %d, STS calls %d", body.closed.Load(), be.calls.Load(), sts.calls.Load())
	}
}
