package middleware

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// CheckOrigin returns a middleware that guards an MCP endpoint against DNS
// rebinding, as the MCP Streamable HTTP transport requires (2026-07-28,
// "Security Warning"): a request whose Origin header is present but not one
// of allowed gets 403 with a JSON-RPC error without id, and never reaches
// next. Requests without Origin (non-browser clients) pass.
//
// Each allowed entry is an origin, "scheme://host[:port]", compared with
// case-insensitive scheme and host and an exact port; "*" allows every
// origin (only for a server that expects browsers anywhere and relies on
// bearer tokens alone). The "null" origin is never allowed unless "*" is.
// CheckOrigin panics on an entry that is not an origin, at construction.
func CheckOrigin(allowed []string) func(http.Handler) http.Handler {
	mw, err := checkOrigin(allowed)
	if err != nil {
		panic(fmt.Sprintf("middleware: CheckOrigin: %v", err))
	}
	return mw
}

// checkOrigin is [CheckOrigin] returning an error for an entry that is not
// an origin, for [Protect].
func checkOrigin(allowed []string) (func(http.Handler) http.Handler, error) {
	set := make(map[string]bool, len(allowed))
	all := false
	for _, o := range allowed {
		if o == "*" {
			all = true
			continue
		}
		n, err := normalizeOrigin(o)
		if err != nil {
			return nil, err
		}
		set[n] = true
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origins := r.Header.Values("Origin")
			if len(origins) == 0 || all {
				next.ServeHTTP(w, r)
				return
			}
			if len(origins) == 1 {
				if n, err := normalizeOrigin(origins[0]); err == nil && set[n] {
					next.ServeHTTP(w, r)
					return
				}
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Origin not allowed"}}`))
		})
	}, nil
}

// normalizeOrigin checks that o is a serialized origin and lower-cases its
// scheme and host.
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not an origin (scheme://host[:port])", o)
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), nil
}

// resourceOrigin is the origin of the protected resource's URI.
func resourceOrigin(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", err
	}
	return normalizeOrigin(u.Scheme + "://" + u.Host)
}
