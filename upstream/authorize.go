package upstream

import (
	"context"
	"crypto/subtle"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mcpauth-go/mcpauth/internal/netutil"
)

// authRequest is a validated authorization request.
type authRequest struct {
	client   *Client
	redirect string
	state    string
}

// serveAuthorize handles the authorization endpoint (RFC 6749 §4.1.1 with
// OAuth 2.1 and MCP rules).
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		s.showError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed.")
		return
	}
	if len(r.URL.RawQuery) > maxQueryLen {
		s.showError(w, http.StatusRequestURITooLong, "invalid_request", "The request is too long.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.showError(w, http.StatusBadRequest, "invalid_request", "The request is malformed.")
		return
	}
	q := r.Form
	if err := uniqueParams(q, "resource"); err != nil {
		s.showError(w, http.StatusBadRequest, "invalid_request", "A parameter is repeated or too long.")
		return
	}
	ctx := r.Context()
	clientID := q.Get("client_id")
	if clientID == "" {
		s.showError(w, http.StatusBadRequest, "invalid_request", "The client_id parameter is missing.")
		return
	}
	client, err := s.client(ctx, clientID)
	if err != nil {
		switch {
		case errors.Is(err, errUnknownClient) && !isMetadataURL(clientID) && !s.cfg.DisableDynamicRegistration:
			// Most often a registration nobody signed in with before
			// UnusedClientTTL: the application still holds its client_id
			// and cannot learn from this page that it must register again.
			s.showError(w, http.StatusBadRequest, "invalid_client", "The application is not registered here, or its "+
				"registration expired before anyone signed in with it. Remove the saved sign-in for this server from "+
				"the application and connect again.")
		case errors.Is(err, errUnknownClient):
			s.showError(w, http.StatusBadRequest, "invalid_client", "The application is not registered here.")
		default:
			s.log.LogAttrs(ctx, slog.LevelError, "upstream: authorize: client lookup", slog.Any("err", err))
			s.showError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The service is temporarily unavailable. Try again.")
		}
		return
	}
	redirect, ok := matchRedirect(client.RedirectURIs, q.Get("redirect_uri"))
	if !ok {
		s.showError(w, http.StatusBadRequest, "invalid_request", "The redirect URI is not registered for this application.")
		return
	}
	ar := &authRequest{client: client, redirect: redirect, state: q.Get("state")}
	fail := func(code, desc string) { s.redirectError(w, r, ar, code, desc) }

	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", "response_type must be code")
		return
	}
	if q.Has("request") || q.Has("request_uri") {
		fail("request_not_supported", "request objects are not supported")
		return
	}
	challenge := q.Get("code_challenge")
	switch method := q.Get("code_challenge_method"); {
	case challenge == "":
		fail("invalid_request", "code_challenge is required (PKCE)")
		return
	case method != "S256":
		fail("invalid_request", "code_challenge_method must be S256")
		return
	case !validChallenge(challenge):
		fail("invalid_request", "code_challenge must be a base64url SHA-256 (43 characters)")
		return
	}
	resource, oe := s.resource(q["resource"])
	if oe != nil {
		fail(oe.code, oe.desc)
		return
	}
	scope, oe := s.scope(q.Get("scope"))
	if oe != nil {
		fail(oe.code, oe.desc)
		return
	}
	if up := q.Get("upstream"); up != "" && s.ups[up] == nil {
		fail("invalid_request", "unknown upstream")
		return
	}

	browser := s.browserCookie(w, r)
	p := &Pending{
		ClientID: client.ID, RedirectURI: redirect, State: ar.state, Scope: scope, Resource: resource,
		CodeChallenge: challenge, Upstream: q.Get("upstream"), ConsentKey: hashKey("browser", browser),
		CreatedAt: s.now(),
	}
	loginID := randomToken(32)
	if err := s.store.PutPending(ctx, loginID, p, s.loginTTL); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "upstream: authorize: store", slog.Any("err", err))
		fail("temporarily_unavailable", "the authorization server is temporarily unavailable")
		return
	}
	// A user who already approved this client in this browser goes straight
	// to the upstream when there is nothing to choose.
	if p.Upstream != "" || len(s.upOrder) == 1 {
		ok, err := s.consented(ctx, browser, p)
		switch {
		case err != nil:
			s.log.LogAttrs(ctx, slog.LevelError, "upstream: authorize: store", slog.Any("err", err))
			fail("temporarily_unavailable", "the authorization server is temporarily unavailable")
			return
		case ok:
			up := p.Upstream
			if up == "" {
				up = s.upOrder[0]
			}
			s.startUpstream(w, r, loginID, p, up)
			return
		}
	}
	http.Redirect(w, r, s.endpoint("/consent")+"?login="+url.QueryEscape(loginID), http.StatusSeeOther)
}

