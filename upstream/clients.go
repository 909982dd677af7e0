package upstream

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mcpauth-go/mcpauth/internal/discovery"
	"github.com/mcpauth-go/mcpauth/internal/netutil"
)

// errUnknownClient reports a client_id that is not registered and cannot
// be fetched as a metadata document.
var errUnknownClient = errors.New("upstream: unknown client")

// client finds a client: static, stored, or fetched as a Client ID
// Metadata Document (and then cached in the Store per its Cache-Control).
func (s *Server) client(ctx context.Context, id string) (*Client, error) {
	if id == "" || len(id) > 2048 {
		return nil, errUnknownClient
	}
	if c, ok := s.static[id]; ok {
		return c, nil
	}
	c, err := s.store.GetClient(ctx, id)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if s.cfg.DisableClientMetadataDocuments || !isMetadataURL(id) {
		return nil, errUnknownClient
	}
	// Concurrent first requests of one client share a single fetch; each
	// caller still gives up on its own context.
	ch := s.cimdFlight.DoChan(id, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cimd.cfg.Timeout)
		defer cancel()
		c, ttl, err := s.fetchClientMetadata(fctx, id)
		if err != nil {
			s.log.LogAttrs(fctx, slog.LevelInfo, "upstream: client metadata document refused", slog.String("client_id", id), slog.Any("err", err))
			return nil, fmt.Errorf("%w: %w", errUnknownClient, err)
		}
		if err := s.store.PutClient(fctx, c, ttl); err != nil {
			return nil, err
		}
		return c, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return cloneClient(r.Val.(*Client)), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("upstream: client metadata: %w: %w", ErrUnavailable, ctx.Err())
	}
}

// isMetadataURL applies the CIMD client_id rules: an https URL with a path
// component, no fragment, credentials or dot segments; and, since the
// consent page shows it, printable ASCII with a plain ASCII host
// (printableASCII, asciiHost).
func isMetadataURL(id string) bool {
	u, err := url.Parse(id)
	if err != nil || !printableASCII(id) || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" ||
		strings.Contains(id, "#") || !asciiHost(u.Hostname()) {
		return false
	}
	p := u.EscapedPath()
	if p == "" || p == "/" {
		return false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// clientMetadata is the subset of RFC 7591 client metadata used by DCR and
// Client ID Metadata Documents.
type clientMetadata struct {
	ClientID                string          `json:"client_id,omitempty"`
	ClientSecret            string          `json:"client_secret,omitempty"`
	RedirectURIs            []string        `json:"redirect_uris"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes              []string        `json:"grant_types,omitempty"`
	ResponseTypes           []string        `json:"response_types,omitempty"`
	ClientName              string          `json:"client_name,omitempty"`
	ClientURI               string          `json:"client_uri,omitempty"`
	Scope                   string          `json:"scope,omitempty"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
}

// validate checks metadata and returns the RFC 7591 error for it.
func (m *clientMetadata) validate() *oauthError {
	if len(m.RedirectURIs) == 0 || len(m.RedirectURIs) > 20 {
		return errBad("invalid_redirect_uri", "1 to 20 redirect_uris are required")
	}
	for _, ru := range m.RedirectURIs {
		if !validRedirectURI(ru) {
			return errBad("invalid_redirect_uri", "redirect URIs must be https, http on a loopback host, or a private-use scheme, without a fragment")
		}
	}
	for _, g := range m.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return errBad("invalid_client_metadata", "only authorization_code and refresh_token grants are supported")
		}
	}
	for _, rt := range m.ResponseTypes {
		if rt != "code" {
			return errBad("invalid_client_metadata", "only the code response type is supported")
		}
	}
	if !slices.Contains(authMethods, m.TokenEndpointAuthMethod) {
		return errBad("invalid_client_metadata", "unsupported token_endpoint_auth_method")
	}
	if m.TokenEndpointAuthMethod == "private_key_jwt" && (len(m.JWKS) == 0) == (m.JWKSURI == "") {
		return errBad("invalid_client_metadata", "private_key_jwt needs exactly one of jwks and jwks_uri")
	}
	if m.JWKSURI != "" && !isMetadataURL(m.JWKSURI) {
		return errBad("invalid_client_metadata", "jwks_uri must be an https URL")
	}
	if len(m.ClientName) > 200 || len(m.ClientURI) > 2000 || len(m.Scope) > 2000 {
		return errBad("invalid_client_metadata", "client_name, client_uri or scope is too long")
	}
	if !displayable(m.ClientName) {
		return errBad("invalid_client_metadata", "client_name has control or invisible formatting characters")
	}
	if m.ClientURI != "" {
		if u, err := url.Parse(m.ClientURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			return errBad("invalid_client_metadata", "client_uri must be a web URL")
		}
	}
	return nil
}

