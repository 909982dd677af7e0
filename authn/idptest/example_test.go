package idptest_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

// A test of your own handler: the fake identity provider issues the tokens
// and serves the keys your verifier discovers, so the handler is tested
// behind the same authn middleware it runs behind in production.
func ExampleNewServer() {
	// In a test, pass t instead of nil and skip the Close.
	idp := idptest.NewServer(nil, idptest.Config{Audience: []string{"https://mcp.example.com/"}})
	defer idp.Close()

	v, err := authn.NewVerifier(authn.Config{
		Issuer:     idp.Issuer(),
		Audience:   []string{"https://mcp.example.com/"},
		HTTPClient: idp.Client(),
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := authn.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s", info.Subject)
	})
	h := authn.Middleware(v, authn.Options{
		ResourceMetadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource",
		Logger:              slog.New(slog.DiscardHandler),
	})(hello)

	call := func(token string) {
		req := httptest.NewRequest(http.MethodPost, "https://mcp.example.com/mcp", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			fmt.Println(rec.Code, "error="+errorParam(rec.Header().Get("WWW-Authenticate")))
			return
		}
		fmt.Println(rec.Code, rec.Body.String())
	}
	call(idp.Token(map[string]any{"sub": "alice"}))
	call(idp.Token(map[string]any{"sub": "alice", "aud": "https://other.example/"}))
	call("")

	// Output:
	// 200 hello alice
	// 401 error=invalid_token
	// 401 error=(none)
}

// Fault injection: make the key set unreachable to test how a verifier
// behaves during an identity provider outage, and count its fetches.
func ExampleServer_SetFault() {
	idp := idptest.NewServer(nil, idptest.Config{})
	defer idp.Close()

	idp.SetFault(idptest.EndpointJWKS, idptest.Fault{Status: http.StatusServiceUnavailable})
	resp, err := idp.Client().Get(idp.JWKSURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, idp.Requests(idptest.EndpointJWKS))

	idp.SetFault(idptest.EndpointJWKS, idptest.Fault{}) // healthy again
	resp, err = idp.Client().Get(idp.JWKSURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, idp.Requests(idptest.EndpointJWKS))

	// Output:
	// 503 1
	// 200 2
}

// Key rotation: after RotateKeys new tokens carry a new kid while the old
// key stays published, until RetireOldKeys.
func ExampleServer_RotateKeys() {
	idp := idptest.NewServer(nil, idptest.Config{Algorithms: []string{"ES256"}})
	defer idp.Close()

	before := idp.KeyID("ES256")
	idp.RotateKeys()
	fmt.Println("kid changed:", idp.KeyID("ES256") != before)
	idp.RetireOldKeys()
	fmt.Println("new kid published:", containsKid(idp.JWKS(), idp.KeyID("ES256")))
	fmt.Println("old kid published:", containsKid(idp.JWKS(), before))

	// Output:
	// kid changed: true
	// new kid published: true
	// old kid published: false
}

// errorParam returns the error parameter of a Bearer challenge, or "(none)".
func errorParam(challenge string) string {
	_, after, ok := strings.Cut(challenge, `error="`)
	if !ok {
		return "(none)"
	}
	v, _, _ := strings.Cut(after, `"`)
	return v
}

func containsKid(jwks []byte, kid string) bool {
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		return false
	}
	for _, k := range set.Keys {
		if k.Kid == kid {
			return true
		}
	}
	return false
}
