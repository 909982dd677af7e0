package upstream

// Temporary seam for the shared outbound guard (internal/outbound, being
// built on another branch): the same method set, so the merge replaces this
// file with calls to outbound.New, Guard.Check, Guard.Send and outbound.Refuse.

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/credentials"
	"github.com/mcpauth-go/mcpauth/internal/netutil"
)

// ErrDestinationNotAllowed is returned (wrapped) when a [Transport] refuses
// to send the upstream token to a request's destination: a host outside
// TransportConfig.Hosts, plain http to a non-loopback host without
// InsecureAllowHTTP, or (without Hosts) a redirect to another host.
var ErrDestinationNotAllowed = errors.New("upstream: destination not allowed for the upstream token")

// ErrPassthrough is returned (wrapped) when the outgoing request carries the
// inbound access token outside the Authorization header the Transport
// replaces (MCP forbids token passthrough).
var ErrPassthrough = credentials.ErrTokenPassthrough

type guard struct {
	hosts     map[string]bool
	allowHTTP bool
}

func newGuard(hosts []string, allowHTTP bool) (*guard, error) {
	g := &guard{allowHTTP: allowHTTP}
	if len(hosts) > 0 {
		g.hosts = make(map[string]bool, len(hosts))
		for _, h := range hosts {
			if h == "" || strings.ContainsAny(h, "/?#@ \t\r\n") {
				return nil, fmt.Errorf("upstream: Hosts entry %q is not a host or host:port", h)
			}
			g.hosts[strings.ToLower(h)] = true
		}
	}
	return g, nil
}

func inboundToken(req *http.Request) string {
	info, ok := authn.FromContext(req.Context())
	if !ok {
		return ""
	}
	return info.Token()
}

func (g *guard) check(req *http.Request) error {
	u := req.URL
	if u == nil {
		return fmt.Errorf("%w: request has no URL", ErrDestinationNotAllowed)
	}
	host := u.Hostname()
	if g.hosts != nil && !g.hosts[strings.ToLower(u.Host)] && !g.hosts[strings.ToLower(host)] {
		return fmt.Errorf("%w: host %q is not in Hosts", ErrDestinationNotAllowed, u.Host)
	}
	if g.hosts == nil && req.Response != nil && req.Response.Request != nil {
		first := req.Response.Request
		for first.Response != nil && first.Response.Request != nil {
			first = first.Response.Request
		}
		if first.URL != nil {
			from, to := strings.ToLower(first.URL.Hostname()), strings.ToLower(host)
			if to != from && !strings.HasSuffix(to, "."+from) {
				return fmt.Errorf("%w: redirect from host %q to %q", ErrDestinationNotAllowed, from, to)
			}
		}
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !g.allowHTTP && !netutil.IsLoopbackHost(host) {
			return fmt.Errorf("%w: plain http to non-loopback host %q", ErrDestinationNotAllowed, u.Host)
		}
	default:
		return fmt.Errorf("%w: URL scheme %q", ErrDestinationNotAllowed, u.Scheme)
	}
	// The owned header is replaced, so it is not checked.
	probe := *req
	probe.Header = req.Header.Clone()
	probe.Header.Del("Authorization")
	if err := credentials.CheckPassthrough(&probe); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	return nil
}

func (g *guard) send(base http.RoundTripper, req *http.Request, value string) (*http.Response, error) {
	r2 := new(http.Request)
	*r2 = *req
	h := make(http.Header, len(req.Header)+1)
	for k, vv := range req.Header {
		if strings.EqualFold(k, "Authorization") {
			continue
		}
		h[k] = vv[:len(vv):len(vv)]
	}
	h["Authorization"] = []string{value}
	r2.Header = h
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r2)
}

func refuse(req *http.Request, err error) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return nil, err
}