// validRedirectURI accepts https, or http on a loopback host (RFC 8252
// §7.3): MCP 2026-07-28 ("Communication Security") requires every redirect
// URI to be localhost or https, so private-use schemes are refused too.
// Never a fragment or credentials; printable ASCII with a plain ASCII
// host (see printableASCII and asciiHost), as the consent page shows it.
func validRedirectURI(s string) bool {
	if len(s) > 2000 || strings.Contains(s, "#") || !printableASCII(s) {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.User != nil || u.Host == "" || !asciiHost(u.Hostname()) {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		return netutil.IsLoopbackHost(u.Hostname())
	}
	return false
}

// displayable reports whether s is valid UTF-8 without control characters
// or invisible formatting ones (Unicode Cf: bidirectional overrides and
// isolates, zero-width characters), which could reorder or hide the text
// around a client name on the consent page.
func displayable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}

// printableASCII reports whether s has only printable ASCII characters
// (RFC 3986 URIs are ASCII; anything else is percent-encoded), so a URI
// shown on the consent page cannot hold a bidirectional override, an
// invisible character or a space that makes it read as another.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// asciiHost reports whether host (decoded, without port) is an IP literal
// or made of ASCII letters, digits, '-', '_' and '.' only. The consent
// page names the redirect host as the user's trust signal, so a host that
// renders like another (an IDN homograph, a percent-encoded one, invisible
// or bidirectional characters) is refused; an IDN registers in its xn--
// form, which is what the page then shows.
func asciiHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return host != ""
}

// serveRegister is RFC 7591 dynamic client registration. The MCP
// specification 2026-07-28 deprecates it in favour of Client ID Metadata
// Documents; it stays on by default for older clients.
func (s *Server) serveRegister(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions {
		writeCORS(w)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeCORS(w)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "the body must be application/json")
		return
	}
	body, err := discovery.ReadLimited(http.MaxBytesReader(w, r.Body, maxJSONBytes+1), maxJSONBytes)
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "the body is too large")
		return
	}
	var m clientMetadata
	if err := json.Unmarshal(body, &m); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "the body is not valid client metadata")
		return
	}
	m.ClientID, m.ClientSecret = "", ""
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = "client_secret_basic" // RFC 7591 §2
	}
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{"authorization_code"}
	}
	if len(m.ResponseTypes) == 0 {
		m.ResponseTypes = []string{"code"}
	}
	if oe := m.validate(); oe != nil {
		writeOAuthError(w, oe.status, oe.code, oe.desc)
		return
	}
	// Real clients register narrower scope sets than servers need (or
	// none): they get the default scopes on top of what they asked for.
	m.Scope = s.registeredScope(m.Scope)
	now := s.now()
	c := &Client{
		ID: newClientID(), RedirectURIs: m.RedirectURIs, TokenEndpointAuthMethod: m.TokenEndpointAuthMethod,
		JWKS: m.JWKS, JWKSURI: m.JWKSURI, Name: m.ClientName, URI: m.ClientURI, Scope: m.Scope,
		GrantTypes: m.GrantTypes, IssuedAt: now,
	}
	var secret string
	if m.TokenEndpointAuthMethod == "client_secret_basic" || m.TokenEndpointAuthMethod == "client_secret_post" {
		secret = randomToken(32)
		c.SecretHash = HashClientSecret(secret)
	}
	if s.registrations != nil {
		if ok, wait := s.registrations.take(now); !ok {
			if n := s.registrations.report(now); n > 0 {
				s.log.LogAttrs(r.Context(), slog.LevelWarn, "upstream: dynamic registrations refused: RegistrationLimit reached",
					slog.Int("refused", n))
			}
			w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
			writeOAuthError(w, http.StatusTooManyRequests, "temporarily_unavailable",
				"too many client registrations; retry later")
			return
		}
	}
	if err := s.store.PutClient(r.Context(), c, s.unusedClientTTL); err != nil {
		s.writeErr(w, r, err)
		return
	}
	resp := map[string]any{
		"client_id": c.ID, "client_id_issued_at": now.Unix(), "redirect_uris": c.RedirectURIs,
		"token_endpoint_auth_method": c.TokenEndpointAuthMethod, "grant_types": c.GrantTypes,
		"response_types": m.ResponseTypes,
	}
	if secret != "" {
		resp["client_secret"] = secret
		resp["client_secret_expires_at"] = 0
	}
	for k, v := range map[string]string{"client_name": c.Name, "client_uri": c.URI, "scope": c.Scope, "jwks_uri": c.JWKSURI} {
		if v != "" {
			resp[k] = v
		}
	}
	if len(c.JWKS) > 0 {
		resp["jwks"] = c.JWKS
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(resp)
}

