package idptest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Config configures a [Server]. The zero value is usable: RS256, ES256 and
// EdDSA keys, issuer equal to the server URL, one-hour tokens, no audience
// and no registered clients.
type Config struct {
	// Audience is the default aud of minted tokens: a single value is
	// written as a JSON string, several as an array. If empty, tokens carry
	// no aud claim unless one is given.
	Audience []string

	// Algorithms lists the JWS algorithms to generate one signing key each
	// for (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512,
	// EdDSA). The first is the default signer. If nil, RS256, ES256 and
	// EdDSA. An unknown or duplicated algorithm makes NewServer panic.
	Algorithms []string

	// IssuerPath is an optional path appended to the server URL to form the
	// issuer, such as "/tenant1". It must start with "/" and not end with
	// "/". Discovery is then served both at the RFC 8414 path-inserted
	// location and at the OpenID Connect locations. If empty, the issuer is
	// the server URL.
	IssuerPath string

	// TokenTTL is the lifetime of minted tokens. If zero, one hour.
	TokenTTL time.Duration

	// ExchangeTTL is the lifetime of tokens issued by the token endpoint
	// (every grant, including RFC 8693 token exchange). If zero, TokenTTL.
	ExchangeTTL time.Duration

	// Clients are the clients registered at the token and authorization
	// endpoints. A duplicated ID makes NewServer panic.
	Clients []Client

	// Now is the server's clock, used for iat/exp and expiry checks. If nil,
	// time.Now.
	Now func() time.Time
}

// Client is an OAuth client registered at a [Server].
type Client struct {
	// ID is the client_id.
	ID string
	// Secret is the client secret; empty means a public client (no client
	// authentication, PKCE only).
	Secret string
	// RedirectURIs are the exact redirect URIs accepted at /authorize.
	RedirectURIs []string
}

// String returns a description of c with the secret redacted.
func (c Client) String() string {
	secret := ""
	if c.Secret != "" {
		secret = "[REDACTED]"
	}
	return fmt.Sprintf("idptest.Client{ID:%q Secret:%q RedirectURIs:%q}", c.ID, secret, c.RedirectURIs)
}

// GoString is like String, so %#v does not print the secret either.
func (c Client) GoString() string { return c.String() }

// Endpoint names one HTTP endpoint of a [Server] for fault injection and
// request counting.
type Endpoint int

// The endpoints of a [Server].
const (
	// EndpointDiscovery covers every metadata document location (RFC 8414
	// and OpenID Connect Discovery).
	EndpointDiscovery Endpoint = iota
	// EndpointJWKS is the JSON Web Key Set ([Server.JWKSURL]).
	EndpointJWKS
	// EndpointToken is the token endpoint ([Server.TokenURL]).
	EndpointToken
	// EndpointIntrospection is the RFC 7662 endpoint ([Server.IntrospectionURL]).
	EndpointIntrospection
	// EndpointAuthorize is the authorization endpoint ([Server.AuthorizeURL]).
	EndpointAuthorize
	numEndpoints
)

// String returns the endpoint's name.
func (e Endpoint) String() string {
	switch e {
	case EndpointDiscovery:
		return "discovery"
	case EndpointJWKS:
		return "jwks"
	case EndpointToken:
		return "token"
	case EndpointIntrospection:
		return "introspection"
	case EndpointAuthorize:
		return "authorize"
	}
	return fmt.Sprintf("Endpoint(%d)", int(e))
}

// Fault describes how an endpoint misbehaves. The zero Fault is healthy.
//
// Delay is applied first (the server stops waiting when the client gives up).
// Then, if Down is set, the connection is closed without a response. Go's
// http.Transport may retry an idempotent request once on a fresh connection
// after that, so [Server.Requests] can count such a request twice. Otherwise,
// if Status, Garbage or Body is set, that response replaces the real one:
// status Status (or 200) with body Body, or a non-JSON body if Garbage, or
// for a non-200 Status an RFC 6749 style JSON error.
type Fault struct {
	// Down closes the connection without a response.
	Down bool
	// Status is the response status code.
	Status int
	// Delay is how long to wait before answering.
	Delay time.Duration
	// Garbage answers with a body that is not JSON.
	Garbage bool
	// Body is the raw response body.
	Body string
}

