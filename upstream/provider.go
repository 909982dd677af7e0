package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/internal/discovery"
)

// errProviderUnavailable marks an upstream outage (as opposed to a refused
// login).
var errProviderUnavailable = errors.New("upstream: identity provider unavailable")

const maxUserinfoBytes = 1 << 20

// provider is the runtime side of a configured upstream.
type provider struct {
	cfg    Provider
	s      *Server
	client *http.Client

	mu       sync.Mutex
	oauth    *oauth2.Config
	verifier *authn.Verifier
	// issRequired is set when the provider's metadata advertises RFC 9207
	// authorization_response_iss_parameter_supported: a response without
	// iss is then refused.
	issRequired bool
}

// identity is the result of an upstream login.
type identity struct {
	subject string // "<provider>:<user id>"
	token   *oauth2.Token
	idToken string
}

func newProvider(p Provider, s *Server) *provider {
	c := s.cfg.HTTPClient
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	return &provider{cfg: p, s: s, client: c}
}

func (p *provider) displayName() string {
	if p.cfg.DisplayName != "" {
		return p.cfg.DisplayName
	}
	return p.cfg.Name
}

// scopes returns the scopes requested at the provider ("openid" first for
// OIDC, as resolve adds it).
func (p *provider) scopes() []string {
	sc := slices.Clone(p.cfg.Scopes)
	if p.cfg.Type == OIDC && !slices.Contains(sc, "openid") {
		sc = append([]string{"openid"}, sc...)
	}
	return sc
}

// resolve returns the OAuth configuration, running OIDC discovery on first
// use (and again after a failure).
func (p *provider) resolve(ctx context.Context) (*oauth2.Config, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.oauth != nil {
		return p.oauth, nil
	}
	conf := &oauth2.Config{
		ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret,
		Endpoint:    oauth2.Endpoint{AuthURL: p.cfg.AuthURL, TokenURL: p.cfg.TokenURL},
		RedirectURL: p.s.endpoint("/callback"),
		Scopes:      slices.Clone(p.cfg.Scopes),
	}
	if p.cfg.ClientSecret == "" {
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	if p.cfg.Type == OIDC {
		md, err := discovery.Fetch(ctx, p.client, p.cfg.Issuer)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errProviderUnavailable, err)
		}
		if conf.Endpoint.AuthURL == "" {
			conf.Endpoint.AuthURL = md.AuthorizationEndpoint
		}
		if conf.Endpoint.TokenURL == "" {
			conf.Endpoint.TokenURL = md.TokenEndpoint
		}
		for _, u := range []string{conf.Endpoint.AuthURL, conf.Endpoint.TokenURL, md.JWKSURI} {
			if err := checkURL(u); err != nil {
				return nil, fmt.Errorf("upstream: provider %q metadata: %w", p.cfg.Name, err)
			}
		}
		if !slices.Contains(conf.Scopes, "openid") {
			conf.Scopes = append([]string{"openid"}, conf.Scopes...)
		}
		v, err := authn.NewVerifier(authn.Config{
			Issuer: p.cfg.Issuer, Audience: []string{p.cfg.ClientID}, JWKSURL: md.JWKSURI,
			HTTPClient: p.client, Logger: p.s.log, Now: p.s.now,
		})
		if err != nil {
			return nil, fmt.Errorf("upstream: provider %q: %w", p.cfg.Name, err)
		}
		p.verifier = v
		p.issRequired = md.AuthorizationResponseIssParamSupported
	}
	p.oauth = conf
	return conf, nil
}

// errMixUp reports an authorization response that did not come from the
// provider the login was started at.
var errMixUp = errors.New("upstream: authorization response from another provider (iss)")

// checkIssuer applies the RFC 9207 mix-up defence to the iss parameter of
// an authorization response for a login started at p: an OIDC provider's
// response must carry its issuer (or none, when its metadata does not
// advertise iss), and no response may name the issuer of another
// configured upstream (an OAuth2 provider has no issuer of its own to
// compare with).
func (p *provider) checkIssuer(ctx context.Context, iss string) error {
	if _, err := p.resolve(ctx); err != nil {
		return err
	}
	if p.cfg.Type == OIDC {
		p.mu.Lock()
		required := p.issRequired
		p.mu.Unlock()
		if iss != p.cfg.Issuer && (iss != "" || required) {
			return errMixUp
		}
		return nil
	}
	if iss == "" {
		return nil
	}
	for _, o := range p.s.ups {
		if o != p && o.cfg.Type == OIDC && o.cfg.Issuer == iss {
			return errMixUp
		}
	}
	return nil
}

