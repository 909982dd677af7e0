package upstream

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Input bounds.
const (
	maxQueryLen  = 8 << 10  // authorization request query
	maxFormBytes = 64 << 10 // token, revoke and consent forms
	maxJSONBytes = 64 << 10 // registration request
	maxParamLen  = 4 << 10  // any single parameter
)

// Server is the embedded OAuth 2.1 authorization server: an http.Handler
// serving discovery, JWKS, /authorize, /consent, /callback, /token,
// /revoke and /register under the configured issuer. Mount it at the root
// of the issuer's host (it matches full paths, the issuer's path
// included). It is safe for concurrent use.
type Server struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	now     func() time.Time
	keys    *keyRing
	base    string // issuer path ("" or "/tenant")
	origin  string // scheme://host of the issuer
	secure  bool   // issuer is https: cookies are __Host- and Secure
	routes  map[string]http.HandlerFunc
	meta    []byte
	static  map[string]*Client
	ups     map[string]*provider
	upOrder []string
	cimd    *metadataFetcher
	// cimdFlight shares one metadata document fetch among concurrent
	// requests for the same client.
	cimdFlight singleflight.Group
	// replay remembers client assertion jtis across replicas when the
	// Store is a ReplayGuard; otherwise jti does, in this process only.
	replay ReplayGuard
	jti    *jtiCache
	// registrations limits dynamic client registration (nil: no limit).
	registrations *tokenBucket

	accessTTL, refreshTTL, codeTTL, loginTTL, consentTTL, unusedClientTTL time.Duration
}

// NewServer validates cfg and returns a Server. It does not contact the
// upstream providers: OIDC discovery happens on the first login (and is
// retried), so the server can start before its providers.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:             cfg,
		store:           cfg.Store,
		log:             cfg.Logger,
		now:             cfg.Now,
		accessTTL:       orDur(cfg.AccessTokenTTL, 10*time.Minute),
		refreshTTL:      orDur(cfg.RefreshTokenTTL, 30*24*time.Hour),
		codeTTL:         orDur(cfg.CodeTTL, time.Minute),
		loginTTL:        orDur(cfg.LoginTTL, 10*time.Minute),
		consentTTL:      orDur(cfg.ConsentTTL, 30*24*time.Hour),
		unusedClientTTL: orDur(cfg.UnusedClientTTL, 24*time.Hour),
		static:          map[string]*Client{},
		ups:             map[string]*provider{},
		jti:             &jtiCache{seen: map[string]time.Time{}},
	}
	if s.store == nil {
		s.store = NewMemoryStore()
	}
	if g, ok := s.store.(ReplayGuard); ok {
		s.replay = g
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	switch {
	case cfg.RegistrationLimit == 0:
		s.registrations = newTokenBucket(60, time.Minute, s.now())
	case cfg.RegistrationLimit > 0:
		s.registrations = newTokenBucket(cfg.RegistrationLimit, time.Minute, s.now())
	}
	u, _ := url.Parse(cfg.Issuer)
	s.origin = u.Scheme + "://" + u.Host
	s.base = strings.TrimSuffix(u.EscapedPath(), "/")
	s.secure = u.Scheme == "https"

	// Keys.
	s.keys = &keyRing{}
	if len(cfg.SigningKeys) == 0 {
		sg, err := generateDevKey()
		if err != nil {
			return nil, fmt.Errorf("upstream: generate development key: %w", err)
		}
		k, err := newKey(sg, time.Time{})
		if err != nil {
			return nil, err
		}
		s.keys.active = k
		s.log.Warn("upstream: no SigningKeys configured; generated a development signing key (tokens do not survive a restart and replicas will not share it)")
	}
	for i, sk := range cfg.SigningKeys {
		sg, err := parseSigningKey(sk)
		if err != nil {
			return nil, err
		}
		k, err := newKey(sg, sk.PublishUntil)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			s.keys.active = k
		} else {
			s.keys.previous = append(s.keys.previous, k)
		}
	}
	s.keys.rebuild(s.now())

	for i := range cfg.Clients {
		c := cloneClient(&cfg.Clients[i])
		if err := checkStaticClient(c); err != nil {
			return nil, err
		}
		s.static[c.ID] = c
	}
	for i := range cfg.Upstreams {
		p := cfg.Upstreams[i]
		s.ups[p.Name] = newProvider(p, s)
		s.upOrder = append(s.upOrder, p.Name)
	}
	s.cimd = newMetadataFetcher(cfg.ClientMetadata)

	meta, err := s.metadata()
	if err != nil {
		return nil, err
	}
	s.meta = meta
	s.routes = map[string]http.HandlerFunc{
		s.base + "/authorize": s.serveAuthorize,
		s.base + "/consent":   s.serveConsent,
		s.base + "/callback":  s.serveCallback,
		s.base + "/token":     s.serveToken,
		s.base + "/revoke":    s.serveRevoke,
		s.base + "/jwks":      s.serveJWKS,
		"/.well-known/oauth-authorization-server" + s.base: s.serveMetadata,
		"/.well-known/openid-configuration" + s.base:       s.serveMetadata,
		s.base + "/.well-known/openid-configuration":       s.serveMetadata,
	}
	if !cfg.DisableDynamicRegistration {
		s.routes[s.base+"/register"] = s.serveRegister
	}
	return s, nil
}

