package redisstore_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/upstream"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore"
	"github.com/mcpauth-go/mcpauth/upstream/redisstore/internal/redistest"
	"github.com/mcpauth-go/mcpauth/upstream/upstreamtest"
)

// TestServerReplicasOneLogin: two authorization-server replicas share one
// real Redis (and one signing key) behind a load balancer. A login is
// authorized and consented on replica A, its upstream callback and the
// token exchange land on replica B, and the issued token is refreshed on A.
// Then a backend call through a Transport of replica A carries the user's
// upstream token, and after the upstream token expires a Transport of
// replica B refreshes it once.
func TestServerReplicasOneLogin(t *testing.T) {
	const resource = "https://mcp.example.com/mcp"
	srv := redistest.Start(t, redistest.Options{})
	idp := upstreamtest.NewProvider(t, upstreamtest.Config{TokenTTL: time.Hour})
	signer, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := newKey("k1")

	// The load balancer: the issuer's one address, routing by path.
	var replicas [2]http.Handler
	var served [2]atomic.Int64
	route := map[string]int{"/register": 0, "/authorize": 0, "/consent": 0, "/callback": 1, "/token": 1}
	var tokenCalls atomic.Int64
	lb := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, ok := route[r.URL.Path]
		if !ok {
			i = int(served[0].Load()+served[1].Load()) % 2
		}
		if r.URL.Path == "/token" && tokenCalls.Add(1) > 1 {
			i = 0 // the refresh goes to A
		}
		served[i].Add(1)
		replicas[i].ServeHTTP(w, r)
	}))
	issuer := "http://" + lb.Listener.Addr().String()
	var stores [2]*redisstore.Store
	var servers [2]*upstream.Server
	for i := range replicas {
		stores[i], err = redisstore.New(redisstore.Config{Client: newClient(t, srv.Addr()), Keys: []redisstore.Key{key}})
		if err != nil {
			t.Fatal(err)
		}
		servers[i], err = upstream.NewServer(upstream.Config{
			Issuer:        issuer,
			Resources:     []string{resource},
			Upstreams:     []upstream.Provider{idp.OIDC("corp")},
			DefaultScopes: []string{"mcp:tools"},
			SigningKeys:   []upstream.SigningKey{{Signer: signer}},
			Store:         stores[i],
			Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		replicas[i] = servers[i]
	}
	lb.Start()
	t.Cleanup(lb.Close)

	// Register a public client (on A).
	redirect := "http://127.0.0.1:9/cb"
	regBody, _ := json.Marshal(map[string]any{"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "client_name": "Replica Test"})
	resp, err := http.Post(issuer+"/register", "application/json", bytes.NewReader(regBody))
	if err != nil {
		t.Fatal(err)
	}
	var reg map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	clientID, _ := reg["client_id"].(string)
	if resp.StatusCode != http.StatusCreated || clientID == "" {
		t.Fatalf("register: %d %v", resp.StatusCode, reg)
	}

	// Authorize and consent on A, callback on B.
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"state": {"st-1"}, "resource": {resource}}
	cb := browse(t, issuer, issuer+"/authorize?"+q.Encode(), redirect)
	if cb.Query().Get("error") != "" || cb.Query().Get("state") != "st-1" || cb.Query().Get("iss") != issuer {
		t.Fatalf("authorization response: error=%q state=%q iss=%q", cb.Query().Get("error"), cb.Query().Get("state"), cb.Query().Get("iss"))
	}
	if served[0].Load() == 0 || served[1].Load() == 0 {
		t.Fatalf("one replica served everything: %d / %d", served[0].Load(), served[1].Load())
	}

	// Token on B; refresh on A.
	tok := postToken(t, issuer, url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID},
		"code": {cb.Query().Get("code")}, "redirect_uri": {redirect}, "code_verifier": {verifier}, "resource": {resource}})
	tok2 := postToken(t, issuer, url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID},
		"refresh_token": {tok["refresh_token"].(string)}, "resource": {resource}})

	// The issued token verifies (JWKS through the load balancer) and names
	// the session.
	v, err := authn.NewVerifier(authn.Config{Issuer: issuer, Audience: []string{resource},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	info, err := v.Verify(context.Background(), tok2["access_token"].(string))
	if err != nil {
		t.Fatalf("issued token does not verify: %v", err)
	}
	tsid, _ := info.Claims["tsid"].(string)
	if tsid == "" {
		t.Fatal("no tsid claim")
	}
	ctx := authn.NewContext(context.Background(), info)

	// A backend call on replica A carries the user's upstream token (the
	// upstream's userinfo endpoint accepts only its own live tokens).
	var clock atomic.Int64 // offset in seconds
	now := func() time.Time { return time.Now().Add(time.Duration(clock.Load()) * time.Second) }
	transports := [2]*upstream.Transport{}
	for i := range transports {
		transports[i], err = upstream.NewTransport(upstream.TransportConfig{Server: servers[i], Now: now}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	userinfo := idp.URL() + "/userinfo"
	status, _, err := backendCall(ctx, transports[0], userinfo)
	if err != nil || status != http.StatusOK {
		t.Fatalf("backend call with the upstream token: %d %v", status, err)
	}
	if n := idp.RefreshRequests(); n != 0 {
		t.Fatalf("%d upstream refreshes for a fresh token", n)
	}

	// Two hours later the upstream token has expired: concurrent calls on
	// both replicas refresh it once.
	clock.Store(2 * 3600)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _, err := backendCall(ctx, transports[i%2], userinfo)
			if err != nil || status != http.StatusOK {
				t.Errorf("backend call after expiry: %d %v", status, err)
			}
		}()
	}
	wg.Wait()
	if n := idp.RefreshRequests(); n != 1 {
		t.Fatalf("%d upstream refreshes, want 1", n)
	}
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// browse follows a browser's redirects through the load balancer and the
// upstream, approving the consent page, until a redirect to redirectPrefix.
func browse(t *testing.T, issuer, start, redirectPrefix string) *url.URL {
	t.Helper()
	u, _ := browseHook(t, issuer, start, redirectPrefix, nil)
	return u
}

// browseHook is browse with before called ahead of each GET; when before
// returns false, browsing stops and the status of that GET is returned
// (with a nil URL) if it is not a redirect.
func browseHook(t *testing.T, issuer, start, redirectPrefix string, before func(next string) bool) (*url.URL, int) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	next := start
	for range 12 {
		if strings.HasPrefix(next, redirectPrefix) {
			u, err := url.Parse(next)
			if err != nil {
				t.Fatal(err)
			}
			return u, http.StatusFound
		}
		if before != nil && !before(next) {
			resp, err := b.Get(next)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if loc := resp.Header.Get("Location"); loc != "" && strings.HasPrefix(loc, redirectPrefix) {
				u, _ := url.Parse(loc)
				return u, resp.StatusCode
			}
			return nil, resp.StatusCode
		}
		resp, err := b.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther:
			next = resp.Header.Get("Location")
		case resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(`<form id="consent"`)):
			page := string(body)
			form := url.Values{}
			end := strings.Index(page, `<form id="deny"`)
			if end < 0 {
				end = len(page)
			}
			for _, m := range hiddenInput.FindAllStringSubmatch(page[strings.Index(page, `<form id="consent"`):end], -1) {
				form.Set(m[1], strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'").Replace(m[2]))
			}
			if m := regexp.MustCompile(`name="upstream" value="([^"]+)"`).FindStringSubmatch(page); m != nil {
				form.Set("upstream", m[1])
			}
			req, _ := http.NewRequest(http.MethodPost, issuer+"/consent", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", issuer)
			pr, err := b.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			pr.Body.Close()
			if pr.Header.Get("Location") == "" {
				t.Fatalf("consent POST answered %d without a redirect", pr.StatusCode)
			}
			next = pr.Header.Get("Location")
		default:
			t.Fatalf("GET %s: %d %.300s", next, resp.StatusCode, body)
		}
	}
	t.Fatal("too many redirects")
	return nil, 0
}

func postToken(t *testing.T, issuer string, form url.Values) map[string]any {
	t.Helper()
	resp, err := http.PostForm(issuer+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token (%s): %d %v", form.Get("grant_type"), resp.StatusCode, m["error"])
	}
	return m
}

// TestLoginAcrossRedisRestart: a login in flight when Redis restarts (with
// persistence) completes; one whose callback arrives while Redis is down
// fails cleanly (an error for the client, no panic, no code), and a new
// login works once Redis is back.
func TestLoginAcrossRedisRestart(t *testing.T) {
	const resource = "https://mcp.example.com/mcp"
	srv := redistest.Start(t, redistest.Options{Persist: true})
	idp := upstreamtest.NewProvider(t, upstreamtest.Config{})
	store, err := redisstore.New(redisstore.Config{Client: newClient(t, srv.Addr()), Keys: []redisstore.Key{newKey("k1")}})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewUnstartedServer(nil)
	issuer := "http://" + front.Listener.Addr().String()
	as, err := upstream.NewServer(upstream.Config{
		Issuer: issuer, Resources: []string{resource}, Upstreams: []upstream.Provider{idp.OIDC("corp")},
		Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	front.Config.Handler = as
	front.Start()
	t.Cleanup(front.Close)

	redirect := "http://127.0.0.1:9/cb"
	regBody, _ := json.Marshal(map[string]any{"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}})
	resp, err := http.Post(issuer+"/register", "application/json", bytes.NewReader(regBody))
	if err != nil {
		t.Fatal(err)
	}
	var reg map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	clientID, _ := reg["client_id"].(string)

	login := func(before func(string) bool) (code, verifier string, status int, errCode string) {
		verifier = rand.Text() + rand.Text()
		sum := sha256.Sum256([]byte(verifier))
		q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
			"state": {"s"}, "resource": {resource}}
		u, st := browseHook(t, issuer, issuer+"/authorize?"+q.Encode(), redirect, before)
		if u == nil {
			return "", verifier, st, ""
		}
		return u.Query().Get("code"), verifier, st, u.Query().Get("error")
	}
	atCallback := func(next string) bool { return !strings.HasPrefix(next, issuer+"/callback") }

	// Restart between the upstream login and the callback: completes.
	code, verifier, _, errCode := login(func(next string) bool {
		if !atCallback(next) {
			srv.Kill()
			srv.Restart()
		}
		return true
	})
	if code == "" || errCode != "" {
		t.Fatalf("login across a restart: error %q", errCode)
	}
	tok := postToken(t, issuer, url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID},
		"code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}, "resource": {resource}})
	if tok["access_token"] == nil {
		t.Fatal("no access token")
	}

	// Redis down at the callback: a clean failure.
	code, _, status, errCode := login(func(next string) bool {
		if !atCallback(next) {
			srv.Kill()
			return false
		}
		return true
	})
	if code != "" || (errCode == "" && status < 500) {
		t.Fatalf("callback with Redis down: code issued=%v, error %q, status %d", code != "", errCode, status)
	}
	t.Logf("callback with Redis down: status %d, error %q", status, errCode)
	srv.Restart()
	if code, _, _, errCode := login(nil); code == "" || errCode != "" {
		t.Fatalf("login after the restart: error %q", errCode)
	}
	// The session of the first login survived both restarts.
	v, err := authn.NewVerifier(authn.Config{Issuer: issuer, Audience: []string{resource},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	info, err := v.Verify(context.Background(), tok["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := upstream.NewTransport(upstream.TransportConfig{Server: as}, nil)
	if err != nil {
		t.Fatal(err)
	}
	status, _, err = backendCall(authn.NewContext(context.Background(), info), tr, idp.URL()+"/userinfo")
	if err != nil || status != http.StatusOK {
		t.Fatalf("first login's session after the restarts: %d %v", status, err)
	}
}
