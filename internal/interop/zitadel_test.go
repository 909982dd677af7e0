package interop

// Interop: the tokenexchange transport against the zitadel/oidc v3 example
// OpenID Provider (github.com/zitadel/oidc/v3/example/server), run in-process
// on a loopback listener. Facts about the example OP this test relies on (read
// from its source, v3.51.17):
//
//   - storage.WebClient clients authenticate with client_secret_basic and are
//     the only example clients allowed the token-exchange grant; the OP reads
//     token-exchange client credentials from the Basic header only.
//   - Subject tokens are validated by the OP itself: an access token it issued
//     (opaque, encrypted "tokenID:subject", or a JWT), a refresh token or an
//     ID token. So the test first logs a user in with the authorization code
//     flow (PKCE) to get a real access token.
//   - Without an actor token the storage only exchanges tokens of admin users
//     ("impersonation"); user id1 (test-user@<host>, "verysecure") is admin.
//   - An exchanged access token's aud is the audience parameter, and
//     introspection is active only for a client named in aud, so the
//     exchange asks for audience "api" and the backend introspects as "api".

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/internal/discovery"
	"github.com/mcpauth-go/mcpauth/tokenexchange"
)

const (
	redirectURI = "http://127.0.0.1/callback" // never dereferenced
	apiSecret   = "secret"                    // the example OP's fixed client secret
)

// registerOnce guards the example storage's package-level client registry.
var registerOnce sync.Once

type op struct {
	issuer     string
	md         *discovery.Metadata
	tokenCalls atomic.Int64 // requests to the token endpoint
}