// Server is a fake OAuth 2.1 authorization server and OpenID provider for
// tests. It is safe for concurrent use.
type Server struct {
	ts     *httptest.Server
	issuer string
	path   string // IssuerPath
	cfg    Config
	now    func() time.Time
	ttl    time.Duration
	xttl   time.Duration

	clients   map[string]Client
	counts    [numEndpoints]atomic.Int64
	closed    chan struct{} // closed by Close: delayed handlers give up
	closeOnce sync.Once

	mu           sync.Mutex
	keys         []*signingKey               // published, current first
	allKeys      map[string]*signingKey      // every key ever generated, by kid
	current      map[string]*signingKey      // current key per alg
	algOrder     []string                    // cfg.Algorithms, default first
	faults       [numEndpoints]Fault         //
	cacheControl string                      //
	opaque       map[[32]byte]map[string]any // opaque token -> introspection claims
	revoked      map[[32]byte]bool           //
	codes        map[[32]byte]*authCode      //
	refresh      map[[32]byte]*grant         //
	lastForm     [numEndpoints]url.Values    //
	lastHeader   [numEndpoints]http.Header
}

var defaultAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// NewServer starts a Server on a random loopback port. If t is non-nil the
// server is closed by t.Cleanup; otherwise the caller must call Close, as
// with httptest.NewServer. It panics on an invalid Config.
func NewServer(t testing.TB, cfg Config) *Server {
	if t != nil {
		t.Helper()
	}
	s := &Server{
		cfg:          cfg,
		now:          cfg.Now,
		ttl:          cfg.TokenTTL,
		xttl:         cfg.ExchangeTTL,
		clients:      map[string]Client{},
		allKeys:      map[string]*signingKey{},
		current:      map[string]*signingKey{},
		cacheControl: "max-age=300",
		opaque:       map[[32]byte]map[string]any{},
		revoked:      map[[32]byte]bool{},
		codes:        map[[32]byte]*authCode{},
		refresh:      map[[32]byte]*grant{},
		closed:       make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.ttl <= 0 {
		s.ttl = time.Hour
	}
	if s.xttl <= 0 {
		s.xttl = s.ttl
	}
	if p := cfg.IssuerPath; p != "" && (!strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") ||
		strings.ContainsAny(p, "?#{}% \t\n") || strings.Contains(p, "//")) {
		panic(fmt.Sprintf("idptest: IssuerPath %q must start with /, not end with /, and hold only plain path segments", p))
	}
	s.path = cfg.IssuerPath
	for _, c := range cfg.Clients {
		if c.ID == "" {
			panic("idptest: client with empty ID")
		}
		if _, dup := s.clients[c.ID]; dup {
			panic(fmt.Sprintf("idptest: duplicate client ID %q", c.ID))
		}
		s.clients[c.ID] = c
	}
	s.algOrder = cfg.Algorithms
	if s.algOrder == nil {
		s.algOrder = defaultAlgorithms
	}
	if len(s.algOrder) == 0 {
		panic("idptest: Algorithms is empty")
	}
	seen := map[string]bool{}
	for _, alg := range s.algOrder {
		if seen[alg] {
			panic(fmt.Sprintf("idptest: duplicate algorithm %q", alg))
		}
		seen[alg] = true
		k, err := generateKey(alg)
		if err != nil {
			panic(err)
		}
		s.addKeyLocked(k)
	}
	s.keys = s.currentKeysLocked()
	s.ts = httptest.NewUnstartedServer(s.routes())
	// The listener exists already; fix the issuer before serving anything.
	s.issuer = "http://" + s.ts.Listener.Addr().String() + s.path
	s.ts.Start()
	if t != nil {
		t.Cleanup(s.Close)
	}
	return s
}

func (s *Server) addKeyLocked(k *signingKey) {
	s.allKeys[k.kid] = k
	s.current[k.alg] = k
}

// URL returns the base URL of the server, such as http://127.0.0.1:41234.
func (s *Server) URL() string { return s.ts.URL }

// Issuer returns the issuer identifier: URL followed by Config.IssuerPath.
func (s *Server) Issuer() string { return s.issuer }

// JWKSURL returns the URL of the JSON Web Key Set.
func (s *Server) JWKSURL() string { return s.issuer + "/jwks" }

// TokenURL returns the URL of the token endpoint.
func (s *Server) TokenURL() string { return s.issuer + "/token" }

// IntrospectionURL returns the URL of the RFC 7662 introspection endpoint.
func (s *Server) IntrospectionURL() string { return s.issuer + "/introspect" }

// AuthorizeURL returns the URL of the (auto-approving) authorization endpoint.
func (s *Server) AuthorizeURL() string { return s.issuer + "/authorize" }

// MetadataURL returns the RFC 8414 metadata URL (path-inserted when the
// issuer has a path).
func (s *Server) MetadataURL() string {
	return s.ts.URL + "/.well-known/oauth-authorization-server" + s.path
}

// OpenIDConfigurationURL returns the OpenID Connect Discovery URL (issuer
// followed by /.well-known/openid-configuration).
func (s *Server) OpenIDConfigurationURL() string {
	return s.issuer + "/.well-known/openid-configuration"
}

// Client returns an HTTP client for the server, like httptest.Server.Client.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Close shuts the server down, cutting short any delayed (Fault.Delay)
// responses, and waits for outstanding requests. It is safe to call more
// than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.ts.Close()
	})
}

