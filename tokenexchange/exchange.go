package tokenexchange

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcpauth-go/mcpauth/internal/discovery"
)

// exchange performs one STS call. It never returns an error that contains a
// token or the client secret.
func (t *Transport) exchange(ctx context.Context, r request) (*Token, error) {
	tokenURL, err := t.tokenURL(ctx)
	if err != nil {
		return nil, err
	}
	form := url.Values{}
	enc, err := t.encode(form, r, tokenURL)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("tokenexchange: building token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if enc.basicUser != "" {
		req.SetBasicAuth(enc.basicUser, enc.basicPass)
	}
	// expires_in counts from issuance, which precedes the answer's arrival.
	sent := t.now()
	resp, err := t.client.Do(req)
	if err != nil {
		// *url.Error names the method, URL and cause; none carries a token.
		return nil, fmt.Errorf("%w: token request: %w", ErrRetryable, err)
	}
	defer resp.Body.Close()
	body, err := discovery.ReadLimited(resp.Body, MaxResponseSize)
	if err != nil {
		return nil, fmt.Errorf("%w: reading token response: %w", ErrRetryable, err)
	}
	secrets := enc.secrets(r, t.cfg.ClientSecret)
	if resp.StatusCode != http.StatusOK {
		e := &Error{StatusCode: resp.StatusCode}
		var er errorResponse
		if json.Unmarshal(body, &er) == nil {
			e.Code = sanitize(er.Error, secrets...)
			e.Description = sanitize(er.Description, secrets...)
			e.URI = sanitize(er.URI, secrets...)
		}
		return nil, e
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		// The JSON error text is dropped: it may quote the body.
		return nil, fmt.Errorf("%w: token response is not valid JSON", ErrRetryable)
	}
	if tr.AccessToken == "" {
		return nil, fmt.Errorf("%w: token response has no access_token", ErrRetryable)
	}
	// An STS that hands back the subject (or actor) token, as a no-op
	// exchange would, must not make this transport forward it.
	if tr.AccessToken == r.subjectToken || tr.AccessToken == r.actorToken {
		return nil, fmt.Errorf("tokenexchange: token endpoint issued the subject or actor token itself: %w", ErrPassthrough)
	}
	secrets = append(secrets, tr.AccessToken, tr.RefreshToken)
	if tr.IssuedTokenType != t.requestedTokenType {
		return nil, fmt.Errorf("tokenexchange: issued_token_type %q, requested %q",
			sanitize(tr.IssuedTokenType, secrets...), t.requestedTokenType)
	}
	// RFC 8693 §2.2.1: token_type is Bearer for a bearer access token, N_A
	// when the issued token is not an access token.
	switch {
	case strings.EqualFold(tr.TokenType, "Bearer"):
		tr.TokenType = "Bearer"
	case tr.TokenType == "N_A" && t.requestedTokenType != TokenTypeAccessToken:
	default:
		return nil, fmt.Errorf("tokenexchange: unsupported token_type %q", sanitize(tr.TokenType, secrets...))
	}
	tok := &Token{
		AccessToken:     tr.AccessToken,
		IssuedTokenType: tr.IssuedTokenType,
		TokenType:       tr.TokenType,
		RefreshToken:    tr.RefreshToken,
	}
	if tr.ExpiresIn.set {
		tok.Expiry = sent.Add(time.Duration(tr.ExpiresIn.seconds) * time.Second)
	}
	if tr.Scope != "" {
		tok.Scopes = strings.Fields(tr.Scope)
	}
	return tok, nil
}

// tokenURL returns the configured or discovered token endpoint. Discovery is
// retried on the next exchange after a failure.
func (t *Transport) tokenURL(ctx context.Context) (string, error) {
	if t.cfg.TokenURL != "" {
		return t.cfg.TokenURL, nil
	}
	t.discMu.Lock()
	defer t.discMu.Unlock()
	if t.discovered != "" {
		return t.discovered, nil
	}
	md, err := discovery.Fetch(ctx, t.client, t.cfg.Issuer)
	if err != nil {
		return "", fmt.Errorf("%w: discovering token endpoint: %w", ErrRetryable, err)
	}
	if md.TokenEndpoint == "" {
		return "", fmt.Errorf("tokenexchange: issuer metadata has no token_endpoint")
	}
	if err := checkEndpoint(md.TokenEndpoint, t.cfg.InsecureAllowHTTP); err != nil {
		return "", fmt.Errorf("tokenexchange: discovered token_endpoint: %w", err)
	}
	t.discovered = md.TokenEndpoint
	return t.discovered, nil
}
