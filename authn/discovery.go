package authn

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/mcpauth-go/mcpauth/internal/discovery"
)

// metadataSource is the issuer's metadata (RFC 8414, then OpenID Connect
// Discovery), fetched once and remembered after the first success. Both
// the JWKS key source (jwks_uri) and introspection (introspection_endpoint)
// read it, so a Verifier discovers at most once.
//
// A failure is remembered for retryBackoff, so that during an outage
// requests (one introspection per opaque token) do not each start a
// discovery round. Concurrent callers wait for the one fetch in progress.
type metadataSource struct {
	issuer  string
	client  *http.Client
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time

	mu   sync.Mutex
	md   *discovery.Metadata
	err  error     // the last failure, answered again until fail+retryBackoff
	fail time.Time // when discovery last failed
}

// get returns the issuer's metadata, fetching it on first use.
func (s *metadataSource) get(ctx context.Context) (*discovery.Metadata, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.md != nil {
		return s.md, nil
	}
	if s.err != nil && s.now().Sub(s.fail) < retryBackoff {
		return nil, s.err
	}
	fctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	md, err := discovery.Fetch(fctx, s.client, s.issuer)
	if err != nil {
		s.log.Warn("authn: issuer discovery failed", "issuer", s.issuer, "error", err)
		if ctx.Err() == nil { // not the caller's own cancellation
			s.err, s.fail = err, s.now()
		}
		return nil, err
	}
	s.md, s.err = md, nil
	return md, nil
}

// jwksURL returns the discovered jwks_uri.
func (s *metadataSource) jwksURL(ctx context.Context) (string, error) {
	md, err := s.get(ctx)
	if err != nil {
		return "", err
	}
	if md.JWKSURI == "" {
		return "", fmt.Errorf("authn: issuer metadata of %q has no jwks_uri", s.issuer)
	}
	if err := checkFetchURL(md.JWKSURI); err != nil {
		return "", fmt.Errorf("authn: discovered jwks_uri: %w", err)
	}
	return md.JWKSURI, nil
}

// introspectionEndpoint returns the discovered RFC 7662 endpoint.
func (s *metadataSource) introspectionEndpoint(ctx context.Context) (string, error) {
	md, err := s.get(ctx)
	if err != nil {
		return "", unavailable("issuer discovery failed", err)
	}
	if md.IntrospectionEndpoint == "" {
		return "", unavailable("issuer metadata of "+quoteShort(s.issuer)+" has no introspection_endpoint", nil)
	}
	if err := checkFetchURL(md.IntrospectionEndpoint); err != nil {
		return "", unavailable("discovered introspection_endpoint rejected", err)
	}
	return md.IntrospectionEndpoint, nil
}
