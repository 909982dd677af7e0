// Package upstreamtest provides a throwaway upstream identity provider for
// tests and demos of package upstream, in the manner of net/http/httptest:
// an OpenID Connect provider (discovery, JWKS, authorization code with PKCE
// S256, ID tokens carrying the nonce, rotating refresh tokens) that also
// serves a GitHub-style userinfo endpoint, so it can stand in for an OIDC
// or a plain OAuth 2.0 upstream.
//
// Its authorization endpoint logs in the configured subject without asking
// anything. It is for tests and local development only.
package upstreamtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/mcpauth-go/mcpauth/upstream"
)

// Config configures a Provider. The zero value is usable.
type Config struct {
	// ClientID and ClientSecret are the one client the provider accepts.
	// If empty, "mcpauth-dev" and no secret (a public client).
	ClientID, ClientSecret string
	// Subject is the user every login returns. If empty, "alice".
	Subject string
	// TokenTTL is the lifetime of access and ID tokens. If zero, one hour.
	TokenTTL time.Duration
}

// Provider is a running fake identity provider. It is safe for concurrent
// use.
type Provider struct {
	cfg  Config
	srv  *httptest.Server
	key  *ecdsa.PrivateKey
	kid  string
	jwks []byte

	mu       sync.Mutex
	subject  string
	badNonce bool
	codes    map[string]*grant
	access   map[string]string // access token -> subject
	refresh  map[string]*grant

	tokenRequests   atomic.Int64
	refreshRequests atomic.Int64
}

type grant struct {
	challenge, redirect, nonce, sub string
	expires                         time.Time
}

// NewProvider starts a Provider on a random loopback port. If t is non-nil
// it is closed by t.Cleanup; otherwise the caller must call Close.
func NewProvider(t testing.TB, cfg Config) *Provider {
	if cfg.ClientID == "" {
		cfg.ClientID = "mcpauth-dev"
	}
	if cfg.Subject == "" {
		cfg.Subject = "alice"
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("upstreamtest: " + err.Error())
	}
	jk, err := jwk.Import(key.Public())
	if err != nil {
		panic("upstreamtest: " + err.Error())
	}
	tp, _ := jk.Thumbprint(crypto.SHA256)
	kid := base64.RawURLEncoding.EncodeToString(tp)
	_ = jk.Set(jwk.KeyIDKey, kid)
	_ = jk.Set(jwk.AlgorithmKey, jwa.ES256())
	_ = jk.Set(jwk.KeyUsageKey, "sig")
	set := jwk.NewSet()
	_ = set.AddKey(jk)
	jwks, _ := json.Marshal(set)
	p := &Provider{cfg: cfg, key: key, kid: kid, jwks: jwks, subject: cfg.Subject,
		codes: map[string]*grant{}, access: map[string]string{}, refresh: map[string]*grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("/.well-known/oauth-authorization-server", p.discovery)
	mux.HandleFunc("/authorize", p.authorize)
	mux.HandleFunc("/token", p.token)
	mux.HandleFunc("/userinfo", p.userinfo)
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(p.jwks)
	})
	p.srv = httptest.NewServer(mux)
	if t != nil {
		t.Cleanup(p.Close)
	}
	return p
}

// Close shuts the provider down.
func (p *Provider) Close() { p.srv.Close() }

// URL returns the provider's base URL, which is also its issuer.
func (p *Provider) URL() string { return p.srv.URL }

// Issuer returns the issuer identifier.
func (p *Provider) Issuer() string { return p.srv.URL }

// SetSubject changes the user the next logins return.
func (p *Provider) SetSubject(sub string) {
	p.mu.Lock()
	p.subject = sub
	p.mu.Unlock()
}

// SetBadNonce makes ID tokens carry a wrong nonce (replay tests).
func (p *Provider) SetBadNonce(bad bool) {
	p.mu.Lock()
	p.badNonce = bad
	p.mu.Unlock()
}

// RevokeGrants forgets every access and refresh token issued so far, as
// when the user revokes the application at the provider: a refresh then
// fails with invalid_grant and the userinfo endpoint answers 401. Logins
// after it work as before.
func (p *Provider) RevokeGrants() {
	p.mu.Lock()
	clear(p.access)
	clear(p.refresh)
	p.mu.Unlock()
}

// TokenRequests returns how many token endpoint requests were served.
func (p *Provider) TokenRequests() int64 { return p.tokenRequests.Load() }

