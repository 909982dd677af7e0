// Package middleware composes the inbound mcpauth handlers around an MCP
// server's http.Handler.
//
// [Chain] stacks any func(http.Handler) http.Handler middlewares, first
// outermost, like chi's Chain. [Protect] is the one-call setup for the
// common case: it serves the server's OAuth 2.0 Protected Resource Metadata
// (RFC 9728, package prm) at its well-known path, unauthenticated, and sends
// every other request through bearer token verification (RFC 6750 and
// RFC 9728 §5.1 challenges, package authn), then an optional authorizer
// (e.g. package authz), then the MCP handler:
//
//	request ─┬─ exactly the PRM path ─> prm handler (GET/HEAD/OPTIONS, CORS, no auth)
//	         └─ anything else ────────> authn.Middleware -> Authorizer -> MCP handler
//
// Only the one well-known path computed from the configured resource
// identifier bypasses authentication, compared byte for byte with the
// request's escaped path: no prefix, no case folding, no path cleaning. A
// request for any other path, including ones that merely start with the
// well-known path, must carry a valid token.
//
// Protect does not answer CORS preflight requests for the MCP endpoint
// itself; a server that browser-based clients call cross-origin wraps the
// handler Protect returns in its own CORS middleware.
package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/prm"
)

// Chain returns a middleware that applies mws in order, the first one
// outermost: Chain(a, b, c)(h) is a(b(c(h))), so a request passes a, then b,
// then c, then h. With no arguments it returns h unchanged. Chain panics if
// one of mws is nil: silently skipping, say, an authentication middleware
// would be worse than failing at start-up.
func Chain(mws ...func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	mws = slices.Clone(mws) // later changes to the caller's slice do not matter
	for i, mw := range mws {
		if mw == nil {
			panic(fmt.Sprintf("middleware: Chain: middleware %d is nil", i))
		}
	}
	return func(h http.Handler) http.Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			h = mws[i](h)
		}
		return h
	}
}

// Authorizer decides, after authentication, whether a request may reach the
// MCP handler. *authz.Authorizer implements it; so can a five-line custom
// policy. Middleware is called once, by [Protect]; the handler it returns
// finds the verified identity with [authn.FromContext].
type Authorizer interface {
	Middleware(next http.Handler) http.Handler
}

// resourceMetadataAuthorizer is an Authorizer that answers challenges of
// its own (authz's 403 insufficient_scope step-up) and so wants the URL of
// the metadata document Protect serves; *authz.Authorizer implements it.
// Protect calls MiddlewareWithResourceMetadata instead of Middleware.
type resourceMetadataAuthorizer interface {
	MiddlewareWithResourceMetadata(next http.Handler, resourceMetadataURL string) http.Handler
}

// Config configures [Protect]. Metadata and Verifier are required; every
// other field's zero value is safe.
type Config struct {
	// Metadata is the RFC 9728 document served, unauthenticated, at
	// prm.WellKnownPath(Metadata.Resource). Required; validated by Protect
	// as prm.NewHandler does.
	Metadata prm.Metadata

	// PRM tunes the metadata handler (Cache-Control). The zero value is
	// prm's default.
	PRM prm.Options

	// Verifier checks bearer tokens, e.g. an *authn.Verifier or
	// *authn.MultiVerifier. Required.
	Verifier authn.TokenVerifier

	// Authn configures authn.Middleware. If Authn.ResourceMetadataURL is
	// empty it is set to prm.MetadataURL(Metadata.Resource), so challenges
	// point at the document Protect serves.
	Authn authn.Options

	// Authorizer, if non-nil, runs after authentication and before the MCP
	// handler, e.g. an *authz.Authorizer. If nil, every authenticated
	// request (with the scopes Authn requires) reaches the handler. If it
	// also has a method MiddlewareWithResourceMetadata(next http.Handler,
	// resourceMetadataURL string) http.Handler (as *authz.Authorizer does),
	// Protect calls that one with the resource_metadata URL of its own
	// challenges, so the authorizer's step-up challenges carry it too.
	Authorizer Authorizer

	// AllowedOrigins are the browser origins (scheme://host[:port]) allowed
	// to call the MCP endpoint, besides the resource's own origin, which is
	// always allowed. A request with any other Origin header gets 403 before
	// authentication (DNS-rebinding protection, MCP Streamable HTTP
	// transport); requests without Origin are unaffected. "*" allows every
	// origin. The metadata document is not subject to it (it is public and
	// served with CORS).
	AllowedOrigins []string
}