// registeredScope is the requested scope (supported tokens only) plus the
// default scopes.
func (s *Server) registeredScope(req string) string {
	var out []string
	for _, sc := range strings.Fields(req) {
		if validScopeToken(sc) && (s.cfg.ScopesSupported == nil || slices.Contains(s.cfg.ScopesSupported, sc)) && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	for _, sc := range s.cfg.DefaultScopes {
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return strings.Join(out, " ")
}

// fetchClientMetadata fetches and validates a Client ID Metadata Document.
func (s *Server) fetchClientMetadata(ctx context.Context, id string) (*Client, time.Duration, error) {
	body, ttl, err := s.cimd.fetch(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	var m clientMetadata
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, 0, fmt.Errorf("upstream: client metadata document is not a JSON object: %w", err)
	}
	if m.ClientID != id {
		return nil, 0, errors.New("upstream: client metadata document names another client_id")
	}
	if strings.TrimSpace(m.ClientName) == "" {
		return nil, 0, errors.New("upstream: client metadata document has no client_name")
	}
	if m.ClientSecret != "" {
		return nil, 0, errors.New("upstream: client metadata document carries a client_secret")
	}
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = "none"
	}
	if m.TokenEndpointAuthMethod != "none" && m.TokenEndpointAuthMethod != "private_key_jwt" {
		return nil, 0, errors.New("upstream: client metadata document must use none or private_key_jwt")
	}
	if oe := m.validate(); oe != nil {
		return nil, 0, fmt.Errorf("upstream: client metadata document: %s", oe.desc)
	}
	return &Client{ID: id, RedirectURIs: m.RedirectURIs, TokenEndpointAuthMethod: m.TokenEndpointAuthMethod,
		JWKS: m.JWKS, JWKSURI: m.JWKSURI, Name: m.ClientName, URI: m.ClientURI, Scope: m.Scope,
		GrantTypes: m.GrantTypes, MetadataDocument: true, IssuedAt: s.now()}, ttl, nil
}

// metadataFetcher fetches client documents (and client JWKS) from URLs an
// attacker may choose: https only, public addresses only (checked on the
// address actually dialled, so DNS rebinding cannot slip past), no
// redirects, no proxy, bounded in size and time.
type metadataFetcher struct {
	cfg    ClientMetadataConfig
	client *http.Client
}

// errForbiddenAddress is returned when a fetch would reach a private,
// loopback or link-local address.
var errForbiddenAddress = errors.New("upstream: client metadata address is not public")

// blockedPrefixes are special-purpose ranges never fetched unless allowed.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"), netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"), netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"), netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("100::/64"), netip.MustParsePrefix("2001::/32"),
	// IPv4-compatible (::a.b.c.d) and IPv4-translated (::ffff:0:a.b.c.d)
	// addresses embed an IPv4 address, and fec0::/10 (deprecated
	// site-local) is private: Go counts them all as global unicast.
	netip.MustParsePrefix("::/96"), netip.MustParsePrefix("::ffff:0:0:0/96"),
	netip.MustParsePrefix("fec0::/10"),
}