// checkStaticClient validates a configured client and settles its
// authentication method: a client with a secret hash and no method is
// confidential (client_secret_basic or _post), never public, so a
// forgotten method cannot let anyone redeem its codes without the secret.
func checkStaticClient(c *Client) error {
	if c.ID == "" || len(c.RedirectURIs) == 0 {
		return fmt.Errorf("upstream: static client %q needs an ID and redirect URIs", c.ID)
	}
	for _, ru := range c.RedirectURIs {
		if !validRedirectURI(ru) {
			return fmt.Errorf("upstream: static client %q: redirect URI %q must be https, or http on a loopback host, without a fragment", c.ID, ru)
		}
	}
	if c.TokenEndpointAuthMethod == "" && c.SecretHash != "" {
		c.TokenEndpointAuthMethod = "client_secret_basic"
	}
	m := c.TokenEndpointAuthMethod
	switch {
	case m != "" && !slices.Contains(authMethods, m):
		return fmt.Errorf("upstream: static client %q: unsupported TokenEndpointAuthMethod %q", c.ID, m)
	case (m == "" || m == "none" || m == "private_key_jwt") && c.SecretHash != "":
		return fmt.Errorf("upstream: static client %q: a SecretHash needs client_secret_basic or client_secret_post", c.ID)
	case (m == "client_secret_basic" || m == "client_secret_post") && c.SecretHash == "":
		return fmt.Errorf("upstream: static client %q: %s needs a SecretHash", c.ID, m)
	case m == "private_key_jwt" && (len(c.JWKS) == 0) == (c.JWKSURI == ""):
		return fmt.Errorf("upstream: static client %q: private_key_jwt needs exactly one of JWKS and JWKSURI", c.ID)
	case c.JWKSURI != "" && !isMetadataURL(c.JWKSURI):
		return fmt.Errorf("upstream: static client %q: JWKSURI must be an https URL with a path", c.ID)
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := s.routes[r.URL.EscapedPath()]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h(w, r)
}

// Close stops the background key refreshes of the upstream ID token
// verifiers and closes idle connections. The Server keeps answering, but
// should not be used for new logins afterwards.
func (s *Server) Close() error {
	for _, p := range s.ups {
		p.mu.Lock()
		if p.verifier != nil {
			_ = p.verifier.Close()
		}
		p.mu.Unlock()
	}
	if t, ok := s.cimd.client.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
	return nil
}

// String describes the server by its issuer: its configuration holds the
// signing keys and upstream client secrets, so it is never printed.
func (s *Server) String() string { return fmt.Sprintf("upstream.Server{Issuer:%q}", s.cfg.Issuer) }

// GoString is String.
func (s *Server) GoString() string { return s.String() }

// Format prints String for every verb.
func (s *Server) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue logs the issuer only.
func (s *Server) LogValue() slog.Value { return slog.GroupValue(slog.String("issuer", s.cfg.Issuer)) }

// Issuer returns the issuer identifier.
func (s *Server) Issuer() string { return s.cfg.Issuer }

// RotateSigningKey makes k the active signing key. The previous active key
// stays in the JWKS until every token it signed has expired (access token
// lifetime plus five minutes), so rotation never invalidates a live token.
// Replicas must be rotated alike.
func (s *Server) RotateSigningKey(k SigningKey) error {
	sg, err := parseSigningKey(k)
	if err != nil {
		return err
	}
	nk, err := newKey(sg, time.Time{})
	if err != nil {
		return err
	}
	now := s.now()
	s.keys.rotate(nk, now.Add(s.accessTTL+5*time.Minute), now)
	return nil
}

func (s *Server) endpoint(p string) string { return s.cfg.Issuer + p }

// metadata builds the RFC 8414 / OIDC discovery document.
func (s *Server) metadata() ([]byte, error) {
	md := map[string]any{
		"issuer":                                           s.cfg.Issuer,
		"authorization_endpoint":                           s.endpoint("/authorize"),
		"token_endpoint":                                   s.endpoint("/token"),
		"jwks_uri":                                         s.endpoint("/jwks"),
		"revocation_endpoint":                              s.endpoint("/revoke"),
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query"},
		"grant_types_supported":                            []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            authMethods,
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256", "PS256", "ES256", "ES384", "EdDSA"},
		"revocation_endpoint_auth_methods_supported":       authMethods,
		"authorization_response_iss_parameter_supported":   true,
		"client_id_metadata_document_supported":            !s.cfg.DisableClientMetadataDocuments,
		"subject_types_supported":                          []string{"public"},
		"id_token_signing_alg_values_supported":            []string{s.keys.active.alg},
		"request_parameter_supported":                      false,
		"resource_indicators_supported":                    true,
	}
	if s.cfg.ScopesSupported != nil {
		md["scopes_supported"] = s.cfg.ScopesSupported
	}
	if !s.cfg.DisableDynamicRegistration {
		md["registration_endpoint"] = s.endpoint("/register")
	}
	b, err := json.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("upstream: metadata: %w", err)
	}
	return b, nil
}

