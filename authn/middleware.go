package authn

import (
	"log/slog"
	"net/http"
	"time"
)

// Options configures [Middleware].
type Options struct {
	// ResourceMetadataURL is the RFC 9728 Protected Resource Metadata URL
	// sent as resource_metadata in every challenge (see prm.MetadataURL).
	ResourceMetadataURL string

	// Scopes are required for every request.
	Scopes []string

	// ScopesFor, if non-nil, returns additional scopes the given request
	// needs (per-route scopes). It must not read the body.
	ScopesFor func(r *http.Request) []string

	// Realm, if non-empty, is sent as the realm parameter.
	Realm string

	// RetryAfter is sent with 503 responses when verification is
	// unavailable. If zero, 30 seconds.
	RetryAfter time.Duration

	// Logger receives rejection causes (never token material). If nil,
	// slog.Default().
	Logger *slog.Logger
}

// Middleware verifies the bearer token of every request with v (stub).
func Middleware(v TokenVerifier, opts Options) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return next }
}
