// Package netutil holds the one loopback test and the one https-or-loopback
// rule every package uses to decide where plain http is tolerated (local
// development and tests), so the rule cannot drift between packages.
package netutil

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// IsLoopbackHost reports whether host (without port or brackets) is
// "localhost" or a loopback IP literal (127.0.0.0/8, ::1, or an IPv4-mapped
// loopback). A zoned address is not, nor is a name such as
// "127.example.com": it resolves wherever its owner wants.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.IsLoopback()
}

// CheckHTTPS is the https-or-loopback rule: it returns nil when u's scheme
// is https, or http with a loopback host ([IsLoopbackHost]) or allowHTTP
// set, and otherwise an error naming the scheme or host (without a package
// prefix: the caller adds its own). RFC 6750 §5.3 and RFC 9728 §3 require
// TLS; loopback is tolerated for local development and tests. It looks at
// the scheme and host only: the callers check the rest of their URLs'
// syntax themselves.
func CheckHTTPS(u *url.URL, allowHTTP bool) error {
	switch {
	case strings.EqualFold(u.Scheme, "https"):
		return nil
	case strings.EqualFold(u.Scheme, "http"):
		if allowHTTP || IsLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("plain http is allowed only on loopback hosts (127.0.0.0/8, ::1, localhost); use https for host %q", u.Hostname())
	}
	return fmt.Errorf("scheme %q is not https", u.Scheme)
}
