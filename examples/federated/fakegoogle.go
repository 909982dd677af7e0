package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/tokenexchange"
)

// The workload identity pool provider the fake STS serves. Real values are
// a project number, a pool ID and a provider ID of your Google Cloud project.
const (
	projectNumber = "123456789012"
	poolID        = "mcp-pool"
	providerID    = "corp-idp"
	// requiredGroup is the provider's attribute condition: only members of
	// this group (groups claim) are federated, as a CEL condition such as
	// `"gcp-users" in assertion.groups` would do.
	requiredGroup = "gcp-users"
	// federatedTTL is the lifetime of the tokens the fake STS issues.
	federatedTTL = time.Hour
)

// fakeGoogle plays Google's Security Token Service (POST /v1/token) and a
// Google API (GET /v1/whoami) on one loopback server. The STS behaves as
// the real one does on the wire for an OIDC provider: an RFC 8693 form with
// no client authentication, the audience naming the pool provider, a
// subject token it verifies against the trusted issuer's keys and allowed
// audiences, an attribute mapping google.subject = assertion.sub, an
// attribute condition, and an opaque access token back.
type fakeGoogle struct {
	url      string
	provider string // //iam.googleapis.com/projects/…/providers/…: the STS audience
	pool     string // principal://iam.googleapis.com/projects/…/workloadIdentityPools/…
	verifier *authn.Verifier
	srv      *http.Server
	logger   *slog.Logger

	mu     sync.Mutex
	issued map[string]federated       // federated access token -> what it stands for
	seen   map[[sha256.Size]byte]bool // SHA-256 of every bearer token the API was shown
}

// federated is what a federated token stands for.
type federated struct {
	principal string
	scopes    []string
	expiry    time.Time
}

// startFakeGoogle starts the fake, trusting tokens from issuer whose
// audience is one of allowedAudiences (the provider's configuration).
func startFakeGoogle(issuer string, allowedAudiences []string, logger *slog.Logger) (*fakeGoogle, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	v, err := authn.NewVerifier(authn.Config{Issuer: issuer, Audience: allowedAudiences, Logger: logger})
	if err != nil {
		ln.Close()
		return nil, err
	}
	pool := "//iam.googleapis.com/projects/" + projectNumber + "/locations/global/workloadIdentityPools/" + poolID
	g := &fakeGoogle{
		url:      "http://" + ln.Addr().String(),
		provider: pool + "/providers/" + providerID,
		pool:     "principal:" + pool,
		verifier: v,
		logger:   logger,
		issued:   map[string]federated{},
		seen:     map[[sha256.Size]byte]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/token", g.serveToken)
	mux.HandleFunc("GET /v1/whoami", g.serveWhoami)
	g.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go g.srv.Serve(ln)
	return g, nil
}

func (g *fakeGoogle) close() {
	g.srv.Close()
	g.verifier.Close()
}

// tokenURL is the fake STS token endpoint (the real one is
// google.STSTokenURL).
func (g *fakeGoogle) tokenURL() string { return g.url + "/v1/token" }

// oauthError writes an RFC 6749 §5.2 error.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (g *fakeGoogle) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		// The STS authenticates the subject token, not a client: a client
		// credential here is a misconfiguration.
		oauthError(w, http.StatusBadRequest, "invalid_request", "client authentication is not accepted")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return
	}
	f := r.PostForm
	switch {
	case f.Get("grant_type") != tokenexchange.GrantType:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only token exchange is supported")
		return
	case f.Get("audience") != g.provider:
		oauthError(w, http.StatusBadRequest, "invalid_target", "the audience is not a provider of this pool")
		return
	case f.Get("requested_token_type") != tokenexchange.TokenTypeAccessToken:
		oauthError(w, http.StatusBadRequest, "invalid_request", "requested_token_type must be access_token")
		return
	case f.Get("subject_token_type") != tokenexchange.TokenTypeJWT && f.Get("subject_token_type") != tokenexchange.TokenTypeIDToken:
		oauthError(w, http.StatusBadRequest, "invalid_request", "subject_token_type must be jwt or id_token for an OIDC provider")
		return
	case f.Get("scope") == "":
		oauthError(w, http.StatusBadRequest, "invalid_scope", "a scope is required")
		return
	}
	info, err := g.verifier.Verify(r.Context(), f.Get("subject_token"))
	if err != nil {
		g.logger.Info("fake STS: subject token rejected", "cause", err)
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the subject token is invalid for this provider")
		return
	}
	if !slices.Contains(claimStrings(info.Claims["groups"]), requiredGroup) {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the given credential is rejected by the attribute condition")
		return
	}
	fed := federated{
		principal: g.pool + "/subject/" + info.Subject, // attribute mapping: google.subject = assertion.sub
		scopes:    strings.Fields(f.Get("scope")),
		expiry:    time.Now().Add(federatedTTL),
	}
	tok := "fed." + rand.Text() + rand.Text()
	g.mu.Lock()
	g.issued[tok] = fed
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{
		"access_token":      tok,
		"issued_token_type": tokenexchange.TokenTypeAccessToken,
		"token_type":        "Bearer",
		"expires_in":        int(federatedTTL / time.Second),
	})
}

// whoami is the fake API's answer.
type whoami struct {
	Principal string   `json:"principal"`
	Scopes    []string `json:"scopes"`
}

func (g *fakeGoogle) serveWhoami(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	g.mu.Lock()
	if ok {
		g.seen[sha256.Sum256([]byte(tok))] = true
	}
	fed, known := g.issued[tok]
	g.mu.Unlock()
	if !ok || !known || time.Now().After(fed.expiry) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(whoami{Principal: fed.principal, Scopes: fed.scopes})
}

// wasShown reports whether the API was ever sent token.
func (g *fakeGoogle) wasShown(token string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seen[sha256.Sum256([]byte(token))]
}

// apiCalls reports how many distinct bearer tokens the API was shown.
func (g *fakeGoogle) apiCalls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}

// claimStrings reads a claim that is a string or a list of strings.
func claimStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var s []string
		for _, e := range v {
			if e, ok := e.(string); ok {
				s = append(s, e)
			}
		}
		return s
	}
	return nil
}