// SetFault makes endpoint e misbehave as f; the zero Fault restores it.
func (s *Server) SetFault(e Endpoint, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[e] = f
}

// Requests returns how many requests endpoint e has received, faulted ones
// included.
func (s *Server) Requests(e Endpoint) int64 { return s.counts[e].Load() }

// SetJWKSCacheControl sets the Cache-Control header of JWKS responses
// (default "max-age=300"); empty omits the header.
func (s *Server) SetJWKSCacheControl(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cacheControl = v
}

// LastTokenRequest returns the form of the last token endpoint request
// (secrets included: assert on it, never print it), or nil.
func (s *Server) LastTokenRequest() url.Values {
	f, _ := s.LastRequest(EndpointToken)
	return f
}

// LastRequest returns copies of the form and headers of the last request
// to e, or nils. They may hold secrets and tokens: assert on them, never
// print them.
func (s *Server) LastRequest(e Endpoint) (url.Values, http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var f url.Values
	if s.lastForm[e] != nil {
		f = url.Values{}
		for k, v := range s.lastForm[e] {
			f[k] = append([]string(nil), v...)
		}
	}
	return f, s.lastHeader[e].Clone()
}

// RotateKeys generates a new key per algorithm; the new keys sign from now
// on and the previous ones stay published until [Server.RetireOldKeys].
func (s *Server) RotateKeys() {
	fresh := make([]*signingKey, 0, len(s.algOrder))
	for _, alg := range s.algOrder {
		k, err := generateKey(alg)
		if err != nil {
			panic(err)
		}
		fresh = append(fresh, k)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range fresh {
		s.addKeyLocked(k)
	}
	s.keys = append(fresh, s.keys...)
}

// RetireOldKeys stops publishing every key but the current ones. Tokens
// signed by retired keys are still recognised by introspection and token
// exchange, which check signatures themselves.
func (s *Server) RetireOldKeys() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = s.currentKeysLocked()
}