// resource applies RFC 8707: one resource from the allow-list, or the only
// configured one when the request names none.
func (s *Server) resource(rs []string) (string, *oauthError) {
	switch {
	case len(rs) == 0 && len(s.cfg.Resources) == 1:
		return s.cfg.Resources[0], nil
	case len(rs) == 0:
		return "", errBad("invalid_target", "resource is required")
	case len(rs) > 1:
		return "", errBad("invalid_target", "exactly one resource is supported")
	case !slices.Contains(s.cfg.Resources, rs[0]):
		return "", errBad("invalid_target", "the resource is not served by this authorization server")
	}
	return rs[0], nil
}

// scope validates a requested scope, defaulting an empty one.
func (s *Server) scope(req string) (string, *oauthError) {
	if strings.TrimSpace(req) == "" {
		return strings.Join(s.cfg.DefaultScopes, " "), nil
	}
	var out []string
	for _, sc := range strings.Fields(req) {
		if (sc == "offline_access" || sc == "openid") && !slices.Contains(s.cfg.ScopesSupported, sc) {
			// Clients add these by habit: refresh tokens are always issued
			// and no ID token is, so they are dropped rather than refused.
			continue
		}
		if !validScopeToken(sc) || (s.cfg.ScopesSupported != nil && !slices.Contains(s.cfg.ScopesSupported, sc)) {
			return "", errBad("invalid_scope", "a requested scope is not supported")
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		out = s.cfg.DefaultScopes
	}
	return strings.Join(out, " "), nil
}

// validChallenge checks a S256 code_challenge: 43 base64url characters.
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for i := 0; i < len(c); i++ {
		if !isUnreservedB64(c[i]) {
			return false
		}
	}
	return true
}

func isUnreservedB64(b byte) bool {
	return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_'
}

// matchRedirect returns the redirect URI to use: the requested one when it
// equals a registered one exactly, or differs from a registered loopback
// URI only by port (RFC 8252 §7.3); the only registered one when none is
// requested.
func matchRedirect(registered []string, req string) (string, bool) {
	if req == "" {
		if len(registered) == 1 {
			return registered[0], true
		}
		return "", false
	}
	if strings.Contains(req, "#") {
		return "", false
	}
	if slices.Contains(registered, req) {
		return req, true
	}
	ru, err := url.Parse(req)
	if err != nil || ru.Scheme != "http" || !netutil.IsLoopbackHost(ru.Hostname()) || ru.User != nil {
		return "", false
	}
	for _, reg := range registered {
		gu, err := url.Parse(reg)
		if err != nil || gu.Scheme != "http" || !netutil.IsLoopbackHost(gu.Hostname()) {
			continue
		}
		if gu.Hostname() == ru.Hostname() && gu.EscapedPath() == ru.EscapedPath() && gu.RawQuery == ru.RawQuery &&
			gu.User == nil && !gu.ForceQuery && !ru.ForceQuery {
			return req, true
		}
	}
	return "", false
}

