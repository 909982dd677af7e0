package tokenexchange_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/credentials"
	"github.com/mcpauth-go/mcpauth/tokenexchange"
)

// The classic proxy pattern: a handler copies the inbound Authorization onto
// its backend call. The header the transport owns is replaced, as
// x/oauth2.Transport does, so the call goes out with the exchanged token and
// the inbound token never reaches the backend. (Before the shared outbound
// guard, tokenexchange refused this request.)
func TestInboundAuthorizationIsReplaced(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, header, cfgHeader, want string
	}{
		{"Authorization", "Authorization", "", "Bearer " + issued(canarySubject+"|")},
		{"lower-case key", "authorization", "", "Bearer " + issued(canarySubject+"|")},
		{"custom owned header", "X-Backend-Token", "X-Backend-Token", issued(canarySubject + "|")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sts, be := newFakeSTS(t), newBackend(t)
			tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), Header: tc.cfgHeader})
			req, _ := http.NewRequestWithContext(identity(canarySubject, time.Now().Add(time.Hour)), http.MethodGet, be.srv.URL, nil)
			req.Header[tc.header] = []string{"Bearer " + canarySubject} // as copied from the inbound request
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatalf("RoundTrip = %v, want the call sent with the exchanged token", err)
			}
			resp.Body.Close()
			got := be.lastRequest(t).Header.Values(http.CanonicalHeaderKey(tc.header))
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("backend %s = %q, want exactly the exchanged credential", tc.header, got)
			}
			be.assertNeverSaw(t, canarySubject)
			if v := req.Header[tc.header]; len(v) != 1 || v[0] != "Bearer "+canarySubject {
				t.Errorf("caller's request modified: %q", v)
			}
		})
	}
}

// The inbound token inside a Basic credential (user-id or password), in a
// header the transport does not own, is refused before any exchange.
// (Before the shared outbound guard, tokenexchange missed it: the base64
// form never contains the token.)
func TestInboundTokenInBasicCredentialRefused(t *testing.T) {
	t.Parallel()
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	for _, tc := range []struct {
		name, cfgHeader, header, value string
	}{
		{"password in Authorization, token sent in X-Backend-Token", "X-Backend-Token", "Authorization", basic("x-access-token", canarySubject)},
		{"user-id in Authorization, token sent in X-Backend-Token", "X-Backend-Token", "Authorization", basic(canarySubject, "")},
		{"password in Proxy-Authorization", "", "Proxy-Authorization", basic("proxy", canarySubject)},
		{"password in a custom header", "", "X-Legacy-Auth", basic("x-oauth-basic", canarySubject)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sts, be := newFakeSTS(t), newBackend(t)
			tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), Header: tc.cfgHeader, CacheSize: -1})
			body := &trackingBody{Reader: strings.NewReader("x")}
			req, _ := http.NewRequestWithContext(identity(canarySubject, time.Now().Add(time.Hour)), http.MethodPost, be.srv.URL, body)
			req.Header.Set(tc.header, tc.value)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			if !errors.Is(err, tokenexchange.ErrPassthrough) {
				t.Fatalf("err = %v, want ErrPassthrough", err)
			}
			if !strings.Contains(err.Error(), "header "+tc.header) {
				t.Errorf("err %q does not name header %s", err, tc.header)
			}
			if !body.closed.Load() || be.calls.Load() != 0 || sts.calls.Load() != 0 {
				t.Errorf("body closed %v, backend calls %d, STS calls %d; want true, 0, 0", body.closed.Load(), be.calls.Load(), sts.calls.Load())
			}
			assertClean(t, "error", fmt.Sprintf("%v %+v", err, err), canarySubject)
		})
	}
}

// The inbound token in a cookie is refused too.
func TestInboundTokenInCookieRefused(t *testing.T) {
	t.Parallel()
	sts, be := newFakeSTS(t), newBackend(t)
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), CacheSize: -1})
	req, _ := http.NewRequestWithContext(identity(canarySubject, time.Now().Add(time.Hour)), http.MethodGet, be.srv.URL, nil)
	req.Header.Set("Cookie", "theme=dark; session="+canarySubject)
	if _, err := tr.RoundTrip(req); !errors.Is(err, tokenexchange.ErrPassthrough) {
		t.Fatalf("err = %v, want ErrPassthrough", err)
	}
	if be.calls.Load() != 0 || sts.calls.Load() != 0 {
		t.Error("refused request was sent or exchanged")
	}
}

// With a custom SubjectTokenSource the subject is not the caller's inbound
// token; the inbound token is still looked for on the request.
func TestInboundTokenRefusedWithCustomSubject(t *testing.T) {
	t.Parallel()
	sts, be := newFakeSTS(t), newBackend(t)
	src := tokenexchange.SubjectTokenFunc(func(context.Context) (string, string, time.Time, error) {
		return "upstream-idp-token-0123456789", "", time.Time{}, nil
	})
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), SubjectTokenSource: src, CacheSize: -1})
	for _, leak := range []string{canarySubject, "upstream-idp-token-0123456789"} {
		req, _ := http.NewRequestWithContext(identity(canarySubject, time.Now().Add(time.Hour)), http.MethodGet, be.srv.URL+"/x?t="+url.QueryEscape(leak), nil)
		if _, err := tr.RoundTrip(req); !errors.Is(err, tokenexchange.ErrPassthrough) {
			t.Errorf("err = %v, want ErrPassthrough", err)
		}
	}
	if be.calls.Load() != 0 || sts.calls.Load() != 0 {
		t.Error("refused request was sent or exchanged")
	}
}

