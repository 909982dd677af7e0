package upstream

import "testing"

// TestClientIDStartsAlphanumeric: registered client IDs never start with
// "-" (an option on a command line) or "_"; 2000 draws make a leading
// "-" or "_" from plain base64url all but certain (1 - (62/64)^2000).
func TestClientIDStartsAlphanumeric(t *testing.T) {
	for range 2000 {
		if id := newClientID(); id[0] == '-' || id[0] == '_' || len(id) != 32 {
			t.Fatalf("client_id %q", id)
		}
	}
}