// redirectError sends an error authorization response (RFC 6749 §4.1.2.1)
// with state and the RFC 9207 iss parameter.
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, ar *authRequest, code, desc string) {
	v := url.Values{"error": {code}, "error_description": {desc}}
	s.redirectClient(w, r, ar.redirect, ar.state, v)
}

// redirectClient redirects to the client's redirect URI with params, state
// and iss added to its query.
func (s *Server) redirectClient(w http.ResponseWriter, r *http.Request, redirect, state string, params url.Values) {
	u, err := url.Parse(redirect)
	if err != nil { // registered URIs were validated; never redirect on doubt
		s.showError(w, http.StatusBadRequest, "invalid_request", "The redirect URI is invalid.")
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if state != "" {
		q.Set("state", state)
	}
	q.Set("iss", s.cfg.Issuer)
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (s *Server) cookieName() string {
	if s.secure {
		return "__Host-mcpauth-browser"
	}
	return "mcpauth-browser"
}

// browserCookie returns this browser's random consent identifier, setting
// one when it has none.
func (s *Server) browserCookie(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(s.cookieName()); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	v := randomToken(32)
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(), Value: v, Path: "/", HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(s.consentTTL.Seconds()),
	})
	return v
}

// consentKey names a user's approval of a client, redirect URI and
// resource in one browser: an approval for one resource never covers
// another.
func (s *Server) consentKey(browser string, p *Pending) string {
	return hashKey("consent", browser+"\x00"+p.ClientID+"\x00"+p.RedirectURI+"\x00"+p.Resource)
}

// consented reports whether this browser's user already approved p: the
// same client, redirect URI and resource, and every scope p asks for (a
// client approved for a narrow scope is asked again for a wider one).
func (s *Server) consented(ctx context.Context, browser string, p *Pending) (bool, error) {
	c, err := s.store.GetConsent(ctx, s.consentKey(browser, p))
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	if c.ClientID != p.ClientID || c.RedirectURI != p.RedirectURI {
		return false, nil
	}
	approved := strings.Fields(c.Scope)
	for _, sc := range strings.Fields(p.Scope) {
		if !slices.Contains(approved, sc) {
			return false, nil
		}
	}
	return true, nil
}

func csrfToken(browser, loginID string) string { return hashKey("csrf", browser+"\x00"+loginID) }

// serveConsent shows (GET) and processes (POST) the consent page.
func (s *Server) serveConsent(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.showConsent(w, r)
	case http.MethodPost:
		s.postConsent(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		s.showError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed.")
	}
}

// loadLogin finds the pending login named by id, checking that this
// browser started it.
func (s *Server) loadLogin(w http.ResponseWriter, r *http.Request, id, browser string) (*Pending, bool) {
	if id == "" || len(id) > 64 {
		s.showError(w, http.StatusBadRequest, "invalid_request", "This login link is invalid or has expired. Start again from the application.")
		return nil, false
	}
	p, err := s.store.GetPending(r.Context(), id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			s.showError(w, http.StatusBadRequest, "invalid_request", "This login link is invalid or has expired. Start again from the application.")
		} else {
			s.log.LogAttrs(r.Context(), slog.LevelError, "upstream: consent: store", slog.Any("err", err))
			s.showError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The service is temporarily unavailable. Try again.")
		}
		return nil, false
	}
	if subtle.ConstantTimeCompare([]byte(p.ConsentKey), []byte(hashKey("browser", browser))) != 1 {
		s.showError(w, http.StatusForbidden, "access_denied", "This login was started in another browser. Start again from the application.")
		return nil, false
	}
	return p, true
}

