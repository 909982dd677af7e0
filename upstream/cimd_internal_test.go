package upstream

import (
	"net/netip"
	"testing"
)

// TestMetadataURLHostIsASCII: a Client ID Metadata Document URL is the
// client_id the consent page shows, so its host must not render as
// another's (an IDN homograph, percent-encoded or not, or invisible
// characters); an IDN client_id is written in its xn-- form. The fetch
// itself cannot be driven from a test (the host would have to resolve), so
// the rule is checked where the server applies it.
func TestMetadataURLHostIsASCII(t *testing.T) {
	for id, want := range map[string]bool{
		"https://app.example.com/client.json":        true,
		"https://xn--pp-8cd.example.com/client.json": true,
		"https://[2001:db8::1]/client.json":          true,
		"https://\u0430pp.example.com/client.json":   false,
		"https://%D0%B0pp.example.com/client.json":   false,
		"https://app.example.com\u200b/client.json":  false,
		"https://app.example.com\u202e/client.json":  false,
		"https://\uff41pp.example.com/client.json":   false,
		"https://app.example.com/\u202enosj.tneilc":  false,
		"https://app.example.com/client.json?\u200b": false,
		"https://app.example.com/client json":        false,
		"https://app.example.com/client.json#f":      false,
		"https://user@app.example.com/client.json":   false,
		"https://app.example.com/a/../client.json":   false,
		"http://app.example.com/client.json":         false,
		"https://app.example.com":                    false,
		"https://app.example.com/":                   false,
	} {
		if got := isMetadataURL(id); got != want {
			t.Errorf("isMetadataURL(%q) = %v, want %v", id, got, want)
		}
	}
}

// TestFetcherRefusesEmbeddedIPv4 checks the address rule on addresses that
// embed an IPv4 address or are deprecated site-local: IPv4-compatible
// (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d) and fec0::/10 route to
// private or loopback hosts on some systems, though Go counts them as
// global unicast. (This machine does not route them, so no HTTP test can
// show the reach; the rule is checked where the dialer applies it.)
func TestFetcherRefusesEmbeddedIPv4(t *testing.T) {
	f := newMetadataFetcher(ClientMetadataConfig{})
	for a, want := range map[string]bool{
		"93.184.215.14": true, "2606:2800:21f:cb07:6820:80da:af6b:8b2c": true,
		"127.0.0.1": false, "::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false, "::1": false, "0.0.0.0": false, "::": false,
		"::7f00:1": false, "::a00:1": false, "::ffff:0:7f00:1": false, "::ffff:0:a00:1": false, "fec0::1": false,
		"64:ff9b::7f00:1": false, "2002:7f00:1::": false, "169.254.169.254": false, "fd00:ec2::254": false, "fe80::1": false,
		"100.64.0.1": false, "ff02::1": false,
	} {
		if got := f.allowed(netip.MustParseAddr(a)); got != want {
			t.Errorf("allowed(%s) = %v, want %v", a, got, want)
		}
	}
}
