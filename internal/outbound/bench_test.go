package outbound

import (
	"net/http"
	"testing"
)

type nopTransport struct{ resp *http.Response }

func (n nopTransport) RoundTrip(*http.Request) (*http.Response, error) { return n.resp, nil }

// benchRequest is a typical backend call made under a verified identity.
func benchRequest(b *testing.B) *http.Request {
	req, err := http.NewRequest(http.MethodPost, "https://backend.internal/v1/tools?x=1", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("User-Agent", "mcp-server/1.0")
	req.Header.Set("Mcp-Session-Id", "3b1f5c0e-session")
	req.Header.Set("Cookie", "theme=dark; session=3b1f5c0e; lang=en")
	req.Header.Set("Authorization", "Bearer copied-by-the-handler")
	return req
}

// benchToken has the size of a typical RS256 JWT access token.
const benchToken = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLTEiLCJhdWQiOiJhcGkiLCJleHAiOjE3MDAwMDAwMDB9.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJl"

// BenchmarkCheck is the whole guard before sending: destination and
// passthrough.
func BenchmarkCheck(b *testing.B) {
	g, _ := New(Config{Header: "Authorization"})
	req := benchRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := g.Check(req, benchToken); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSend is the clone, the header replacement and the check of the
// credential, with a base transport that does nothing.
func BenchmarkSend(b *testing.B) {
	g, _ := New(Config{Header: "Authorization"})
	req := benchRequest(b)
	base := nopTransport{resp: &http.Response{StatusCode: 200, Body: http.NoBody}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Send(base, req, "Bearer backend-token", benchToken); err != nil {
			b.Fatal(err)
		}
	}
}
