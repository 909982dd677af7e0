package authn

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/internal/httpauth"
)

// edgeExpectSanitized is the reference filter for FuzzChallenge, written
// independently of sanitizeChallenge: keep only RFC 6750 NQSCHAR (or NQCHAR).
func edgeExpectSanitized(s string, space bool) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		ok := c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e)
		if space && c == 0x20 {
			ok = true
		}
		if ok {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// FuzzChallenge checks that whatever the field values, the header is one
// line, parses back as a Bearer challenge with at most the five known
// parameters, in the fixed order, each equal to its sanitized input.
func FuzzChallenge(f *testing.F) {
	f.Add("", "", "", "", "")
	f.Add("mcp", "invalid_token", "The access token is invalid or expired.", "files:read,files:write",
		"https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
	f.Add("r\r\nX-Injected: 1", `a", error="x`, "\\\"", "a b,,\x00", "https://x/\n")
	f.Add("é", "insufficient_scope", "\x7f\t", ",", "\"")
	f.Fuzz(func(t *testing.T, realm, errCode, desc, scopes, rm string) {
		c := Challenge{Realm: realm, Error: errCode, ErrorDescription: desc, ResourceMetadata: rm}
		if scopes != "" {
			c.Scopes = strings.Split(scopes, ",")
		}
		got := c.String()
		for i := 0; i < len(got); i++ {
			if got[i] < 0x20 || got[i] >= 0x7f {
				t.Fatalf("byte %#x in header %q", got[i], got)
			}
		}
		scheme, params, err := edgeParseChallenge(got)
		if err != nil {
			t.Fatalf("%q does not parse: %v", got, err)
		}
		if scheme != "Bearer" {
			t.Fatalf("scheme %q", scheme)
		}
		var wantScopes []string
		for _, s := range c.Scopes {
			if s = edgeExpectSanitized(s, false); s != "" {
				wantScopes = append(wantScopes, s)
			}
		}
		want := []edgeParam{
			{"realm", edgeExpectSanitized(realm, true)},
			{"error", edgeExpectSanitized(errCode, true)},
			{"error_description", edgeExpectSanitized(desc, true)},
			{"scope", strings.Join(wantScopes, " ")},
			{"resource_metadata", edgeExpectSanitized(rm, true)},
		}
		i := 0
		for _, w := range want {
			if w.value == "" {
				continue
			}
			if i >= len(params) || params[i] != w {
				t.Fatalf("%q: parameter %d = %v, want %v (all %v)", got, i, params, w, params)
			}
			i++
		}
		if i != len(params) {
			t.Fatalf("%q: unexpected parameters %v", got, params[i:])
		}
	})
}

// FuzzBearer checks the Authorization header parser: it never panics, a
// returned token is always token68 and exactly what followed the Bearer
// scheme, and it never returns a token together with an error or for a
// request with a query token or two header lines.
func FuzzBearer(f *testing.F) {
	f.Add("Bearer abc.def.ghi", "", "", false)
	f.Add("bearer   x==", "", "a=1", false)
	f.Add("Basic dXNlcjpwYXNz", "", "", false)
	f.Add("Bearer a, Bearer b", "", "", false)
	f.Add("Bearer a", "Bearer b", "", true)
	f.Add("Bearer a", "", "access_token=a", false)
	f.Add("Bearer\ta", "", "access%5Ftoken=", false)
	f.Add("Bearer", "", "", false)
	f.Fuzz(func(t *testing.T, h1, h2, query string, two bool) {
		values := []string{h1}
		if two {
			values = append(values, h2)
		}
		tok, err := parseBearer(values, query)
		if err != nil {
			if tok != "" {
				t.Fatalf("token %q returned with error %v", tok, err)
			}
			if !errors.Is(err, ErrNoToken) && !errors.Is(err, ErrInvalidRequest) && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if two {
			t.Fatalf("token accepted from two Authorization headers")
		}
		if q, _ := url.ParseQuery(query); q.Has("access_token") {
			t.Fatalf("token accepted with access_token in the query %q", query)
		}
		if !httpauth.IsToken68(tok) {
			t.Fatalf("token %q is not token68", tok)
		}
		v := strings.Trim(h1, " \t")
		if !strings.EqualFold(v[:6], "bearer") || v[6] != ' ' || strings.TrimLeft(v[6:], " ") != tok {
			t.Fatalf("header %q gave token %q", h1, tok)
		}
	})
}
