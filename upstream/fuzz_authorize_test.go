package upstream_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/upstream"
)

// FuzzAuthorize checks the authorization endpoint's redirect rule on
// arbitrary requests: it either shows an error page (no Location), sends
// the browser to its own consent page, or redirects to a registered
// redirect URI (a loopback one on any port) with the iss parameter.
func FuzzAuthorize(f *testing.F) {
	registered := []string{"https://app.example.com/cb", "http://127.0.0.1:9999/callback"}
	as, err := upstream.NewServer(upstream.Config{
		Issuer: "https://as.example.com", Resources: []string{resource},
		Upstreams: []upstream.Provider{{Name: "corp", Type: upstream.OIDC, Issuer: "https://idp.example.com", ClientID: "c"}},
		Clients:   []upstream.Client{{ID: "app", RedirectURIs: registered}},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	_, challenge := pkce()
	good := url.Values{"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {registered[0]},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"s"}}
	f.Add(good.Encode())
	good.Set("redirect_uri", "http://127.0.0.1:1234/callback")
	f.Add(good.Encode())
	good.Set("redirect_uri", "https://app.example.com/cb/../evil")
	f.Add(good.Encode())
	good.Set("code_challenge_method", "plain")
	f.Add(good.Encode())
	f.Add("client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%23x")
	f.Add("client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%3A9999%2Fcallback%3Fa%3Db")
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, "https://as.example.com/authorize", nil)
		req.URL.RawQuery = query
		w := httptest.NewRecorder()
		as.ServeHTTP(w, req)
		loc := w.Header().Get("Location")
		switch w.Code {
		case http.StatusSeeOther:
			if !strings.HasPrefix(loc, "https://as.example.com/consent?login=") {
				t.Fatalf("303 to %q", loc)
			}
		case http.StatusFound:
			u, err := url.Parse(loc)
			if err != nil {
				t.Fatalf("unparsable Location %q", loc)
			}
			if u.Query().Get("iss") != "https://as.example.com" {
				t.Fatalf("authorization response without iss: %q", loc)
			}
			base := u.Scheme + "://" + u.Host + u.EscapedPath()
			ok := base == registered[0]
			if u.Scheme == "http" && u.Hostname() == "127.0.0.1" && u.EscapedPath() == "/callback" {
				ok = true
			}
			if !ok {
				t.Fatalf("redirected to an unregistered URI %q", loc)
			}
		default:
			if loc != "" {
				t.Fatalf("status %d with Location %q", w.Code, loc)
			}
		}
	})
}