// RefreshRequests returns how many refresh_token grants were served.
func (p *Provider) RefreshRequests() int64 { return p.refreshRequests.Load() }

// OIDC returns an upstream.Provider named name that logs in here with
// OpenID Connect.
func (p *Provider) OIDC(name string) upstream.Provider {
	return upstream.Provider{Name: name, Type: upstream.OIDC, Issuer: p.Issuer(),
		ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, Scopes: []string{"openid", "profile"}}
}

// OAuth2 returns an upstream.Provider named name that logs in here as a
// plain OAuth 2.0 provider with a userinfo endpoint (GitHub style).
func (p *Provider) OAuth2(name string) upstream.Provider {
	return upstream.Provider{Name: name, Type: upstream.OAuth2, AuthURL: p.srv.URL + "/authorize",
		TokenURL: p.srv.URL + "/token", UserinfoURL: p.srv.URL + "/userinfo",
		ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret}
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer": p.Issuer(), "authorization_endpoint": p.srv.URL + "/authorize",
		"token_endpoint": p.srv.URL + "/token", "jwks_uri": p.srv.URL + "/jwks",
		"userinfo_endpoint": p.srv.URL + "/userinfo", "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"ES256"},
		"code_challenge_methods_supported": []string{"S256"}, "grant_types_supported": []string{"authorization_code", "refresh_token"},
		"authorization_response_iss_parameter_supported": true,
	})
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != p.cfg.ClientID {
		http.Error(w, "unknown client", http.StatusBadRequest)
		return
	}
	ru, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || ru.Host == "" {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	back := ru.Query()
	back.Set("state", q.Get("state"))
	back.Set("iss", p.Issuer())
	if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		back.Set("error", "invalid_request")
	} else {
		code := randomString()
		p.mu.Lock()
		p.codes[code] = &grant{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"),
			nonce: q.Get("nonce"), sub: p.subject, expires: time.Now().Add(time.Minute)}
		p.mu.Unlock()
		back.Set("code", code)
	}
	ru.RawQuery = back.Encode()
	http.Redirect(w, r, ru.String(), http.StatusFound)
}

func (p *Provider) clientOK(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	} else {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	return id == p.cfg.ClientID && subtle.ConstantTimeCompare([]byte(secret), []byte(p.cfg.ClientSecret)) == 1
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	p.tokenRequests.Add(1)
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	if !p.clientOK(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	var g *grant
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		p.mu.Lock()
		g = p.codes[r.PostForm.Get("code")]
		delete(p.codes, r.PostForm.Get("code"))
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if g == nil || time.Now().After(g.expires) || g.redirect != r.PostForm.Get("redirect_uri") ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
			return
		}
	case "refresh_token":
		p.refreshRequests.Add(1)
		p.mu.Lock()
		g = p.refresh[r.PostForm.Get("refresh_token")]
		delete(p.refresh, r.PostForm.Get("refresh_token"))
		p.mu.Unlock()
		if g == nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
			return
		}
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	at, rt := randomString(), randomString()
	p.mu.Lock()
	p.access[at] = g.sub
	p.refresh[rt] = &grant{sub: g.sub, nonce: g.nonce}
	bad := p.badNonce
	p.mu.Unlock()
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int64(p.cfg.TokenTTL / time.Second), "refresh_token": rt}
	if r.PostForm.Get("grant_type") == "authorization_code" && g.nonce != "" {
		nonce := g.nonce
		if bad {
			nonce = "wrong-" + nonce
		}
		now := time.Now()
		claims, _ := json.Marshal(map[string]any{"iss": p.Issuer(), "sub": g.sub, "aud": p.cfg.ClientID,
			"iat": now.Unix(), "exp": now.Add(p.cfg.TokenTTL).Unix(), "nonce": nonce})
		hdr := jws.NewHeaders()
		_ = hdr.Set(jws.KeyIDKey, p.kid)
		_ = hdr.Set(jws.TypeKey, "JWT")
		idt, err := jws.Sign(claims, jws.WithKey(jwa.ES256(), p.key, jws.WithProtectedHeaders(hdr)))
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
			return
		}
		resp["id_token"] = string(idt)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	p.mu.Lock()
	sub, found := p.access[tok]
	p.mu.Unlock()
	if !ok || !found {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": sub, "sub": sub, "login": sub})
}
