package interop

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// resourceServer is how the IdP treats one RFC 8707 resource indicator.
type resourceServer struct {
	Scope  string `json:"scope,omitempty"`  // scopes the IdP grants for it, space-separated
	Format string `json:"format,omitempty"` // "jwt" (default) or "opaque"
	TTL    int    `json:"ttl,omitempty"`    // access token lifetime in seconds; 0: 300
}

// idpConfig is the JSON idp.mjs reads on stdin.
type idpConfig struct {
	Resources map[string]resourceServer `json:"resources"`
	Clients   []map[string]any          `json:"clients"`
	Groups    map[string][]string       `json:"groups,omitempty"` // login or client id -> groups claim
}

// idp is a running oidc-provider.
type idp struct {
	Issuer string
	md     struct {
		Authorization string `json:"authorization_endpoint"`
		Token         string `json:"token_endpoint"`
		Introspection string `json:"introspection_endpoint"`
		Revocation    string `json:"revocation_endpoint"`
		Registration  string `json:"registration_endpoint"`
	}
}

// confidential returns the metadata of a client_secret_basic client allowed
// client_credentials (and, with redirect URIs, the authorization code grant).
func confidential(id, secret string, redirectURIs ...string) map[string]any {
	c := map[string]any{
		"client_id":                  id,
		"client_secret":              secret,
		"token_endpoint_auth_method": "client_secret_basic",
		"grant_types":                []string{"client_credentials"},
		"response_types":             []string{},
		"redirect_uris":              []string{},
	}
	if len(redirectURIs) > 0 {
		c["grant_types"] = []string{"client_credentials", "authorization_code", "refresh_token"}
		c["response_types"] = []string{"code"}
		c["redirect_uris"] = redirectURIs
	}
	return c
}

// startIdP runs oidc-provider on 127.0.0.1 until the test ends.
func startIdP(t *testing.T, cfg idpConfig) *idp {
	t.Helper()
	node := requireNode(t)
	if cfg.Clients == nil {
		cfg.Clients = []map[string]any{}
	}
	_, line := startProc(t, nodeDir, mustJSON(t, cfg), node, "idp.mjs")
	var ready struct{ Issuer string }
	if err := json.Unmarshal([]byte(line), &ready); err != nil || ready.Issuer == "" {
		t.Fatalf("idp.mjs readiness line %q: %v", line, err)
	}
	p := &idp{Issuer: ready.Issuer}
	resp, err := http.Get(p.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&p.md); err != nil || p.md.Token == "" {
		t.Fatalf("discovery: %v", err)
	}
	return p
}

// tokenResponse is an RFC 6749 §5.1 token response.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	Scope       string `json:"scope"`
	ExpiresIn   int    `json:"expires_in"`
}

// token posts form to the token endpoint as client id (HTTP Basic) and
// returns the response, or an error carrying the RFC 6749 error code.
func (p *idp) token(id, secret string, form url.Values) (*tokenResponse, error) {
	return p.postToken(p.md.Token, id, secret, form)
}

func (p *idp) postToken(endpoint, id, secret string, form url.Values) (*tokenResponse, error) {
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.Unmarshal(body, &e)
		return nil, fmt.Errorf("%s: HTTP %d, error %q", endpoint, resp.StatusCode, e.Error)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, err
	}
	return &tr, nil
}

// clientCredentials gets a token for resource with the client_credentials grant.
func (p *idp) clientCredentials(t *testing.T, id, secret, resource, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	if resource != "" {
		form.Set("resource", resource)
	}
	tr, err := p.token(id, secret, form)
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	return tr.AccessToken
}

// revoke revokes token (RFC 7009) as the client it was issued to.
func (p *idp) revoke(t *testing.T, id, secret, token string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.md.Revocation,
		strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation: HTTP %d", resp.StatusCode)
	}
}