func (s *Server) showConsent(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.RawQuery) > maxQueryLen {
		s.showError(w, http.StatusRequestURITooLong, "invalid_request", "The request is too long.")
		return
	}
	id := r.URL.Query().Get("login")
	browser := s.browserCookie(w, r)
	p, ok := s.loadLogin(w, r, id, browser)
	if !ok {
		return
	}
	client, err := s.client(r.Context(), p.ClientID)
	if err != nil {
		s.showError(w, http.StatusBadRequest, "invalid_client", "The application is no longer registered.")
		return
	}
	consented, err := s.consented(r.Context(), browser, p)
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "upstream: consent: store", slog.Any("err", err))
		s.showError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The service is temporarily unavailable. Try again.")
		return
	}
	req := ConsentRequest{
		ClientID: client.ID, ClientName: client.Name, ClientURI: client.URI,
		RedirectURI: p.RedirectURI, RedirectHost: redirectHost(p.RedirectURI), LoopbackRedirect: isLoopbackURL(p.RedirectURI),
		Scopes: strings.Fields(p.Scope), Resource: p.Resource, NeedsConsent: !consented,
		Action: s.endpoint("/consent"),
		Form:   map[string]string{"login": id, "csrf": csrfToken(browser, id)},
	}
	for _, n := range s.upOrder {
		if p.Upstream != "" && n != p.Upstream {
			continue
		}
		req.Upstreams = append(req.Upstreams, UpstreamChoice{Name: n, DisplayName: s.ups[n].displayName(), Scopes: s.ups[n].scopes()})
	}
	setPageHeaders(w)
	if s.cfg.ConsentPage != nil {
		s.cfg.ConsentPage(w, r, req)
		return
	}
	_ = consentPage.Execute(w, req)
}

func isLoopbackURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && netutil.IsLoopbackHost(p.Hostname())
}

func redirectHost(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(invalid)"
	}
	if p.Host == "" {
		return p.Scheme + ":"
	}
	return p.Host
}

func (s *Server) postConsent(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil || uniqueParams(r.PostForm) != nil {
		s.showError(w, http.StatusBadRequest, "invalid_request", "The form is malformed.")
		return
	}
	// Cross-site form posts are refused outright when the browser says so.
	if o := r.Header.Get("Origin"); o != "" && o != "null" && o != s.origin {
		s.showError(w, http.StatusForbidden, "access_denied", "Cross-site request refused.")
		return
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		s.showError(w, http.StatusForbidden, "access_denied", "Cross-site request refused.")
		return
	}
	c, err := r.Cookie(s.cookieName())
	if err != nil {
		s.showError(w, http.StatusForbidden, "access_denied", "The consent form has expired. Start again from the application.")
		return
	}
	browser := c.Value
	id := r.PostForm.Get("login")
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(csrfToken(browser, id))) != 1 {
		s.showError(w, http.StatusForbidden, "access_denied", "The consent form has expired. Start again from the application.")
		return
	}
	p, ok := s.loadLogin(w, r, id, browser)
	if !ok {
		return
	}
	ar := &authRequest{redirect: p.RedirectURI, state: p.State}
	if r.PostForm.Get("action") != "approve" {
		if _, err := s.store.ConsumePending(r.Context(), id); err != nil && !errors.Is(err, ErrNotFound) {
			s.log.LogAttrs(r.Context(), slog.LevelError, "upstream: consent: store", slog.Any("err", err))
		}
		s.redirectError(w, r, ar, "access_denied", "the user denied the request")
		return
	}
	up := r.PostForm.Get("upstream")
	if up == "" {
		up = p.Upstream
	}
	if up == "" && len(s.upOrder) == 1 {
		up = s.upOrder[0]
	}
	if s.ups[up] == nil || (p.Upstream != "" && up != p.Upstream) {
		s.showError(w, http.StatusBadRequest, "invalid_request", "Choose a sign-in provider.")
		return
	}
	err = s.store.PutConsent(r.Context(), s.consentKey(browser, p),
		&Consent{ClientID: p.ClientID, RedirectURI: p.RedirectURI, Scope: p.Scope, GrantedAt: s.now()}, s.consentTTL)
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "upstream: consent: store", slog.Any("err", err))
		s.showError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The service is temporarily unavailable. Try again.")
		return
	}
	s.startUpstream(w, r, id, p, up)
}