// startOP runs the example OP on 127.0.0.1 (the example binary listens on all
// interfaces; here we own the listener) and returns its discovered metadata.
func startOP(t *testing.T) *op {
	t.Helper()
	registerOnce.Do(func() {
		storage.RegisterClients(
			storage.WebClient("web", "secret", redirectURI),
			storage.WebClient("api", apiSecret, redirectURI),
		)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	o := &op{issuer: "http://" + ln.Addr().String() + "/"}
	store := storage.NewStorage(storage.NewUserStore(o.issuer))
	// A nil logger keeps SetupServer from replacing the process-wide logger.
	router := exampleop.SetupServer(o.issuer, store, nil, false)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/oauth/token" {
				o.tokenCalls.Add(1)
			}
			router.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o.md, err = discovery.Fetch(ctx, http.DefaultClient, o.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if o.md.TokenEndpoint == "" || o.md.IntrospectionEndpoint == "" || o.md.AuthorizationEndpoint == "" {
		t.Fatalf("metadata lacks endpoints: %+v", o.md)
	}
	return o
}

// noRedirect is a client that returns redirects instead of following them.
var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// login runs the authorization code flow with PKCE for a user of the example
// store and returns the access token the OP issues to client "web".
func (o *op) login(t *testing.T, username, password string) string {
	t.Helper()
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id":             {"web"},
		"redirect_uri":          {redirectURI},
		"response_type":         {"code"},
		"scope":                 {"openid email profile"},
		"state":                 {"st"},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	resp := mustDo(t, http.MethodGet, o.md.AuthorizationEndpoint+"?"+q.Encode(), nil, http.StatusFound)
	loginURL := o.resolve(t, resp.Header.Get("Location"))
	id := loginURL.Query().Get("authRequestID")
	if id == "" {
		t.Fatalf("no authRequestID in %s", loginURL)
	}
	resp = mustDo(t, http.MethodPost, loginURL.Scheme+"://"+loginURL.Host+loginURL.Path,
		url.Values{"id": {id}, "username": {username}, "password": {password}}, http.StatusFound)
	cb := o.resolve(t, resp.Header.Get("Location"))
	resp = mustDo(t, http.MethodGet, cb.String(), nil, http.StatusFound)
	final := o.resolve(t, resp.Header.Get("Location"))
	code := final.Query().Get("code")
	if code == "" || final.Query().Get("state") != "st" {
		t.Fatalf("no code in the authorization response (error %q)", final.Query().Get("error"))
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, o.md.TokenEndpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("web", "secret")
	tresp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer tresp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(tresp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("code exchange: status %d error %q (%v)", tresp.StatusCode, tok.Error, err)
	}
	return tok.AccessToken
}

func (o *op) resolve(t *testing.T, loc string) *url.URL {
	t.Helper()
	base, _ := url.Parse(o.issuer)
	u, err := base.Parse(loc)
	if err != nil || loc == "" {
		t.Fatalf("bad redirect %q: %v", loc, err)
	}
	return u
}

func mustDo(t *testing.T, method, u string, form url.Values, want int) *http.Response {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d", method, u, resp.StatusCode, want)
	}
	return resp
}

// introspection is the subset of an RFC 7662 response the test checks.
type introspection struct {
	Active   bool   `json:"active"`
	Subject  string `json:"sub"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Email    string `json:"email"`
}

// introspect asks the OP's RFC 7662 endpoint about tok as client "api".
func (o *op) introspect(ctx context.Context, tok string) (*introspection, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.md.IntrospectionEndpoint,
		strings.NewReader(url.Values{"token": {tok}}.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("api", apiSecret)
	resp, err := noRedirect.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("introspection status " + resp.Status)
	}
	var in introspection
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil {
		return nil, err
	}
	return &in, nil
}

// resourceServer is the backend "api": it accepts a request only if its
// bearer token is active at the OP's introspection endpoint, and records
// every Authorization header it receives.
func (o *op) resourceServer(t *testing.T) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		mu.Lock()
		seen = append(seen, h)
		mu.Unlock()
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			http.Error(w, "no bearer", http.StatusUnauthorized)
			return
		}
		in, err := o.introspect(r.Context(), tok)
		if err != nil {
			http.Error(w, "introspection failed", http.StatusServiceUnavailable)
			return
		}
		if !in.Active {
			http.Error(w, "inactive", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(in)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func withIdentity(tok string) context.Context {
	info := (&authn.TokenInfo{Subject: "id1", Expiry: time.Now().Add(5 * time.Minute)}).WithToken(tok)
	return authn.NewContext(context.Background(), info)
}

func TestZitadelTokenExchangeAndIntrospection(t *testing.T) {
	o := startOP(t)
	subject := o.login(t, "test-user@127.0.0.1", "verysecure")

	// The inbound token is for "web", so the backend "api" must not accept it.
	if in, err := o.introspect(context.Background(), subject); err != nil || in.Active {
		t.Fatalf("inbound token active for api: %+v, %v", in, err)
	}

	api, seen := o.resourceServer(t)
	tr, err := tokenexchange.NewTransport(tokenexchange.Config{
		Issuer:       o.issuer, // token endpoint discovered
		ClientID:     "web",
		ClientSecret: "secret",
		Audience:     "api",
		Scopes:       []string{"openid", "email"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx := withIdentity(subject)
	callsBefore := o.tokenCalls.Load()
	for i := range 3 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.URL+"/resource", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		var in introspection
		_ = json.NewDecoder(resp.Body).Decode(&in)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: backend status %d", i, resp.StatusCode)
		}
		if !in.Active || in.Subject != "id1" || in.ClientID != "web" || in.Email != "test-user@zitadel.ch" {
			t.Errorf("introspection of the exchanged token = %+v", in)
		}
	}
	if got := o.tokenCalls.Load() - callsBefore; got != 1 {
		t.Errorf("token endpoint calls for 3 requests = %d, want 1 (cached)", got)
	}
	for _, h := range seen() {
		if strings.Contains(h, subject) {
			t.Fatal("the backend received the inbound token")
		}
	}

	tok, err := tr.Exchange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.IssuedTokenType != tokenexchange.TokenTypeAccessToken || tok.TokenType != "Bearer" || tok.Expiry.IsZero() {
		t.Errorf("exchanged token = %v", tok)
	}
	if until := time.Until(tok.Expiry); until <= 0 || until > 5*time.Minute+time.Second {
		t.Errorf("expires_in not honoured: expiry in %v", until)
	}
}

func TestZitadelRejections(t *testing.T) {
	o := startOP(t)
	subject := o.login(t, "test-user@127.0.0.1", "verysecure")
	cases := []struct {
		name       string
		cfg        tokenexchange.Config
		subject    string
		wantStatus int
		wantCode   string
	}{
		{"forged subject token", tokenexchange.Config{ClientID: "web", ClientSecret: "secret", Audience: "api"},
			"not-a-token-the-op-issued", 400, "invalid_request"},
		{"wrong client secret", tokenexchange.Config{ClientID: "web", ClientSecret: "wrong-secret", Audience: "api"},
			subject, 401, "invalid_client"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.TokenURL = o.md.TokenEndpoint
			tr, err := tokenexchange.NewTransport(tc.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = tr.Exchange(withIdentity(tc.subject))
			var te *tokenexchange.Error
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want *tokenexchange.Error", err)
			}
			if te.StatusCode != tc.wantStatus || te.Code != tc.wantCode {
				t.Errorf("err = %#v, want status %d code %q", te, tc.wantStatus, tc.wantCode)
			}
			if errors.Is(err, tokenexchange.ErrRetryable) {
				t.Error("a 4xx is not retryable")
			}
			for _, s := range []string{tc.subject, tc.cfg.ClientSecret} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error text leaks a token or secret: %v", err)
				}
			}
		})
	}
}

// Delegation (RFC 8693 §1.1): the example OP refuses to exchange a non-admin
// user's token alone, and accepts it with an actor token.
func TestZitadelDelegationWithActorToken(t *testing.T) {
	o := startOP(t)
	subject := o.login(t, "test-user2", "verysecure") // id2, not an admin
	actor := o.login(t, "test-user@127.0.0.1", "verysecure")
	cfg := tokenexchange.Config{TokenURL: o.md.TokenEndpoint, ClientID: "web", ClientSecret: "secret", Audience: "api", Scopes: []string{"openid"}}

	alone, err := tokenexchange.NewTransport(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = alone.Exchange(withIdentity(subject))
	var te *tokenexchange.Error
	// The example storage reports its refusal as a plain error, which the OP
	// turns into 500 server_error.
	if !errors.As(err, &te) || te.Code != "server_error" {
		t.Fatalf("exchange without actor: err = %v, want the OP's refusal", err)
	}

	cfg.ActorToken = func(context.Context) (string, string, error) {
		return actor, tokenexchange.TokenTypeAccessToken, nil
	}
	delegated, err := tokenexchange.NewTransport(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := delegated.Exchange(withIdentity(subject))
	if err != nil {
		t.Fatalf("exchange with actor: %v", err)
	}
	in, err := o.introspect(context.Background(), tok.AccessToken)
	if err != nil || !in.Active || in.Subject != "id2" {
		t.Errorf("introspection of the delegated token = %+v, %v", in, err)
	}
}

// Concurrent first requests of one user make one call to the OP.
func TestZitadelConcurrentMisses(t *testing.T) {
	o := startOP(t)
	subject := o.login(t, "test-user@127.0.0.1", "verysecure")
	tr, err := tokenexchange.NewTransport(tokenexchange.Config{
		TokenURL: o.md.TokenEndpoint, ClientID: "web", ClientSecret: "secret", Audience: "api",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := o.tokenCalls.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	tokens := make(chan string, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(withIdentity(subject), 10*time.Second)
			defer cancel()
			tok, err := tr.Exchange(ctx)
			if err != nil {
				errs <- err
				return
			}
			tokens <- tok.AccessToken
		}()
	}
	wg.Wait()
	close(errs)
	close(tokens)
	for err := range errs {
		t.Fatal(err)
	}
	first := ""
	for tok := range tokens {
		if first == "" {
			first = tok
		} else if tok != first {
			t.Fatal("concurrent requests got different exchanged tokens")
		}
	}
	if n := o.tokenCalls.Load() - before; n != 1 {
		t.Errorf("token endpoint calls = %d, want 1", n)
	}
}
