package credentials

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/authn"
)

const (
	inboundToken = "canary-token"
	// longToken is long enough for substring matching; it contains
	// characters that are percent-encoded in a query.
	longToken = "eyJhbGciOi.canary+long/token=="
)

func withToken(token string) context.Context {
	return authn.NewContext(context.Background(), (&authn.TokenInfo{Subject: "u"}).WithToken(token))
}

func TestCheckPassthrough(t *testing.T) {
	t.Parallel()
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		url     string
		headers map[string]string
		refuse  bool
		where   string // expected in the error
	}{
		{"no identity", context.Background(), "http://b/", map[string]string{"Authorization": "Bearer " + inboundToken}, false, ""},
		{"identity without raw token", authn.NewContext(context.Background(), &authn.TokenInfo{Subject: "u"}), "http://b/", map[string]string{"Authorization": "Bearer x"}, false, ""},
		{"clean request", withToken(inboundToken), "http://b/?q=1", map[string]string{"Authorization": "Bearer other", "X-Api-Key": "k"}, false, ""},
		{"bearer", withToken(inboundToken), "http://b/", map[string]string{"Authorization": "Bearer " + inboundToken}, true, "Authorization"},
		{"bearer lower case, extra space", withToken(inboundToken), "http://b/", map[string]string{"Authorization": "bearer   " + inboundToken + " "}, true, "Authorization"},
		{"DPoP scheme", withToken(inboundToken), "http://b/", map[string]string{"Authorization": "DPoP " + inboundToken}, true, "Authorization"},
		{"bare in custom header", withToken(inboundToken), "http://b/", map[string]string{"X-Upstream-Token": inboundToken}, true, "X-Upstream-Token"},
		{"proxy authorization", withToken(inboundToken), "http://b/", map[string]string{"Proxy-Authorization": "Bearer " + inboundToken}, true, "Proxy-Authorization"},
		{"basic password", withToken(inboundToken), "http://b/", map[string]string{"Authorization": basic("x-access-token", inboundToken)}, true, "Authorization"},
		{"basic user", withToken(inboundToken), "http://b/", map[string]string{"Authorization": basic(inboundToken, "")}, true, "Authorization"},
		// The decoded credential is exactly the token (no colon, no padding):
		// the longest token a Basic value of that length can carry.
		{"basic token alone", withToken(inboundToken), "http://b/", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(inboundToken))}, true, "Authorization"},
		{"basic long token alone, padded", withToken(longToken), "http://b/", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(longToken))}, true, "Authorization"},
		{"cookie", withToken(inboundToken), "http://b/", map[string]string{"Cookie": "a=b; session=" + inboundToken}, true, "Cookie"},
		{"query", withToken(inboundToken), "http://b/?access_token=" + inboundToken, nil, true, "query parameter"},
		{"query encoded", withToken(longToken), "http://b/?t=" + url.QueryEscape(longToken), nil, true, "query parameter"},
		{"query raw long", withToken(longToken), "http://b/?x=1;t=" + longToken, nil, true, "query parameter"},
		{"user info password", withToken(inboundToken), "http://u:" + inboundToken + "@b/", nil, true, "URL user info"},
		{"user info user", withToken(inboundToken), "http://" + inboundToken + "@b/", nil, true, "URL user info"},
		{"long token in JSON header", withToken(longToken), "http://b/", map[string]string{"X-Ctx": `{"token":"` + longToken + `"}`}, true, "X-Ctx"},
		{"long token in path", withToken(longToken), "http://b/api/" + longToken + "/x", nil, true, "URL path"},
		{"short token not matched as substring", withToken(inboundToken), "http://b/?q=x" + inboundToken + "x", map[string]string{"X-Note": "my" + inboundToken + "s"}, false, ""},
		{"prefix of token", withToken(inboundToken), "http://b/", map[string]string{"Authorization": "Bearer canary-toke"}, false, ""},
		{"token plus suffix", withToken(inboundToken), "http://b/", map[string]string{"Authorization": "Bearer canary-tokens"}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(tc.ctx, http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			err = CheckPassthrough(req)
			if !tc.refuse {
				if err != nil {
					t.Fatalf("CheckPassthrough = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrTokenPassthrough) {
				t.Fatalf("CheckPassthrough = %v, want ErrTokenPassthrough", err)
			}
			if !strings.Contains(err.Error(), tc.where) {
				t.Errorf("error %q does not say where (%s)", err, tc.where)
			}
			for _, tok := range []string{inboundToken, longToken, url.QueryEscape(longToken)} {
				if strings.Contains(err.Error(), tok) {
					t.Errorf("error reveals the token: %q", err)
				}
			}
		})
	}
}

