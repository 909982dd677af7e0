package upstream

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

var (
	errInvalidClient = &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication failed"}
	errInvalidGrant  = errBad("invalid_grant", "the grant is invalid, expired, already used or revoked")
)

// readForm parses a bounded application/x-www-form-urlencoded POST body.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return nil, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "use POST"}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errBad("invalid_request", "the body must be application/x-www-form-urlencoded")
	}
	if r.URL.RawQuery != "" {
		return nil, errBad("invalid_request", "parameters must be in the body, not the URL")
	}
	if len(r.Header.Get("Authorization")) > maxParamLen {
		return nil, errBad("invalid_request", "the Authorization header is too long")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, errBad("invalid_request", "the body is malformed or too large")
	}
	if err := uniqueParams(r.PostForm, "resource"); err != nil {
		return nil, err
	}
	return r.PostForm, nil
}

// authenticateClient applies the client authentication method the request
// uses (none, client_secret_basic, client_secret_post, private_key_jwt),
// which must be the one the client registered.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (*Client, error) {
	var id, secret, method string
	if user, pass, ok := r.BasicAuth(); ok {
		uid, err1 := url.QueryUnescape(user)
		upw, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil || form.Has("client_secret") || form.Has("client_assertion") {
			return nil, errInvalidClient
		}
		id, secret, method = uid, upw, "client_secret_basic"
		if f := form.Get("client_id"); f != "" && f != id {
			return nil, errInvalidClient
		}
	} else if r.Header.Get("Authorization") != "" {
		return nil, errInvalidClient
	} else if form.Has("client_assertion") || form.Has("client_assertion_type") {
		if form.Get("client_assertion_type") != clientAssertionType || form.Has("client_secret") {
			return nil, errInvalidClient
		}
		method = "private_key_jwt"
		id = form.Get("client_id")
		if id == "" {
			id = unverifiedIssuer(form.Get("client_assertion"))
		}
	} else if form.Has("client_secret") {
		id, secret, method = form.Get("client_id"), form.Get("client_secret"), "client_secret_post"
	} else {
		id, method = form.Get("client_id"), "none"
	}
	if id == "" {
		return nil, errInvalidClient
	}
	client, err := s.client(ctx, id)
	if err != nil {
		if errors.Is(err, errUnknownClient) {
			return nil, errInvalidClient
		}
		return nil, err
	}
	registered := client.TokenEndpointAuthMethod
	if registered == "" {
		registered = "none"
	}
	if registered == "none" && method == "client_secret_basic" && secret == "" {
		method = "none" // a public client sending "id:" in Basic (a common client quirk)
	}
	secretMethod := func(m string) bool { return m == "client_secret_basic" || m == "client_secret_post" }
	if registered != method && !(secretMethod(registered) && secretMethod(method)) {
		return nil, errInvalidClient
	}
	switch method {
	case "client_secret_basic", "client_secret_post":
		if client.SecretHash == "" || subtle.ConstantTimeCompare([]byte(HashClientSecret(secret)), []byte(client.SecretHash)) != 1 {
			return nil, errInvalidClient
		}
	case "private_key_jwt":
		if err := s.verifyAssertion(ctx, client, form.Get("client_assertion")); err != nil {
			if errors.Is(err, ErrUnavailable) {
				return nil, err
			}
			s.log.LogAttrs(ctx, slog.LevelInfo, "upstream: client assertion rejected", slog.String("client_id", client.ID), slog.Any("err", err))
			return nil, errInvalidClient
		}
	}
	return client, nil
}

// unverifiedIssuer reads iss from a JWT without verifying it (only to find
// the client whose keys then verify it).
func unverifiedIssuer(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(tok) > 16<<10 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	_ = json.Unmarshal(b, &c)
	return c.Iss
}