// startUpstream records the upstream leg (PKCE verifier, nonce) on the
// pending login and redirects the browser to the provider.
func (s *Server) startUpstream(w http.ResponseWriter, r *http.Request, id string, p *Pending, name string) {
	pv := s.ups[name]
	authURL, err := pv.authCodeURL(r.Context(), id, p)
	if err == nil {
		rest := s.loginTTL - s.now().Sub(p.CreatedAt)
		if rest <= 0 {
			err = ErrNotFound
		} else {
			err = s.store.PutPending(r.Context(), id, p, rest)
		}
	}
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "upstream: start upstream login", slog.String("upstream", name), slog.Any("err", err))
		s.redirectError(w, r, &authRequest{redirect: p.RedirectURI, state: p.State}, "temporarily_unavailable",
			"the identity provider is temporarily unavailable")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusFound)
}

// serveCallback completes the upstream login and issues the code.
func (s *Server) serveCallback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		s.showError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed.")
		return
	}
	if len(r.URL.RawQuery) > maxQueryLen {
		s.showError(w, http.StatusRequestURITooLong, "invalid_request", "The request is too long.")
		return
	}
	q := r.URL.Query()
	if uniqueParams(q) != nil {
		s.showError(w, http.StatusBadRequest, "invalid_request", "The request is malformed.")
		return
	}
	ctx := r.Context()
	c, err := r.Cookie(s.cookieName())
	if err != nil {
		s.showError(w, http.StatusBadRequest, "invalid_request", "This login has expired or was started in another browser.")
		return
	}
	id := q.Get("state")
	p, ok := s.loadLogin(w, r, id, c.Value)
	if !ok {
		return
	}
	if _, err := s.store.ConsumePending(ctx, id); err != nil { // single use
		if errors.Is(err, ErrNotFound) {
			s.showError(w, http.StatusBadRequest, "invalid_request", "This login has already been completed.")
		} else {
			s.showError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The service is temporarily unavailable. Try again.")
		}
		return
	}
	ar := &authRequest{redirect: p.RedirectURI, state: p.State}
	pv := s.ups[p.Upstream]
	if pv == nil || p.UpstreamVerifier == "" {
		s.showError(w, http.StatusBadRequest, "invalid_request", "This login was not started.")
		return
	}
	if e := q.Get("error"); e != "" {
		s.log.LogAttrs(ctx, slog.LevelInfo, "upstream: provider refused the login", slog.String("upstream", pv.cfg.Name), slog.String("error", safeName(e)))
		s.redirectError(w, r, ar, "access_denied", "the identity provider did not authorize the login")
		return
	}
	code := q.Get("code")
	if code == "" {
		s.redirectError(w, r, ar, "access_denied", "the identity provider returned no code")
		return
	}
	if err := pv.checkIssuer(ctx, q.Get("iss")); err != nil { // RFC 9207 mix-up defence
		if errors.Is(err, errMixUp) {
			s.log.LogAttrs(ctx, slog.LevelWarn, "upstream: authorization response from the wrong issuer (mix-up)", slog.String("upstream", pv.cfg.Name))
			s.redirectError(w, r, ar, "access_denied", "the identity provider response came from the wrong issuer")
		} else {
			s.log.LogAttrs(ctx, slog.LevelWarn, "upstream: upstream login failed", slog.String("upstream", pv.cfg.Name), slog.Any("err", err))
			s.redirectError(w, r, ar, "temporarily_unavailable", "the identity provider is temporarily unavailable")
		}
		return
	}
	ident, err := pv.exchange(ctx, code, p)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "upstream: upstream login failed", slog.String("upstream", pv.cfg.Name), slog.Any("err", err))
		desc, ecode := "the identity provider login could not be completed", "access_denied"
		if errors.Is(err, errProviderUnavailable) {
			ecode = "temporarily_unavailable"
		}
		s.redirectError(w, r, ar, ecode, desc)
		return
	}
	now := s.now()
	tsid := randomToken(24)
	sess := &Session{TSID: tsid, Upstream: pv.cfg.Name, Subject: ident.subject, AccessToken: ident.token.AccessToken,
		RefreshToken: ident.token.RefreshToken, TokenType: ident.token.TokenType, IDToken: ident.idToken, Expiry: ident.token.Expiry}
	if err := s.store.PutSession(ctx, sess, s.refreshTTL); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "upstream: callback: store", slog.Any("err", err))
		s.redirectError(w, r, ar, "temporarily_unavailable", "the authorization server is temporarily unavailable")
		return
	}
	authCode := randomToken(32)
	rec := &Code{ClientID: p.ClientID, RedirectURI: p.RedirectURI, CodeChallenge: p.CodeChallenge, Scope: p.Scope,
		Resource: p.Resource, Subject: ident.subject, Upstream: pv.cfg.Name, TSID: tsid, FamilyID: randomToken(24), AuthTime: now}
	if err := s.store.PutCode(ctx, hashKey("code", authCode), rec, s.codeTTL); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "upstream: callback: store", slog.Any("err", err))
		s.redirectError(w, r, ar, "temporarily_unavailable", "the authorization server is temporarily unavailable")
		return
	}
	s.redirectClient(w, r, p.RedirectURI, p.State, url.Values{"code": {authCode}})
}