func TestPassthroughGuard(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	guard := NewPassthroughGuard(srv.Client().Transport)

	// Refused: not sent, body closed.
	body := &closeRecorder{Reader: strings.NewReader("x")}
	req := newReq(t, withToken(inboundToken), http.MethodPost, srv.URL, body)
	req.Header.Set("Authorization", "Bearer "+inboundToken)
	resp, err := guard.RoundTrip(req)
	if !errors.Is(err, ErrTokenPassthrough) || resp != nil {
		t.Fatalf("RoundTrip = %v, %v; want ErrTokenPassthrough", resp, err)
	}
	if srv.hits.Load() != 0 {
		t.Error("refused request reached the backend")
	}
	if !body.closed.Load() {
		t.Error("body not closed")
	}

	// The token in a trailer is refused as well.
	req = newReq(t, withToken(inboundToken), http.MethodPost, srv.URL, strings.NewReader("x"))
	req.Trailer = http.Header{"X-Checksum": {inboundToken}}
	if _, err := guard.RoundTrip(req); !errors.Is(err, ErrTokenPassthrough) || !strings.Contains(err.Error(), "trailer X-Checksum") {
		t.Errorf("trailer: err = %v", err)
	}

	// Allowed: sent unchanged, the caller's request untouched.
	req = newReq(t, withToken(inboundToken), http.MethodGet, srv.URL, nil)
	req.Header.Set("Authorization", "Bearer exchanged-token")
	got := do(t, guard, req)
	if got.Get("Authorization") != "Bearer exchanged-token" || srv.hits.Load() != 1 {
		t.Errorf("backend got %q (hits %d)", got.Get("Authorization"), srv.hits.Load())
	}
}

func TestPassthroughGuardZeroValueUsesDefaultTransport(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	var guard PassthroughGuard
	got := do(t, &guard, newReq(t, context.Background(), http.MethodGet, srv.URL, nil))
	if got == nil || srv.hits.Load() != 1 {
		t.Errorf("zero guard did not send through http.DefaultTransport")
	}
}

// The guard composes with any transport, for instance one that forwards
// headers from the inbound request.
func TestPassthroughGuardWrapsForwardingTransport(t *testing.T) {
	t.Parallel()
	srv := newEchoServer(t)
	inbound := newReq(t, withToken(longToken), http.MethodGet, "http://mcp/", nil)
	inbound.Header.Set("Authorization", "Bearer "+longToken)
	forwarding := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("X-Original-Auth", inbound.Header.Get("Authorization"))
		return NewPassthroughGuard(srv.Client().Transport).RoundTrip(r)
	})
	_, err := forwarding.RoundTrip(newReq(t, inbound.Context(), http.MethodGet, srv.URL, io.NopCloser(strings.NewReader(""))))
	if !errors.Is(err, ErrTokenPassthrough) {
		t.Fatalf("err = %v", err)
	}
	if srv.hits.Load() != 0 {
		t.Error("request reached the backend")
	}
}

// net/http sends URL.Opaque as the request target instead of Path, so a
// token there reaches the backend just as one in the path would.
func TestCheckPassthroughOpaqueURL(t *testing.T) {
	t.Parallel()
	req, err := http.NewRequestWithContext(withToken(longToken), http.MethodGet, "https://b/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = "//b/api/" + longToken
	if err := CheckPassthrough(req); !errors.Is(err, ErrTokenPassthrough) {
		t.Fatalf("CheckPassthrough = %v, want ErrTokenPassthrough", err)
	}
}

// The header the Transport owns is replaced whatever its spelling, so a
// handler that copied the inbound token under a non-canonical key sends
// only the configured credential (before the shared outbound guard, the
// stale key stayed beside the new one and the request was refused).
func TestTransportReplacesOwnedHeaderAnySpelling(t *testing.T) {
	t.Parallel()
	base := &recorder{}
	tr, err := NewTransport(Config{Scheme: Header, Header: "X-Api-Key", Secret: Literal("static-backend-key")}, base)
	if err != nil {
		t.Fatal(err)
	}
	req := newReq(t, withToken(inboundToken), http.MethodGet, "https://b/", nil)
	req.Header["x-api-key"] = []string{inboundToken}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip = %v", err)
	}
	resp.Body.Close()
	sent := base.last.Load().Header
	if len(sent) != 1 || len(sent["X-Api-Key"]) != 1 || sent.Get("X-Api-Key") != "static-backend-key" {
		t.Errorf("sent header %v, want only X-Api-Key: static-backend-key", sent)
	}
}