var authMethods = []string{"none", "client_secret_basic", "client_secret_post", "private_key_jwt"}

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if !publicGet(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(s.meta)
}

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if !publicGet(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.keys.JWKS(s.now()))
}

// publicGet begins the metadata and JWKS endpoints: it answers a CORS
// preflight or a method other than GET and HEAD, or else sets the CORS
// headers and returns true.
func publicGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodOptions {
		writeCORS(w)
		w.WriteHeader(http.StatusNoContent)
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "method not allowed")
		return false
	}
	writeCORS(w)
	return true
}

func writeCORS(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version")
}

// oauthError is an RFC 6749 §5.2 error.
type oauthError struct {
	status int
	code   string
	desc   string
}

func (e *oauthError) Error() string { return "upstream: " + e.code + ": " + e.desc }

func errBad(code, desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: code, desc: desc}
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// writeErr answers a token, revocation or registration request that
// failed: an RFC 6749 error, or 503 when storage is down.
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oauthError
	switch {
	case errors.As(err, &oe):
		if oe.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+s.cfg.Issuer+`"`)
		}
		writeOAuthError(w, oe.status, oe.code, oe.desc)
	default:
		s.log.LogAttrs(r.Context(), slog.LevelError, "upstream: request failed", slog.String("path", r.URL.Path), slog.Any("err", err))
		w.Header().Set("Retry-After", "5")
		writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the authorization server is temporarily unavailable")
	}
}

// storeErr converts a store error: not found / conflict / consumed become
// the given OAuth error, anything else stays a storage failure.
func storeErr(err error, notFound *oauthError) error {
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrConsumed) {
		return notFound
	}
	return err
}

// randomToken returns n random bytes, base64url encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashKey is the store key of a secret value: hex SHA-256 with a domain
// prefix, so a Store never sees the secret.
func hashKey(domain, v string) string {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write([]byte{0})
	h.Write([]byte(v))
	return hex.EncodeToString(h.Sum(nil))
}

// HashClientSecret returns the Client.SecretHash of a client secret.
func HashClientSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// errorPage is shown when the request cannot be redirected back (unknown
// client, unregistered redirect URI): RFC 6749 §4.1.2.1.
var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorization error</title>
<meta name="viewport" content="width=device-width,initial-scale=1"></head>
<body><h1>Authorization error</h1><p id="error" data-error="{{.Code}}">{{.Desc}}</p>
<p>Return to the application and try again.</p></body></html>
`))

func (s *Server) showError(w http.ResponseWriter, status int, code, desc string) {
	setPageHeaders(w)
	w.WriteHeader(status)
	_ = errorPage.Execute(w, struct{ Code, Desc string }{code, desc})
}

func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

// jtiCache remembers client assertion jtis until they expire, in this
// process only: the fallback for a Store that is not a ReplayGuard.
type jtiCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// use records jti until exp and reports whether it was fresh.
func (c *jtiCache) use(jti string, exp, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) > 10000 {
		for k, e := range c.seen {
			if now.After(e) {
				delete(c.seen, k)
			}
		}
	}
	if e, ok := c.seen[jti]; ok && now.Before(e) {
		return false
	}
	c.seen[jti] = exp
	return true
}

// uniqueParams parses a form and refuses repeated parameters (RFC 6749
// §3.1) and oversize values.
func uniqueParams(v url.Values, multi ...string) error {
	for k, vs := range v {
		if len(vs) > 1 && !contains(multi, k) {
			return errBad("invalid_request", "parameter "+safeName(k)+" is repeated")
		}
		for _, x := range vs {
			if len(x) > maxParamLen {
				return errBad("invalid_request", "parameter "+safeName(k)+" is too long")
			}
		}
	}
	return nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// safeName returns a parameter name fit for an error description.
func safeName(k string) string {
	if len(k) > 32 || strings.IndexFunc(k, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || r >= '0' && r <= '9')
	}) >= 0 {
		return "(unnamed)"
	}
	return k
}