// consentPage is the built-in consent page. The client's name is what the
// client claims: the page says so and shows the verified client_id and
// redirect host beside it.
var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize {{if .ClientName}}{{.ClientName}}{{else}}application{{end}}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}code{word-break:break-all}button{margin:.3rem .3rem .3rem 0;padding:.5rem 1rem}</style>
</head><body>
{{if .NeedsConsent}}
<h1>Authorize <span id="client-name">{{if .ClientName}}{{.ClientName}}{{else}}an application{{end}}</span>?</h1>
<p>An application identifying itself as <strong>{{if .ClientName}}{{.ClientName}}{{else}}(no name){{end}}</strong>
(client ID <code id="client-id">{{.ClientID}}</code>) wants to access <code id="resource">{{.Resource}}</code> on your behalf.</p>
<p>After you sign in you will be sent to <strong id="redirect-host">{{.RedirectHost}}</strong>
(<code id="redirect-uri">{{.RedirectURI}}</code>).
Only continue if you started this from an application you trust and recognise that address.</p>
{{if .LoopbackRedirect}}<p id="loopback-warning"><strong>Warning:</strong> the application receives your authorization on this computer
(<code>{{.RedirectHost}}</code>). Any program running on your computer can claim that address and name: approve only if you started this sign-in yourself just now.</p>{{end}}
{{if .Scopes}}<p>Requested permissions:</p><ul id="scopes">{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
{{range .Upstreams}}{{if .Scopes}}<p>Signing in with {{.DisplayName}} lets the application use your {{.DisplayName}} account with these permissions:</p>
<ul class="upstream-scopes" data-upstream="{{.Name}}">{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}{{end}}
{{else}}
<h1>Sign in</h1>
<p>Continue to <strong id="redirect-host">{{.RedirectHost}}</strong> (client ID <code id="client-id">{{.ClientID}}</code>).</p>
{{end}}
<form id="consent" method="post" action="{{.Action}}">
{{range $k, $v := .Form}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<input type="hidden" name="action" value="approve">
{{range .Upstreams}}<button type="submit" name="upstream" value="{{.Name}}">{{if $.NeedsConsent}}Approve and sign in with {{.DisplayName}}{{else}}Sign in with {{.DisplayName}}{{end}}</button>
{{end}}</form>
<form id="deny" method="post" action="{{.Action}}">
{{range $k, $v := .Form}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<input type="hidden" name="action" value="deny"><button type="submit">Deny</button></form>
</body></html>
`))
