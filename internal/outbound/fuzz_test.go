package outbound

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/mcpauth-go/mcpauth/internal/httpauth"
)

// FuzzCheckPassthrough places an arbitrary token68 token (the syntax authn
// accepts for a bearer token) in each place a handler could copy it to and
// checks that every placement is refused, that the owned header alone is
// not, and that the error never quotes the token.
func FuzzCheckPassthrough(f *testing.F) {
	for _, s := range []string{"a", "abc", "canary-token", "eyJhbGciOi.canary+long/token==", "x~y_z.1-2/3+4=", "0123456789abcdef"} {
		f.Add(s, "X-Copied")
	}
	g, err := New(Config{Header: "Authorization"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token, name string) {
		if !httpauth.IsToken68(token) || !validHeaderName(name) || http.CanonicalHeaderKey(name) == "Authorization" || http.CanonicalHeaderKey(name) == "Cookie" {
			t.Skip()
		}
		newReq := func(rawURL string) *http.Request {
			req, err := http.NewRequest(http.MethodGet, rawURL, nil)
			if err != nil {
				t.Fatal(err)
			}
			return req
		}
		// The owned header alone carries it: not refused.
		req := newReq("https://backend.example/x")
		req.Header.Set("Authorization", "Bearer "+token)
		if err := g.CheckPassthrough(req, token); err != nil {
			t.Fatalf("owned header refused: %v", err)
		}
		basic := base64.StdEncoding.EncodeToString([]byte("user:" + token))
		hdr := "header " + http.CanonicalHeaderKey(name)
		placements := []struct {
			where string // the whole of what the error says after the sentinel
			place func(*http.Request)
		}{
			{hdr, func(r *http.Request) { r.Header.Set(name, token) }},
			{hdr, func(r *http.Request) { r.Header.Set(name, "Bearer "+token) }},
			{hdr, func(r *http.Request) { r.Header.Set(name, "Basic "+basic) }},
			{"header Cookie", func(r *http.Request) { r.Header.Set("Cookie", "a=b; s="+token+"; c=d") }},
			{"trailer " + name, func(r *http.Request) { r.Trailer = http.Header{name: {token}} }},
			{"query parameter", func(r *http.Request) { r.URL.RawQuery = "q=1&t=" + url.QueryEscape(token) }},
			{"query parameter", func(r *http.Request) { r.URL.RawQuery = url.QueryEscape(token) + "=1" }},
			{"URL user info", func(r *http.Request) { r.URL.User = url.UserPassword("u", token) }},
		}
		for _, p := range placements {
			req := newReq("https://backend.example/x")
			req.Header.Set("Authorization", "Bearer "+token)
			p.place(req)
			err := g.CheckPassthrough(req, token)
			if !errors.Is(err, ErrPassthrough) {
				t.Fatalf("%s: err = %v, want ErrPassthrough", p.where, err)
			}
			// The error is fixed text and the place: it never quotes the token.
			if want := ErrPassthrough.Error() + ": " + p.where; err.Error() != want {
				t.Fatalf("error %q, want %q", err, want)
			}
		}
	})
}
