package idptest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Grant types and token types of RFC 6749 and RFC 8693.
const (
	grantTokenExchange  = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess     = "urn:ietf:params:oauth:token-type:access_token"
	tokenTypeJWT        = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeIDToken    = "urn:ietf:params:oauth:token-type:id_token"
	authCodeLifetime    = 10 * time.Minute
	defaultCodeSubject  = "user"
	minVerifierLength   = 43
	maxVerifierLength   = 128
	maxChallengeLength  = 128
	codeChallengeMethod = "S256"
)

// authCode is an issued authorization code awaiting redemption.
type authCode struct {
	clientID    string
	redirectURI string // as sent to /authorize; "" if it was omitted there
	challenge   string
	scope       string
	resources   []string
	sub         string
	expires     time.Time
}

// grant is what a refresh token stands for.
type grant struct {
	clientID string
	sub      string
	scope    string
	aud      []string
}

// oauthErr is an RFC 6749 §5.2 error response.
type oauthErr struct {
	status int
	code   string
	desc   string
}

func (e *oauthErr) Error() string { return e.code + ": " + e.desc }

func errInvalidClient(desc string) error {
	return &oauthErr{http.StatusUnauthorized, "invalid_client", desc}
}

func errBadRequest(code, desc string) error {
	return &oauthErr{http.StatusBadRequest, code, desc}
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="idptest"`)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeClientError(w http.ResponseWriter, err error) {
	var oe *oauthErr
	if !errors.As(err, &oe) {
		oe = &oauthErr{http.StatusInternalServerError, "server_error", "internal error"}
	}
	oauthError(w, oe.status, oe.code, oe.desc)
}

// authenticateClient identifies the client of a token or introspection
// request by client_secret_basic, client_secret_post or (public clients)
// client_id alone. It returns nil, nil when the request names no client.
func (s *Server) authenticateClient(r *http.Request) (*Client, error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, errInvalidClient("malformed basic credentials")
		}
		if r.PostForm.Has("client_secret") {
			return nil, errBadRequest("invalid_request", "more than one client authentication method")
		}
		if formID := r.PostForm.Get("client_id"); formID != "" && formID != id {
			return nil, errBadRequest("invalid_request", "client_id does not match the authenticated client")
		}
	} else {
		id = r.PostForm.Get("client_id")
		secret = r.PostForm.Get("client_secret")
		if id == "" {
			if secret != "" {
				return nil, errInvalidClient("client_secret without client_id")
			}
			return nil, nil
		}
	}
	c, ok := s.clients[id]
	if !ok {
		return nil, errInvalidClient("unknown client")
	}
	if c.Secret == "" {
		if secret != "" {
			return nil, errInvalidClient("public client presented a secret")
		}
		return &c, nil
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		return nil, errInvalidClient("client authentication failed")
	}
	return &c, nil
}

// serveToken is the RFC 6749 token endpoint.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return
	}
	s.record(EndpointToken, r)
	client, err := s.authenticateClient(r)
	if err != nil {
		writeClientError(w, err)
		return
	}
	var resp map[string]any
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "client_credentials":
		resp, err = s.clientCredentials(r.PostForm, client)
	case "authorization_code":
		resp, err = s.authorizationCode(r.PostForm, client)
	case "refresh_token":
		resp, err = s.refreshToken(r.PostForm, client)
	case grantTokenExchange:
		resp, err = s.tokenExchange(r.PostForm, client)
	case "":
		err = errBadRequest("invalid_request", "missing grant_type")
	default:
		err = errBadRequest("unsupported_grant_type", "unsupported grant_type")
	}
	if err != nil {
		writeClientError(w, err)
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// requestedAudience returns the audience and resource parameters, in order.
func requestedAudience(form url.Values) ([]string, error) {
	if err := checkResources(form["resource"]); err != nil {
		return nil, err
	}
	return append(slices.Clone(form["audience"]), form["resource"]...), nil
}

// checkResources enforces RFC 8707 §2: a resource is an absolute URI
// without a fragment.
func checkResources(rs []string) error {
	for _, r := range rs {
		u, err := url.Parse(r)
		if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || strings.HasSuffix(r, "#") {
			return errBadRequest("invalid_target", "resource must be an absolute URI without a fragment")
		}
	}
	return nil
}

func (s *Server) issue(sub string, client *Client, scope string, aud []string, extra map[string]any) (map[string]any, error) {
	claims := map[string]any{"sub": sub}
	if client != nil {
		claims["client_id"] = client.ID
	}
	if scope != "" {
		claims["scope"] = scope
	}
	switch len(aud) {
	case 0:
	case 1:
		claims["aud"] = aud[0]
	default:
		claims["aud"] = aud
	}
	for k, v := range extra {
		claims[k] = v
	}
	tok, err := s.sign(TokenOptions{Claims: claims}, s.xttl)
	if err != nil {
		return nil, err
	}
	resp := map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int64(s.xttl / time.Second),
	}
	if scope != "" {
		resp["scope"] = scope
	}
	return resp, nil
}

func (s *Server) newRefreshToken(g *grant) string {
	rt := randomString(32)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh[tokenHash(rt)] = g
	return rt
}

func (s *Server) clientCredentials(form url.Values, client *Client) (map[string]any, error) {
	if client == nil {
		return nil, errInvalidClient("client authentication required")
	}
	if client.Secret == "" {
		return nil, errBadRequest("unauthorized_client", "public clients cannot use client_credentials")
	}
	aud, err := requestedAudience(form)
	if err != nil {
		return nil, err
	}
	resp, err := s.issue(client.ID, client, form.Get("scope"), s.audienceOr(aud), nil)
	return resp, err
}

// audienceOr returns aud, or Config.Audience when aud is empty.
func (s *Server) audienceOr(aud []string) []string {
	if len(aud) > 0 {
		return aud
	}
	return s.cfg.Audience
}

func (s *Server) authorizationCode(form url.Values, client *Client) (map[string]any, error) {
	if client == nil {
		return nil, errInvalidClient("client_id required")
	}
	code := form.Get("code")
	if code == "" {
		return nil, errBadRequest("invalid_request", "missing code")
	}
	h := tokenHash(code)
	s.mu.Lock()
	ac := s.codes[h]
	delete(s.codes, h) // single use, even when redemption fails
	s.mu.Unlock()
	if ac == nil || !s.now().Before(ac.expires) {
		return nil, errBadRequest("invalid_grant", "invalid, used or expired authorization code")
	}
	if ac.clientID != client.ID {
		return nil, errBadRequest("invalid_grant", "code was issued to another client")
	}
	if ac.redirectURI != "" && form.Get("redirect_uri") != ac.redirectURI {
		return nil, errBadRequest("invalid_grant", "redirect_uri does not match")
	}
	verifier := form.Get("code_verifier")
	if len(verifier) < minVerifierLength || len(verifier) > maxVerifierLength {
		return nil, errBadRequest("invalid_grant", "missing or malformed code_verifier")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(ac.challenge)) != 1 {
		return nil, errBadRequest("invalid_grant", "PKCE verification failed")
	}
	aud := ac.resources
	if req := form["resource"]; len(req) > 0 {
		for _, r := range req {
			if len(ac.resources) > 0 && !slices.Contains(ac.resources, r) {
				return nil, errBadRequest("invalid_target", "resource was not authorized")
			}
		}
		aud = req
	}
	aud = s.audienceOr(aud)
	resp, err := s.issue(ac.sub, client, ac.scope, aud, nil)
	if err != nil {
		return nil, err
	}
	resp["refresh_token"] = s.newRefreshToken(&grant{clientID: client.ID, sub: ac.sub, scope: ac.scope, aud: aud})
	return resp, nil
}

func (s *Server) refreshToken(form url.Values, client *Client) (map[string]any, error) {
	if client == nil {
		return nil, errInvalidClient("client_id required")
	}
	rt := form.Get("refresh_token")
	if rt == "" {
		return nil, errBadRequest("invalid_request", "missing refresh_token")
	}
	h := tokenHash(rt)
	s.mu.Lock()
	g := s.refresh[h]
	if g != nil && g.clientID == client.ID {
		delete(s.refresh, h) // rotation: each refresh token works once
	}
	revoked := s.revoked[h]
	s.mu.Unlock()
	if g == nil || revoked {
		return nil, errBadRequest("invalid_grant", "invalid, used or revoked refresh token")
	}
	if g.clientID != client.ID {
		return nil, errBadRequest("invalid_grant", "refresh token was issued to another client")
	}
	scope := g.scope
	if req := form.Get("scope"); req != "" {
		granted := strings.Fields(g.scope)
		for _, sc := range strings.Fields(req) {
			if !slices.Contains(granted, sc) {
				return nil, errBadRequest("invalid_scope", "scope exceeds the original grant")
			}
		}
		scope = req
	}
	aud := g.aud
	if req := form["resource"]; len(req) > 0 {
		if err := checkResources(req); err != nil {
			return nil, err
		}
		for _, r := range req {
			if len(g.aud) > 0 && !slices.Contains(g.aud, r) {
				return nil, errBadRequest("invalid_target", "resource exceeds the original grant")
			}
		}
		aud = req
	}
	resp, err := s.issue(g.sub, client, scope, aud, nil)
	if err != nil {
		return nil, err
	}
	resp["refresh_token"] = s.newRefreshToken(&grant{clientID: client.ID, sub: g.sub, scope: g.scope, aud: g.aud})
	return resp, nil
}

func validSubjectType(t string) bool {
	return t == tokenTypeAccess || t == tokenTypeJWT || t == tokenTypeIDToken
}

// tokenExchange implements RFC 8693. Client authentication is optional (a
// request naming no client is served anonymously), as RFC 8693 §2.1 allows.
func (s *Server) tokenExchange(form url.Values, client *Client) (map[string]any, error) {
	subject := form.Get("subject_token")
	if subject == "" {
		return nil, errBadRequest("invalid_request", "missing subject_token")
	}
	if !validSubjectType(form.Get("subject_token_type")) {
		return nil, errBadRequest("invalid_request", "missing or unsupported subject_token_type")
	}
	if rt := form.Get("requested_token_type"); rt != "" && rt != tokenTypeAccess && rt != tokenTypeJWT {
		return nil, errBadRequest("invalid_request", "unsupported requested_token_type")
	}
	sc, ok := s.lookup(subject)
	if !ok {
		return nil, errBadRequest("invalid_grant", "subject_token is invalid, expired or revoked")
	}
	sub, _ := sc["sub"].(string)
	if sub == "" {
		return nil, errBadRequest("invalid_grant", "subject_token has no sub")
	}
	extra := map[string]any{}
	if actor := form.Get("actor_token"); actor != "" {
		if !validSubjectType(form.Get("actor_token_type")) {
			return nil, errBadRequest("invalid_request", "missing or unsupported actor_token_type")
		}
		ac, ok := s.lookup(actor)
		if !ok {
			return nil, errBadRequest("invalid_grant", "actor_token is invalid, expired or revoked")
		}
		act := map[string]any{"sub": ac["sub"]}
		if prior, ok := sc["act"]; ok {
			act["act"] = prior // RFC 8693 §4.1: the chain of delegation
		}
		extra["act"] = act
	} else if form.Has("actor_token_type") {
		return nil, errBadRequest("invalid_request", "actor_token_type without actor_token")
	}
	scope := form.Get("scope")
	if scope == "" {
		scope, _ = sc["scope"].(string)
	}
	aud, err := requestedAudience(form)
	if err != nil {
		return nil, err
	}
	resp, err := s.issue(sub, client, scope, s.audienceOr(aud), extra)
	if err != nil {
		return nil, err
	}
	resp["issued_token_type"] = tokenTypeAccess
	return resp, nil
}

// serveAuthorize is an authorization endpoint that approves every valid
// request at once: OAuth 2.1 authorization code with PKCE S256 only. The
// login_hint parameter, if any, becomes the subject (default "user").
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed request", http.StatusBadRequest)
		return
	}
	s.record(EndpointAuthorize, r)
	q := r.Form
	client, ok := s.clients[q.Get("client_id")]
	if !ok {
		// Never redirect to an unverified URI (RFC 6749 §4.1.2.1).
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	}
	redirect := q.Get("redirect_uri")
	target := redirect
	switch {
	case redirect == "" && len(client.RedirectURIs) == 1:
		target = client.RedirectURIs[0]
	case redirect == "" || !slices.Contains(client.RedirectURIs, redirect):
		http.Error(w, "redirect_uri is not registered for this client", http.StatusBadRequest)
		return
	}
	fail := func(code, desc string) {
		s.redirect(w, r, target, url.Values{"error": {code}, "error_description": {desc}, "state": q["state"]})
	}
	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", "only response_type=code is supported")
		return
	}
	challenge := q.Get("code_challenge")
	if challenge == "" || len(challenge) > maxChallengeLength {
		fail("invalid_request", "code_challenge is required (PKCE)")
		return
	}
	if q.Get("code_challenge_method") != codeChallengeMethod {
		fail("invalid_request", "code_challenge_method must be S256")
		return
	}
	if err := checkResources(q["resource"]); err != nil {
		fail("invalid_target", "resource must be an absolute URI without a fragment")
		return
	}
	sub := q.Get("login_hint")
	if sub == "" {
		sub = defaultCodeSubject
	}
	code := randomString(32)
	s.mu.Lock()
	s.codes[tokenHash(code)] = &authCode{
		clientID:    client.ID,
		redirectURI: redirect,
		challenge:   challenge,
		scope:       q.Get("scope"),
		resources:   slices.Clone(q["resource"]),
		sub:         sub,
		expires:     s.now().Add(authCodeLifetime),
	}
	s.mu.Unlock()
	s.redirect(w, r, target, url.Values{"code": {code}, "state": q["state"]})
}

// redirect sends the authorization response to target with params and the
// RFC 9207 iss parameter.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, target string, params url.Values) {
	u, err := url.Parse(target)
	if err != nil {
		http.Error(w, "invalid redirect_uri", http.StatusBadRequest)
		return
	}
	q := u.Query()
	for k, v := range params {
		if len(v) > 0 && v[0] != "" {
			q[k] = v[:1]
		}
	}
	q.Set("iss", s.issuer)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}