// verifyAssertion checks an RFC 7523 client assertion: signed by one of the
// client's keys with an asymmetric algorithm, iss = sub = client_id, aud
// naming this server, unexpired, short-lived, jti not seen before.
func (s *Server) verifyAssertion(ctx context.Context, client *Client, assertion string) error {
	if assertion == "" || len(assertion) > 16<<10 {
		return errors.New("upstream: missing or oversize client assertion")
	}
	raw := client.JWKS
	if len(raw) == 0 && client.JWKSURI != "" {
		b, _, err := s.cimd.fetch(ctx, client.JWKSURI)
		if err != nil {
			return err
		}
		raw = b
	}
	set, err := jwk.Parse(raw)
	if err != nil || set.Len() == 0 {
		return errors.New("upstream: the client has no usable keys")
	}
	for i := range set.Len() {
		k, _ := set.Key(i)
		if k.KeyType().String() == "oct" {
			return errors.New("upstream: symmetric client keys are refused")
		}
	}
	msg, err := jws.Parse([]byte(assertion))
	if err != nil || len(msg.Signatures()) != 1 {
		return errors.New("upstream: malformed client assertion")
	}
	alg, _ := msg.Signatures()[0].ProtectedHeaders().Algorithm()
	if a := alg.String(); !slices.Contains([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}, a) {
		return errors.New("upstream: client assertion algorithm refused")
	}
	now := s.now()
	tok, err := jwt.Parse([]byte(assertion),
		jwt.WithKeySet(set, jws.WithInferAlgorithmFromKey(true), jws.WithRequireKid(false)),
		jwt.WithIssuer(client.ID), jwt.WithSubject(client.ID),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })), jwt.WithAcceptableSkew(time.Minute),
		jwt.WithRequiredClaim("exp"), jwt.WithRequiredClaim("jti"))
	if err != nil {
		return errors.New("upstream: client assertion invalid")
	}
	aud, _ := tok.Audience()
	if !slices.Contains(aud, s.cfg.Issuer) && !slices.Contains(aud, s.endpoint("/token")) {
		return errors.New("upstream: client assertion audience does not name this server")
	}
	exp, _ := tok.Expiration()
	if exp.Sub(now) > 10*time.Minute {
		return errors.New("upstream: client assertion lives too long")
	}
	jti, _ := tok.JwtID()
	if jti == "" {
		return errors.New("upstream: client assertion has an empty jti")
	}
	fresh, err := s.useJTI(ctx, client.ID, jti, exp, now)
	if err != nil {
		return err
	}
	if !fresh {
		return errors.New("upstream: client assertion replayed")
	}
	return nil
}

// jtiSlack is how long past its exp a client assertion's jti is
// remembered: this replica accepts an assertion up to a minute after its
// exp (the allowed clock skew), and another replica's clock may be up to a
// minute behind this one's.
const jtiSlack = 2 * time.Minute

// useJTI records a client assertion's jti (RFC 7523 §3) and reports
// whether it was its first use: in the Store when it is a ReplayGuard (so
// across replicas), else in this process. A failed check is an error
// wrapping ErrUnavailable, which the token endpoint answers with 503
// temporarily_unavailable: the assertion is refused, not accepted
// unchecked, and not called invalid (invalid_client would tell the client
// its credentials are wrong, when a retry with a new assertion is all it
// needs).
func (s *Server) useJTI(ctx context.Context, clientID, jti string, exp, now time.Time) (bool, error) {
	until := exp.Add(jtiSlack)
	if s.replay == nil {
		return s.jti.use(clientID+"\x00"+jti, until, now), nil
	}
	// until is after now + 1 minute: the exp check allowed a minute of
	// skew at most.
	fresh, err := s.replay.UseOnce(ctx, hashKey("client-assertion-jti", clientID+"\x00"+jti), until.Sub(now))
	switch {
	case err != nil && errors.Is(err, ErrUnavailable):
		return false, err // the store's message names the operation
	case err != nil:
		return false, fmt.Errorf("%w: client assertion replay check: %w", ErrUnavailable, err)
	}
	return fresh, nil
}

// clientPost begins the token and revocation endpoints: it answers a CORS
// preflight, sets the CORS headers, and reads the POSTed form and
// authenticates its client. If it returns false, it has written the
// answer.
func (s *Server) clientPost(w http.ResponseWriter, r *http.Request) (url.Values, *Client, bool) {
	if r.Method == http.MethodOptions {
		writeCORS(w)
		w.WriteHeader(http.StatusNoContent)
		return nil, nil, false
	}
	writeCORS(w)
	form, err := readForm(w, r)
	if err != nil {
		s.writeErr(w, r, err)
		return nil, nil, false
	}
	client, err := s.authenticateClient(r.Context(), r, form)
	if err != nil {
		s.writeErr(w, r, err)
		return nil, nil, false
	}
	return form, client, true
}

// tokenResponse is the RFC 6749 §5.1 success response.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// serveToken is the token endpoint: authorization_code and refresh_token.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	form, client, ok := s.clientPost(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	var resp *tokenResponse
	var err error
	switch form.Get("grant_type") {
	case "authorization_code":
		resp, err = s.codeGrant(ctx, client, form)
	case "refresh_token":
		resp, err = s.refreshGrant(ctx, client, form)
	case "":
		err = errBad("invalid_request", "grant_type is required")
	default:
		err = errBad("unsupported_grant_type", "only authorization_code and refresh_token are supported")
	}
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	_ = json.NewEncoder(w).Encode(resp)
}

