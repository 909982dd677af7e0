// Package discovery fetches OAuth 2.0 Authorization Server Metadata
// (RFC 8414) and OpenID Connect Discovery 1.0 documents, in the order the MCP
// authorization specification (2026-07-28, "Authorization Server Metadata
// Discovery") prescribes, and validates that the document's issuer is
// identical to the issuer it was fetched for.
package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// MaxDocumentSize caps a metadata document (1 MiB).
const MaxDocumentSize = 1 << 20

// Metadata is the subset of RFC 8414 / OIDC Discovery fields this module uses.
type Metadata struct {
	Issuer                                 string   `json:"issuer"`
	AuthorizationEndpoint                  string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                          string   `json:"token_endpoint,omitempty"`
	JWKSURI                                string   `json:"jwks_uri,omitempty"`
	IntrospectionEndpoint                  string   `json:"introspection_endpoint,omitempty"`
	RegistrationEndpoint                   string   `json:"registration_endpoint,omitempty"`
	ScopesSupported                        []string `json:"scopes_supported,omitempty"`
	GrantTypesSupported                    []string `json:"grant_types_supported,omitempty"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	CodeChallengeMethodsSupported          []string `json:"code_challenge_methods_supported,omitempty"`
	AuthorizationResponseIssParamSupported bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
}

// ErrIssuerMismatch is returned when a document names another issuer.
var ErrIssuerMismatch = errors.New("discovery: metadata issuer does not match")

// URLs returns the well-known URLs to try for issuer, in priority order.
func URLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery: invalid issuer URL: %w", err)
	}
	if u.Scheme == "" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("discovery: issuer must be an absolute URL without query or fragment")
	}
	origin := u.Scheme + "://" + u.Host
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	if path == "" {
		return []string{
			origin + "/.well-known/oauth-authorization-server",
			origin + "/.well-known/openid-configuration",
		}, nil
	}
	return []string{
		origin + "/.well-known/oauth-authorization-server" + path,
		origin + "/.well-known/openid-configuration" + path,
		origin + path + "/.well-known/openid-configuration",
	}, nil
}

// Fetch retrieves and validates the metadata of issuer, trying each URL of
// [URLs] in turn. A document whose issuer differs is rejected (and the next
// URL is not tried with it). The error says which URLs failed and why.
func Fetch(ctx context.Context, client *http.Client, issuer string) (*Metadata, error) {
	urls, err := URLs(issuer)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = http.DefaultClient
	}
	var errs []error
	for _, u := range urls {
		md, err := fetchOne(ctx, client, u)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if md.Issuer != issuer {
			return nil, fmt.Errorf("%w: fetched for %q from %s, document says %q", ErrIssuerMismatch, issuer, u, md.Issuer)
		}
		return md, nil
	}
	return nil, fmt.Errorf("discovery: no metadata for issuer %q: %w", issuer, errors.Join(errs...))
}

func fetchOne(ctx context.Context, client *http.Client, u string) (*Metadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("discovery: %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discovery: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("discovery: GET %s: status %d", u, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, fmt.Errorf("discovery: GET %s: content type %q is not JSON", u, ct)
		}
	}
	body, err := ReadLimited(resp.Body, MaxDocumentSize)
	if err != nil {
		return nil, fmt.Errorf("discovery: GET %s: %w", u, err)
	}
	var md Metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, fmt.Errorf("discovery: GET %s: invalid JSON: %w", u, err)
	}
	return &md, nil
}

// ErrTooLarge is returned by ReadLimited when the body exceeds its cap.
var ErrTooLarge = errors.New("response body too large")

// ReadLimited reads r to the end, failing with ErrTooLarge past max bytes.
func ReadLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w (limit %d bytes)", ErrTooLarge, max)
	}
	return b, nil
}