// Hosts pins the exchanged token to the backend's hosts, before any
// exchange.
func TestHostsPinning(t *testing.T) {
	t.Parallel()
	sts, be := newFakeSTS(t), newBackend(t)
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), Hosts: []string{"127.0.0.1"}, CacheSize: -1})
	ctx := identity(canarySubject, time.Now().Add(time.Hour))
	if _, err := get(ctx, tr, be.srv.URL); err != nil {
		t.Fatalf("listed host: %v", err)
	}
	other := strings.Replace(be.srv.URL, "127.0.0.1", "localhost", 1)
	body := &trackingBody{Reader: strings.NewReader("x")}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, other, body)
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, tokenexchange.ErrDestinationNotAllowed) {
		t.Fatalf("unlisted host: err = %v, want ErrDestinationNotAllowed", err)
	}
	if !body.closed.Load() || be.calls.Load() != 1 || sts.calls.Load() != 1 {
		t.Errorf("body closed %v, backend calls %d, STS calls %d; want true, 1, 1", body.closed.Load(), be.calls.Load(), sts.calls.Load())
	}
	if _, err := tokenexchange.NewTransport(tokenexchange.Config{TokenURL: sts.URL(), Hosts: []string{"https://api.example.com"}}, nil); err == nil {
		t.Error("a URL in Hosts was accepted")
	}
}

// One sentinel: errors.Is answers the same for an error of either outbound
// package, whichever package's name the caller uses.
func TestSentinelsSharedWithCredentials(t *testing.T) {
	t.Parallel()
	if tokenexchange.ErrPassthrough != credentials.ErrTokenPassthrough {
		t.Error("tokenexchange.ErrPassthrough and credentials.ErrTokenPassthrough differ")
	}
	if tokenexchange.ErrDestinationNotAllowed != credentials.ErrDestinationNotAllowed {
		t.Error("the destination sentinels differ")
	}
	ctx := identity(canarySubject, time.Now().Add(time.Hour))
	sts := newFakeSTS(t)
	te := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), CacheSize: -1})
	cr, err := credentials.NewTransport(credentials.Config{Secret: credentials.Literal("static-backend-key")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, rt := range map[string]http.RoundTripper{"tokenexchange": te, "credentials": cr} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://backend.invalid/?access_token="+url.QueryEscape(canarySubject), nil)
		_, err := rt.RoundTrip(req)
		if !errors.Is(err, tokenexchange.ErrPassthrough) || !errors.Is(err, credentials.ErrTokenPassthrough) {
			t.Errorf("%s: passthrough err = %v, want both sentinels to match", name, err)
		}
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "http://backend.example/", nil)
		_, err = rt.RoundTrip(req)
		if !errors.Is(err, tokenexchange.ErrDestinationNotAllowed) || !errors.Is(err, credentials.ErrDestinationNotAllowed) {
			t.Errorf("%s: destination err = %v, want both sentinels to match", name, err)
		}
	}
}

// Issue 7 item 13: no error of this package names its prefix twice
// ("tokenexchange: … tokenexchange: …").
func TestErrorsDoNotDoublePrefix(t *testing.T) {
	t.Parallel()
	ctx := identity(canarySubject, time.Now().Add(time.Hour))
	var errs []error
	add := func(_ any, err error) { errs = append(errs, err) }

	// Construction.
	add(tokenexchange.NewTransport(tokenexchange.Config{Issuer: "http://idp.example"}, nil))
	add(tokenexchange.NewTransport(tokenexchange.Config{TokenURL: "http://sts.example/token"}, nil))
	add(tokenexchange.NewTransport(tokenexchange.Config{TokenURL: "https://sts.example/token", Header: "Connection"}, nil))
	add(tokenexchange.NewTransport(tokenexchange.Config{TokenURL: "https://sts.example/token", Hosts: []string{"a/b"}}, nil))

	// The STS cannot be reached, answers garbage, or is not discoverable.
	dead := newTestServer(t, http.NotFoundHandler())
	add(mustTransport(t, tokenexchange.Config{TokenURL: "http://127.0.0.1:1/token"}).Exchange(ctx)) // nothing listens on port 1
	garbage := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{")) }))
	add(mustTransport(t, tokenexchange.Config{TokenURL: garbage + "/token"}).Exchange(ctx))
	empty := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) }))
	add(mustTransport(t, tokenexchange.Config{TokenURL: empty + "/token"}).Exchange(ctx))
	add(mustTransport(t, tokenexchange.Config{Issuer: dead}).Exchange(ctx))

	// Sources that fail.
	failing := tokenexchange.SubjectTokenFunc(func(context.Context) (string, string, time.Time, error) {
		return "", "", time.Time{}, errors.New("tokenexchange: store unavailable")
	})
	sts := newFakeSTS(t)
	add(mustTransport(t, tokenexchange.Config{TokenURL: sts.URL(), SubjectTokenSource: failing}).Exchange(ctx))

	// Refused requests.
	tr := mustTransport(t, tokenexchange.Config{TokenURL: sts.URL()})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://backend.invalid/?t="+canarySubject, nil)
	add(tr.RoundTrip(req))
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "http://backend.example/", nil)
	add(tr.RoundTrip(req))

	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: no error", i)
			continue
		}
		if n := strings.Count(err.Error(), "tokenexchange: "); n != 1 {
			t.Errorf("case %d: %q names the prefix %d times", i, err, n)
		}
	}
}