// checkVerifier applies RFC 7636 §4.1 and §4.6 (S256 only).
func checkVerifier(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for i := 0; i < len(verifier); i++ {
		c := verifier[i]
		if !isUnreservedB64(c) && c != '.' && c != '~' {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	var enc [43]byte
	base64.RawURLEncoding.Encode(enc[:], sum[:])
	return subtle.ConstantTimeCompare(enc[:], []byte(challenge)) == 1
}

func (s *Server) codeGrant(ctx context.Context, client *Client, form url.Values) (*tokenResponse, error) {
	code := form.Get("code")
	if code == "" || len(code) > 256 {
		return nil, errBad("invalid_request", "code is required")
	}
	rec, err := s.store.ConsumeCode(ctx, hashKey("code", code))
	switch {
	case errors.Is(err, ErrConsumed):
		// A replayed code: revoke everything the first redemption issued.
		if rec != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "upstream: authorization code replayed; revoking its grant", slog.String("client_id", rec.ClientID))
			s.revokeGrant(ctx, rec.FamilyID, rec.TSID)
		}
		return nil, errInvalidGrant
	case err != nil:
		return nil, storeErr(err, errInvalidGrant)
	}
	if rec.ClientID != client.ID {
		return nil, errInvalidGrant
	}
	if ru := form.Get("redirect_uri"); ru != "" && ru != rec.RedirectURI {
		return nil, errBad("invalid_grant", "redirect_uri does not match the authorization request")
	}
	if !checkVerifier(form.Get("code_verifier"), rec.CodeChallenge) {
		return nil, errBad("invalid_grant", "code_verifier does not match the code_challenge")
	}
	if res := form["resource"]; len(res) > 0 && (len(res) != 1 || res[0] != rec.Resource) {
		return nil, errBad("invalid_target", "resource does not match the authorization request")
	}
	now := s.now()
	if err := s.keepClient(ctx, client, now); err != nil {
		return nil, err
	}
	rt := rec.FamilyID + "." + randomToken(32)
	fam := &Family{ID: rec.FamilyID, ClientID: client.ID, Subject: rec.Subject, Upstream: rec.Upstream, Scope: rec.Scope,
		Resource: rec.Resource, TSID: rec.TSID, Current: hashKey("refresh", rt), CreatedAt: now, ExpiresAt: now.Add(s.refreshTTL)}
	if err := s.store.PutFamily(ctx, fam, s.refreshTTL); err != nil {
		return nil, err
	}
	at, err := s.accessToken(client.ID, rec.Subject, rec.Scope, rec.Resource, rec.TSID, now)
	if err != nil {
		return nil, err
	}
	return &tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(s.accessTTL / time.Second), RefreshToken: rt, Scope: rec.Scope}, nil
}

// keepClient records a completed login on a dynamically registered client,
// so that the Store keeps it for ClientTTL from now (and at least as long
// as the refresh-token family this login gets) instead of UnusedClientTTL
// from its registration. Static and metadata-document clients are not
// stored registrations. It writes on every login, also when ClientTTL is
// zero: a LoggedInAt does not say the record is stored without a TTL (a
// login under an earlier, nonzero ClientTTL stored it with one).
func (s *Server) keepClient(ctx context.Context, c *Client, now time.Time) error {
	if c.MetadataDocument || s.static[c.ID] != nil {
		return nil
	}
	var ttl time.Duration // forever
	if s.cfg.ClientTTL > 0 {
		ttl = max(s.cfg.ClientTTL, s.refreshTTL)
	}
	kept := cloneClient(c)
	kept.LoggedInAt = now
	return s.store.PutClient(ctx, kept, ttl)
}

// revokeGrant deletes a refresh family and its upstream session. Errors
// are logged: revocation is best effort on an already failing request.
func (s *Server) revokeGrant(ctx context.Context, familyID, tsid string) {
	ctx = context.WithoutCancel(ctx)
	if familyID != "" {
		if err := s.store.DeleteFamily(ctx, familyID); err != nil {
			s.log.LogAttrs(ctx, slog.LevelError, "upstream: revoke refresh family", slog.Any("err", err))
		}
	}
	if tsid != "" {
		if err := s.store.DeleteSession(ctx, tsid); err != nil {
			s.log.LogAttrs(ctx, slog.LevelError, "upstream: revoke session", slog.Any("err", err))
		}
	}
}