// authCodeURL fills the upstream leg of p (verifier, nonce) and returns
// the provider's authorization URL with state.
func (p *provider) authCodeURL(ctx context.Context, state string, pend *Pending) (string, error) {
	conf, err := p.resolve(ctx)
	if err != nil {
		return "", err
	}
	pend.Upstream = p.cfg.Name
	pend.UpstreamVerifier = oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(pend.UpstreamVerifier)}
	if p.cfg.Type == OIDC {
		pend.Nonce = randomToken(24)
		opts = append(opts, oauth2.SetAuthURLParam("nonce", pend.Nonce))
	}
	for k, v := range p.cfg.AuthParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	return conf.AuthCodeURL(state, opts...), nil
}

// exchange redeems the upstream code and identifies the user.
func (p *provider) exchange(ctx context.Context, code string, pend *Pending) (*identity, error) {
	conf, err := p.resolve(ctx)
	if err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.client)
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(pend.UpstreamVerifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return nil, fmt.Errorf("upstream: provider %q refused the code: %s", p.cfg.Name, safeName(re.ErrorCode))
		}
		return nil, fmt.Errorf("%w: provider %q token endpoint failed", errProviderUnavailable, p.cfg.Name)
	}
	id := &identity{token: tok}
	var user string
	switch p.cfg.Type {
	case OIDC:
		idt, _ := tok.Extra("id_token").(string)
		if idt == "" {
			return nil, fmt.Errorf("upstream: provider %q returned no id_token", p.cfg.Name)
		}
		info, err := p.verifier.Verify(ctx, idt)
		if err != nil {
			if errors.Is(err, authn.ErrUnavailable) {
				return nil, fmt.Errorf("%w: provider %q keys: %w", errProviderUnavailable, p.cfg.Name, err)
			}
			return nil, fmt.Errorf("upstream: provider %q id_token: %w", p.cfg.Name, err)
		}
		if n, _ := info.Claims["nonce"].(string); n == "" || n != pend.Nonce {
			return nil, fmt.Errorf("upstream: provider %q id_token nonce mismatch", p.cfg.Name)
		}
		user = info.Subject
		id.idToken = idt
	case OAuth2:
		user, err = p.userinfo(ctx, tok)
		if err != nil {
			return nil, err
		}
	}
	if user == "" || len(user) > 255 {
		return nil, fmt.Errorf("upstream: provider %q returned no usable user id", p.cfg.Name)
	}
	id.subject = p.cfg.Name + ":" + user
	return id, nil
}

// userinfo reads the user id from the provider's userinfo endpoint.
func (p *provider) userinfo(ctx context.Context, tok *oauth2.Token) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.UserinfoURL, nil)
	if err != nil {
		return "", fmt.Errorf("upstream: provider %q userinfo: %w", p.cfg.Name, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: provider %q userinfo unreachable", errProviderUnavailable, p.cfg.Name)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode >= 500 {
			return "", fmt.Errorf("%w: provider %q userinfo status %d", errProviderUnavailable, p.cfg.Name, resp.StatusCode)
		}
		return "", fmt.Errorf("upstream: provider %q userinfo status %d", p.cfg.Name, resp.StatusCode)
	}
	body, err := discovery.ReadLimited(resp.Body, maxUserinfoBytes)
	if err != nil {
		return "", fmt.Errorf("upstream: provider %q userinfo: %w", p.cfg.Name, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return "", fmt.Errorf("upstream: provider %q userinfo is not a JSON object", p.cfg.Name)
	}
	field := p.cfg.UserIDField
	if field == "" {
		field = "id"
	}
	raw := m[field]
	var sv string
	if json.Unmarshal(raw, &sv) == nil {
		return sv, nil
	}
	var nv json.Number
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if dec.Decode(&nv) == nil {
		if _, err := strconv.ParseInt(nv.String(), 10, 64); err == nil {
			return nv.String(), nil
		}
	}
	return "", fmt.Errorf("upstream: provider %q userinfo has no string or integer %q", p.cfg.Name, safeName(field))
}
