package upstream

import "testing"

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