func (s *Server) currentKeysLocked() []*signingKey {
	ks := make([]*signingKey, 0, len(s.algOrder))
	for _, alg := range s.algOrder {
		ks = append(ks, s.current[alg])
	}
	return ks
}

// KeyID returns the kid of the current key for alg; "" selects the default
// algorithm. It returns "" if the server has no key for alg.
func (s *Server) KeyID(alg string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if alg == "" {
		alg = s.algOrder[0]
	}
	if k := s.current[alg]; k != nil {
		return k.kid
	}
	return ""
}

// JWKS returns the JSON Web Key Set currently published.
func (s *Server) JWKS() []byte {
	s.mu.Lock()
	keys := make([]map[string]any, 0, len(s.keys))
	for _, k := range s.keys {
		keys = append(keys, k.jwk())
	}
	s.mu.Unlock()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return b
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	p := s.path
	disc := s.wrap(EndpointDiscovery, s.serveDiscovery)
	mux.Handle("/.well-known/oauth-authorization-server"+p, disc)
	mux.Handle(p+"/.well-known/openid-configuration", disc)
	if p != "" {
		// Path insertion applied to OIDC too, which the MCP specification
		// has clients try.
		mux.Handle("/.well-known/openid-configuration"+p, disc)
	}
	mux.Handle(p+"/jwks", s.wrap(EndpointJWKS, s.serveJWKS))
	mux.Handle(p+"/token", s.wrap(EndpointToken, s.serveToken))
	mux.Handle(p+"/introspect", s.wrap(EndpointIntrospection, s.serveIntrospection))
	mux.Handle(p+"/authorize", s.wrap(EndpointAuthorize, s.serveAuthorize))
	return mux
}

// wrap counts requests to e and applies its fault.
func (s *Server) wrap(e Endpoint, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.counts[e].Add(1)
		s.mu.Lock()
		f := s.faults[e]
		s.mu.Unlock()
		if f.Delay > 0 {
			if !s.sleep(r.Context(), f.Delay) {
				return
			}
		}
		if f.Down {
			hj, ok := w.(http.Hijacker)
			if !ok {
				panic(http.ErrAbortHandler)
			}
			conn, _, err := hj.Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		if f.Status != 0 || f.Garbage || f.Body != "" {
			writeFault(w, f)
			return
		}
		h(w, r)
	})
}

func writeFault(w http.ResponseWriter, f Fault) {
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	body := f.Body
	switch {
	case body != "":
		w.Header().Set("Content-Type", "application/json")
	case f.Garbage:
		body = "<html><body>this is not JSON {</body></html>"
		w.Header().Set("Content-Type", "text/html")
	case status != http.StatusOK:
		body = fmt.Sprintf(`{"error":%q}`, faultError(status))
		w.Header().Set("Content-Type", "application/json")
	default:
		body = "{}"
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func faultError(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "invalid_client"
	case status == http.StatusServiceUnavailable:
		return "temporarily_unavailable"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request"
}

// sleep waits for d unless the request is cancelled or the server closes.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closed:
		return false
	}
}

func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	md := map[string]any{
		"issuer":                 s.issuer,
		"jwks_uri":               s.JWKSURL(),
		"token_endpoint":         s.TokenURL(),
		"authorization_endpoint": s.AuthorizeURL(),
		"introspection_endpoint": s.IntrospectionURL(),
		"grant_types_supported": []string{
			"authorization_code", "client_credentials", "refresh_token", grantTokenExchange,
		},
		"response_types_supported":                       []string{"code"},
		"code_challenge_methods_supported":               []string{"S256"},
		"authorization_response_iss_parameter_supported": true,
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported":  []string{"client_secret_basic", "client_secret_post", "none"},
		"subject_types_supported":                        []string{"public"},
		"id_token_signing_alg_values_supported":          s.algOrder,
	}
	writeJSON(w, http.StatusOK, md)
}

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	cc := s.cacheControl
	s.mu.Unlock()
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(s.JWKS())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
