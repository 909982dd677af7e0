package prm

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

// WellKnownPrefix is the RFC 9728 §3 well-known URI string for protected
// resource metadata. The document for a resource with a path is served at
// this prefix followed by that path (see [WellKnownPath]).
const WellKnownPrefix = "/.well-known/oauth-protected-resource"

// DefaultCacheControl is the Cache-Control value sent with the document
// when [Options.CacheControl] is empty: shared caches may keep it for an
// hour. Metadata changes are also announced by the next 401 challenge
// (RFC 9728 §5.2), so a long lifetime is safe.
const DefaultCacheControl = "public, max-age=3600"

// The CORS response headers. The document is public and carries no
// credentials, so any origin may read it (browser-based MCP clients fetch
// it cross-origin). The allowed request headers cover what MCP clients send
// on discovery requests.
const (
	allowMethods = "GET, HEAD, OPTIONS"
	allowHeaders = "Authorization, Content-Type, MCP-Protocol-Version"
	corsMaxAge   = "86400"
)

// Options tunes [NewHandlerWithOptions]. The zero value is what
// [NewHandler] uses.
type Options struct {
	// CacheControl is the Cache-Control header sent with 200 and 304
	// responses. If empty, DefaultCacheControl. Use "no-store" while
	// metadata is still changing.
	CacheControl string
}

// NewHandler validates md with [Metadata.Validate], encodes it once, and
// returns a handler that serves it:
//
//   - GET and HEAD: 200, Content-Type application/json, Cache-Control,
//     a strong ETag (If-None-Match answers 304), and
//     Access-Control-Allow-Origin: *;
//   - OPTIONS: 204 with the CORS preflight headers
//     (Access-Control-Allow-Methods GET, HEAD, OPTIONS;
//     Access-Control-Allow-Headers Authorization, Content-Type,
//     MCP-Protocol-Version);
//   - any other method: 405 with Allow.
//
// The handler does not look at the request path or any request header other
// than If-None-Match: the document is the same for every request, whatever
// its Host or X-Forwarded-* headers say. Mount it at [WellKnownPath] of
// md.Resource. It is safe for concurrent use and does no work per request
// beyond writing headers and the pre-encoded body.
func NewHandler(md Metadata) (http.Handler, error) {
	return NewHandlerWithOptions(md, Options{})
}

// NewHandlerWithOptions is [NewHandler] with options.
func NewHandlerWithOptions(md Metadata, opts Options) (http.Handler, error) {
	if err := md.Validate(); err != nil {
		return nil, err
	}
	cc := opts.CacheControl
	if cc == "" {
		cc = DefaultCacheControl
	}
	for i := 0; i < len(cc); i++ {
		if c := cc[i]; c < ' ' || c == 0x7f {
			return nil, invalidf("Options.CacheControl: control character at byte %d", i)
		}
	}
	// MarshalJSON directly, not json.Marshal, so that an error from an Extra
	// value keeps its "prm: " message instead of encoding/json's wrapper.
	body, err := md.MarshalJSON()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	return &handler{
		body:         body,
		etag:         `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`,
		length:       strconv.Itoa(len(body)),
		cacheControl: cc,
	}, nil
}

type handler struct {
	body         []byte
	etag         string
	length       string
	cacheControl string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		hdr.Set("Cache-Control", h.cacheControl)
		hdr.Set("ETag", h.etag)
		if etagMatch(r.Header.Values("If-None-Match"), h.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		hdr.Set("Content-Type", "application/json")
		hdr.Set("Content-Length", h.length)
		hdr.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(h.body)
		}
	case http.MethodOptions:
		hdr.Set("Allow", allowMethods)
		hdr.Set("Access-Control-Allow-Methods", allowMethods)
		hdr.Set("Access-Control-Allow-Headers", allowHeaders)
		hdr.Set("Access-Control-Max-Age", corsMaxAge)
		w.WriteHeader(http.StatusNoContent)
	default:
		hdr.Set("Allow", allowMethods)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// etagMatch implements If-None-Match's weak comparison (RFC 9110 §13.1.2)
// against one strong entity tag.
func etagMatch(values []string, etag string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
	}
	return false
}

// WellKnownPath returns the path at which the metadata for resource is
// served (RFC 9728 §3.1): [WellKnownPrefix] followed by the resource's path,
// with nothing appended for a bare origin or "/". The path is returned as
// written in resource (percent-encoding preserved); a query in resource is
// not part of the path. Use it to mount the handler from [NewHandler]:
//
//	"https://mcp.example.com"         -> "/.well-known/oauth-protected-resource"
//	"https://mcp.example.com/mcp"     -> "/.well-known/oauth-protected-resource/mcp"
//	"https://mcp.example.com/a/mcp/"  -> "/.well-known/oauth-protected-resource/a/mcp/"
//
// It validates resource as [Metadata.Validate] does.
func WellKnownPath(resource string) (string, error) {
	p, err := parseResource(resource)
	if err != nil {
		return "", err
	}
	return WellKnownPrefix + p.path, nil
}

// MetadataURL returns the absolute URL of the metadata document for
// resource (RFC 9728 §3.1), for the resource_metadata parameter of
// WWW-Authenticate challenges (RFC 9728 §5.1): the well-known string is
// inserted between the host and the path, and a query, if any, is kept:
//
//	"https://mcp.example.com"        -> "https://mcp.example.com/.well-known/oauth-protected-resource"
//	"https://mcp.example.com/mcp"    -> "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
//	"https://mcp.example.com/mcp?t=1"-> "https://mcp.example.com/.well-known/oauth-protected-resource/mcp?t=1"
//
// The result is built from resource alone, never from a request. It
// validates resource as [Metadata.Validate] does.
func MetadataURL(resource string) (string, error) {
	p, err := parseResource(resource)
	if err != nil {
		return "", err
	}
	u := p.scheme + "://" + p.authority + WellKnownPrefix + p.path
	if p.hasQuery {
		u += "?" + p.query
	}
	return u, nil
}