// Protect returns next wrapped as Config describes: requests for exactly
// the metadata's well-known path get the metadata document (see
// prm.NewHandler); every other request goes through CheckOrigin (the
// resource's own origin and cfg.AllowedOrigins), authn.Middleware, then
// cfg.Authorizer (if any), then next.
//
// Protect validates everything at construction and returns an error,
// prefixed "middleware: ", for a nil next, a missing (or typed-nil)
// Verifier or Authorizer, invalid Metadata (which also matches
// prm.ErrInvalidMetadata), or Metadata the Verifier disagrees with
// ([ErrMisconfigured]: the resource is not among the verifier's audiences,
// or a verifier's issuer is not in authorization_servers; checked for
// verifiers that expose them, as *authn.Verifier and *authn.MultiVerifier
// do). The returned handler is safe for concurrent use.
func Protect(next http.Handler, cfg Config) (http.Handler, error) {
	if isNil(next) {
		return nil, errors.New("middleware: Protect: next handler is nil")
	}
	if isNil(cfg.Verifier) {
		return nil, errors.New("middleware: Config.Verifier is required")
	}
	if cfg.Authorizer != nil && isNil(cfg.Authorizer) {
		return nil, fmt.Errorf("middleware: Config.Authorizer is a nil %T; leave the field nil for no authorization", cfg.Authorizer)
	}
	metadata, err := prm.NewHandlerWithOptions(cfg.Metadata, cfg.PRM)
	if err != nil {
		return nil, fmt.Errorf("middleware: Config.Metadata: %w", err)
	}
	path, err := prm.WellKnownPath(cfg.Metadata.Resource)
	if err != nil {
		return nil, fmt.Errorf("middleware: Config.Metadata: %w", err) // unreachable: validated above
	}
	if err := checkAgreement(cfg.Verifier, cfg.Metadata); err != nil {
		return nil, err
	}
	opts, err := authnOptions(cfg)
	if err != nil {
		return nil, err
	}

	inner := next
	if cfg.Authorizer != nil {
		if rm, ok := cfg.Authorizer.(resourceMetadataAuthorizer); ok {
			inner = rm.MiddlewareWithResourceMetadata(next, opts.ResourceMetadataURL)
		} else {
			inner = cfg.Authorizer.Middleware(next)
		}
		if isNil(inner) {
			return nil, fmt.Errorf("middleware: Config.Authorizer (%T) returned a nil handler", cfg.Authorizer)
		}
	}
	own, err := resourceOrigin(cfg.Metadata.Resource)
	if err != nil {
		return nil, fmt.Errorf("middleware: Config.Metadata: %w", err) // unreachable: validated above
	}
	// own is already an origin, so an error names an AllowedOrigins entry.
	origins, err := checkOrigin(append([]string{own}, cfg.AllowedOrigins...))
	if err != nil {
		return nil, fmt.Errorf("middleware: Config.AllowedOrigins: %w", err)
	}
	return &protected{
		metadataPath: path,
		metadata:     metadata,
		next:         Chain(origins, authn.Middleware(cfg.Verifier, opts))(inner),
	}, nil
}

// authnOptions returns cfg.Authn with ResourceMetadataURL defaulted.
func authnOptions(cfg Config) (authn.Options, error) {
	opts := cfg.Authn
	if opts.ResourceMetadataURL == "" {
		u, err := prm.MetadataURL(cfg.Metadata.Resource)
		if err != nil {
			return authn.Options{}, fmt.Errorf("middleware: Config.Metadata: %w", err)
		}
		opts.ResourceMetadataURL = u
	}
	return opts, nil
}

type protected struct {
	metadataPath string // escaped, exactly as prm.WellKnownPath returns it
	metadata     http.Handler
	next         http.Handler // authn -> authorizer -> MCP handler
}

func (p *protected) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Exact comparison on the escaped path: a request that only decodes,
	// cleans or case-folds to the metadata path is authenticated like any
	// other. EscapedPath allocates nothing for an ordinary path.
	if r.URL.EscapedPath() == p.metadataPath {
		p.metadata.ServeHTTP(w, r)
		return
	}
	p.next.ServeHTTP(w, r)
}

// isNil reports whether v is nil or an interface holding a nil pointer,
// map, func, channel or slice — a value whose methods would most likely
// panic on the first request.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}
