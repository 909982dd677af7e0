// Package netutil holds the one loopback test every package uses to decide
// where plain http is tolerated (local development and tests), so the rule
// cannot drift between packages.
package netutil

import (
	"net/netip"
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
