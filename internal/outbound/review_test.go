package outbound

import (
	"errors"
	"net/http"
	"testing"
)

// TestCheckPassthroughHeaderNames: a header or trailer name is sent on the
// wire like its value (a JWT is made of token characters only, so it is a
// valid field name): the inbound token there is passthrough too.
func TestCheckPassthroughHeaderNames(t *testing.T) {
	g := mustNew(t, Config{Prefix: "test", Header: "Authorization"})
	const jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	for name, mod := range map[string]func(*http.Request){
		"header name":           func(r *http.Request) { r.Header[jwt] = []string{"1"} },
		"header name with text": func(r *http.Request) { r.Header["X-"+jwt] = []string{"1"} },
		"trailer name":          func(r *http.Request) { r.Trailer = http.Header{jwt: {"1"}} },
		"short token as name":   nil,
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "https://b.example/", nil)
			token := jwt
			if mod == nil {
				token = "canary-token"
				req.Header["Canary-Token"] = []string{"1"}
			} else {
				mod(req)
			}
			if err := g.CheckPassthrough(req, token); !errors.Is(err, ErrPassthrough) {
				t.Fatalf("CheckPassthrough = %v, want ErrPassthrough", err)
			}
		})
	}
}