func (f *metadataFetcher) allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range f.cfg.AllowedNetworks {
		if p.Contains(a) {
			return true
		}
	}
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.Zone() != "" {
		return false
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

func newMetadataFetcher(cfg ClientMetadataConfig) *metadataFetcher {
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = 64 << 10
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MinCacheTTL <= 0 {
		cfg.MinCacheTTL = time.Minute
	}
	if cfg.MaxCacheTTL <= 0 {
		cfg.MaxCacheTTL = 24 * time.Hour
	}
	f := &metadataFetcher{cfg: cfg}
	dialer := &net.Dialer{
		Timeout: cfg.Timeout,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return errForbiddenAddress
			}
			a, err := netip.ParseAddr(host)
			if err != nil || !f.allowed(a) {
				return errForbiddenAddress
			}
			return nil
		},
	}
	f.client = &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			Proxy:                  nil, // a proxy would dial for us, past the address check
			DialContext:            dialer.DialContext,
			TLSClientConfig:        &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    cfg.Timeout,
			ResponseHeaderTimeout:  cfg.Timeout,
			MaxResponseHeaderBytes: 16 << 10,
			MaxIdleConns:           16,
			IdleConnTimeout:        30 * time.Second,
			ForceAttemptHTTP2:      true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return f
}

// fetch GETs an https URL and returns its JSON body and cache lifetime.
func (f *metadataFetcher) fetch(ctx context.Context, u string) ([]byte, time.Duration, error) {
	if !isMetadataURL(u) {
		return nil, 0, errors.New("upstream: client metadata URL must be https with a path")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("upstream: client metadata: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		if errors.Is(err, errForbiddenAddress) {
			return nil, 0, errForbiddenAddress
		}
		return nil, 0, fmt.Errorf("upstream: client metadata fetch failed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("upstream: client metadata fetch: status %d (redirects are refused)", resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, 0, errors.New("upstream: client metadata is not JSON")
	}
	if resp.ContentLength > f.cfg.MaxSize {
		return nil, 0, errors.New("upstream: client metadata document too large")
	}
	body, err := discovery.ReadLimited(resp.Body, f.cfg.MaxSize)
	if err != nil {
		return nil, 0, fmt.Errorf("upstream: client metadata: %w", err)
	}
	return body, f.cacheTTL(resp.Header.Get("Cache-Control")), nil
}

// cacheTTL derives the cache lifetime from Cache-Control max-age, bounded.
func (f *metadataFetcher) cacheTTL(cc string) time.Duration {
	ttl := f.cfg.MinCacheTTL
	for d := range strings.SplitSeq(cc, ",") {
		d = strings.TrimSpace(strings.ToLower(d))
		if d == "no-store" || d == "no-cache" {
			return f.cfg.MinCacheTTL
		}
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				ttl = time.Duration(min(n, int64(365*24*3600))) * time.Second
			}
		}
	}
	return max(f.cfg.MinCacheTTL, min(ttl, f.cfg.MaxCacheTTL))
}

// newClientID returns a random client_id (24 bytes, base64url) that does
// not start with "-" or "_": people paste client IDs into command lines,
// where a leading "-" reads as an option (the MCP conformance suite's
// "--client-id -V…" prints its version and exits).
func newClientID() string {
	for {
		if id := randomToken(24); id[0] != '-' && id[0] != '_' {
			return id
		}
	}
}