func (s *Server) refreshGrant(ctx context.Context, client *Client, form url.Values) (*tokenResponse, error) {
	rt := form.Get("refresh_token")
	famID, _, ok := strings.Cut(rt, ".")
	if rt == "" || !ok || len(rt) > 256 {
		return nil, errBad("invalid_request", "refresh_token is required")
	}
	fam, err := s.store.GetFamily(ctx, famID)
	if err != nil {
		return nil, storeErr(err, errInvalidGrant)
	}
	now := s.now()
	if fam.ClientID != client.ID || !now.Before(fam.ExpiresAt) {
		return nil, errInvalidGrant
	}
	scope := fam.Scope
	if req := form.Get("scope"); req != "" {
		granted := strings.Fields(fam.Scope)
		for _, sc := range strings.Fields(req) {
			if !slices.Contains(granted, sc) {
				return nil, errBad("invalid_scope", "scope exceeds the original grant")
			}
		}
		scope = strings.Join(strings.Fields(req), " ")
	}
	if res := form["resource"]; len(res) > 0 && (len(res) != 1 || res[0] != fam.Resource) {
		return nil, errBad("invalid_target", "resource does not match the grant")
	}
	if _, err := s.store.GetSession(ctx, fam.TSID); err != nil {
		if errors.Is(err, ErrNotFound) {
			s.revokeGrant(ctx, fam.ID, "")
		}
		return nil, storeErr(err, errInvalidGrant)
	}
	next := fam.ID + "." + randomToken(32)
	_, err = s.store.RotateFamily(ctx, fam.ID, hashKey("refresh", rt), hashKey("refresh", next), fam.ExpiresAt.Sub(now))
	switch {
	case errors.Is(err, ErrConflict):
		// An old refresh token came back: it was stolen or the client is
		// broken; either way the family is no longer trustworthy.
		s.log.LogAttrs(ctx, slog.LevelWarn, "upstream: refresh token reused; revoking its family", slog.String("client_id", client.ID))
		s.revokeGrant(ctx, fam.ID, fam.TSID)
		return nil, errInvalidGrant
	case err != nil:
		return nil, storeErr(err, errInvalidGrant)
	}
	at, err := s.accessToken(client.ID, fam.Subject, scope, fam.Resource, fam.TSID, now)
	if err != nil {
		return nil, err
	}
	return &tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(s.accessTTL / time.Second), RefreshToken: next, Scope: scope}, nil
}

// accessClaims are the claims of an issued access token (RFC 9068 plus
// client_id, scope and tsid).
type accessClaims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	TSID     string `json:"tsid"`
	Exp      int64  `json:"exp"`
	Iat      int64  `json:"iat"`
	Jti      string `json:"jti"`
}

func (s *Server) accessToken(clientID, sub, scope, resource, tsid string, now time.Time) (string, error) {
	payload, err := json.Marshal(accessClaims{Iss: s.cfg.Issuer, Sub: sub, Aud: resource, ClientID: clientID, Scope: scope,
		TSID: tsid, Exp: now.Add(s.accessTTL).Unix(), Iat: now.Unix(), Jti: randomToken(16)})
	if err != nil {
		return "", err
	}
	return s.keys.sign(payload)
}

// serveRevoke is RFC 7009 token revocation. Revoking a refresh token
// revokes its family and upstream session; revoking an access token
// revokes its upstream session (the JWT itself stays valid until it
// expires, as resource servers verify it offline).
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	form, client, ok := s.clientPost(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	tok := form.Get("token")
	if tok == "" {
		s.writeErr(w, r, errBad("invalid_request", "token is required"))
		return
	}
	switch strings.Count(tok, ".") {
	case 1:
		famID, _, _ := strings.Cut(tok, ".")
		fam, err := s.store.GetFamily(ctx, famID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			s.writeErr(w, r, err)
			return
		}
		if err == nil && fam.ClientID == client.ID && subtle.ConstantTimeCompare([]byte(fam.Current), []byte(hashKey("refresh", tok))) == 1 {
			s.revokeGrant(ctx, fam.ID, fam.TSID)
		}
	case 2:
		if c, err := s.parseOwnToken(tok); err == nil && c.ClientID == client.ID && c.TSID != "" {
			s.revokeGrant(ctx, "", c.TSID)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// parseOwnToken verifies an access token this server issued.
func (s *Server) parseOwnToken(tok string) (*accessClaims, error) {
	set, err := jwk.Parse(s.keys.JWKS(s.now()))
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify([]byte(tok), jws.WithKeySet(set))
	if err != nil {
		return nil, err
	}
	var c accessClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, err
	}
	if c.Iss != s.cfg.Issuer {
		return nil, errors.New("upstream: not our token")
	}
	return &c, nil
}