// register registers a client dynamically (RFC 7591) and returns its id and
// secret.
func (p *idp) register(t *testing.T, metadata map[string]any) (id, secret string) {
	t.Helper()
	resp, err := http.Post(p.md.Registration, "application/json", strings.NewReader(string(mustJSON(t, metadata))))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		Error        string `json:"error"`
		Description  string `json:"error_description"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusCreated || out.ClientID == "" {
		t.Fatalf("registration: HTTP %d %s %s", resp.StatusCode, out.Error, out.Description)
	}
	return out.ClientID, out.ClientSecret
}

// authorizationCode runs the authorization code flow with PKCE for
// resource as client id, logging in as user through the IdP's development
// login and consent pages, and returns the token response.
func (p *idp) authorizationCode(t *testing.T, id, secret, redirectURI, resource, scope, user string) *tokenResponse {
	t.Helper()
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	state := rand.Text()
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {id},
		"redirect_uri":          {redirectURI},
		"scope":                 {scope},
		"resource":              {resource},
		"state":                 {state},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	ua := newBrowser()
	back, err := ua.authorize(context.Background(), p.md.Authorization+"?"+q.Encode(), redirectURI, user)
	if err != nil {
		t.Fatal(err)
	}
	if back.Get("state") != state || back.Get("iss") != p.Issuer || back.Get("code") == "" {
		t.Fatalf("authorization response: state ok %v, iss %q, code present %v, error %q",
			back.Get("state") == state, back.Get("iss"), back.Get("code") != "", back.Get("error"))
	}
	tr, err := p.token(id, secret, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {back.Get("code")},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
		"resource":      {resource},
	})
	if err != nil {
		t.Fatalf("authorization_code: %v", err)
	}
	return tr
}

// browser is a plain HTTP client with a cookie jar that walks the IdP's
// development login and consent pages (and the embedded authorization
// server's consent page) the way a user would: follow redirects, fill in
// the form, submit it.
type browser struct {
	c *http.Client
}

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &browser{c: &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		// Redirects are followed by authorize, which must stop at the
		// client's redirect URI (nothing listens there).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

var (
	formBlock  = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	formPost   = regexp.MustCompile(`(?i)\smethod="post"`)
	formAction = regexp.MustCompile(`(?i)\saction="([^"]*)"`)
	formInput  = regexp.MustCompile(`<input[^>]*\sname="([^"]+)"(?:[^>]*\svalue="([^"]*)")?`)
	formButton = regexp.MustCompile(`<button[^>]*\sname="([^"]+)"[^>]*\svalue="([^"]*)"`)
)

// postForm finds the first form of page that is posted and returns its
// action and the fields a browser would send when the user clicks its first
// submit button: the form's inputs, and that button's name and value when
// it has them (the embedded authorization server's consent page names the
// chosen upstream on its button).
func postForm(page []byte) (action string, form url.Values, ok bool) {
	for _, m := range formBlock.FindAllSubmatch(page, -1) {
		a := formAction.FindSubmatch(m[1])
		if !formPost.Match(m[1]) || a == nil {
			continue
		}
		form = url.Values{}
		for _, in := range formInput.FindAllSubmatch(m[2], -1) {
			form.Set(string(in[1]), html.UnescapeString(string(in[2])))
		}
		if b := formButton.FindSubmatch(m[2]); b != nil {
			form.Set(string(b[1]), html.UnescapeString(string(b[2])))
		}
		return html.UnescapeString(string(a[1])), form, true
	}
	return "", nil, false
}

// authorize starts at the authorization URL and returns the query of the
// redirect to redirectURI, logging in as user on the way (any password is
// accepted by the development pages).
func (b *browser) authorize(ctx context.Context, authURL, redirectURI, user string) (url.Values, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	for range 12 {
		resp, err := b.c.Do(req)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, err
			}
			if strings.HasPrefix(next.String(), redirectURI) {
				return next.Query(), nil
			}
			if req, err = http.NewRequestWithContext(ctx, http.MethodGet, next.String(), nil); err != nil {
				return nil, err
			}
		case resp.StatusCode == http.StatusOK:
			target, form, ok := postForm(body)
			if !ok {
				return nil, fmt.Errorf("login page %s has no form", resp.Request.URL.Path)
			}
			action, err := resp.Request.URL.Parse(target)
			if err != nil {
				return nil, err
			}
			if form.Has("password") { // a login form (the consent page has a hidden "login" id)
				form.Set("login", user)
				form.Set("password", "any password: the development pages accept all")
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(form.Encode()))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		default:
			return nil, fmt.Errorf("authorization: %s: HTTP %d", resp.Request.URL.Path, resp.StatusCode)
		}
	}
	return nil, errors.New("authorization: too many steps")
}
