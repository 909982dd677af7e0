package authn_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

// A Verifier checks a token against the issuer's keys, discovered from the
// issuer on first use.
func ExampleVerifier_Verify() {
	idp := idptest.NewServer(nil, idptest.Config{Audience: []string{"https://mcp.example.com/mcp"}})
	defer idp.Close()

	v, err := authn.NewVerifier(authn.Config{
		Issuer:     idp.Issuer(),
		Audience:   []string{"https://mcp.example.com/mcp"},
		HTTPClient: idp.Client(),
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()

	info, err := v.Verify(context.Background(), idp.Token(map[string]any{"sub": "alice", "scope": "tools:read"}))
	fmt.Println(info.Subject, info.Scopes, err)

	_, err = v.Verify(context.Background(), idp.Token(map[string]any{"aud": "https://other.example"}))
	fmt.Println(errors.Is(err, authn.ErrInvalidToken))
	// Output:
	// alice [tools:read] <nil>
	// true
}

// Middleware answers requests without a valid token with the challenge MCP
// clients follow to the Protected Resource Metadata.
func ExampleMiddleware() {
	v := authn.VerifierFunc(func(ctx context.Context, token string) (*authn.TokenInfo, error) {
		return nil, authn.ErrInvalidToken // a stand-in: use *authn.Verifier
	})
	protect := authn.Middleware(v, authn.Options{
		ResourceMetadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
		Scopes:              []string{"mcp:tools"},
	})
	h := protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := authn.FromContext(r.Context())
		fmt.Fprintln(w, "hello", info.Subject)
	}))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/mcp", nil))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	// Output:
	// 401 Bearer scope="mcp:tools", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
}

// With fixed keys, a StaticKeySet replaces the issuer's JWKS: the Verifier
// fetches nothing.
func ExampleParseJWKS() {
	idp := idptest.NewServer(nil, idptest.Config{Audience: []string{"https://mcp.example.com/mcp"}})
	defer idp.Close()

	keys, err := authn.ParseJWKS(idp.JWKS()) // e.g. a JWKS document shipped with the deployment
	if err != nil {
		panic(err)
	}
	v, err := authn.NewVerifier(authn.Config{
		Issuer:   idp.Issuer(),
		Audience: []string{"https://mcp.example.com/mcp"},
		KeySet:   keys,
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()

	info, err := v.Verify(context.Background(), idp.Token(map[string]any{"sub": "alice"}))
	fmt.Println(info.Subject, err, idp.Requests(idptest.EndpointJWKS))
	// Output: alice <nil> 0
}

// Ready fetches discovery and keys at start, so a mistyped issuer fails the
// deployment rather than the first request.
func ExampleVerifier_Ready() {
	idp := idptest.NewServer(nil, idptest.Config{})
	defer idp.Close()

	v, err := authn.NewVerifier(authn.Config{
		Issuer:     idp.Issuer() + "/typo",
		Audience:   []string{"https://mcp.example.com/mcp"},
		HTTPClient: idp.Client(),
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()
	err = v.Ready(context.Background())
	fmt.Println(errors.Is(err, authn.ErrUnavailable))
	// Output: true
}
