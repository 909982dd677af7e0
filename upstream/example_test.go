package upstream_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"

	"github.com/mcpauth-go/mcpauth/upstream"
	"github.com/mcpauth-go/mcpauth/upstream/upstreamtest"
)

// An authorization server for one MCP server, logging users in at an
// OpenID provider (here a throwaway one).
func ExampleNewServer() {
	idp := upstreamtest.NewProvider(nil, upstreamtest.Config{})
	defer idp.Close()

	as, err := upstream.NewServer(upstream.Config{
		Issuer:        "https://mcp.example.com",
		Resources:     []string{"https://mcp.example.com/mcp"},
		Upstreams:     []upstream.Provider{idp.OIDC("corp")},
		DefaultScopes: []string{"mcp:tools"},
		Logger:        slog.New(slog.DiscardHandler), // a generated development key would be warned about
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer as.Close()

	w := httptest.NewRecorder()
	as.ServeHTTP(w, httptest.NewRequest("GET", "/.well-known/oauth-authorization-server", nil))
	var md struct {
		Issuer   string   `json:"issuer"`
		Token    string   `json:"token_endpoint"`
		Methods  []string `json:"code_challenge_methods_supported"`
		IssParam bool     `json:"authorization_response_iss_parameter_supported"`
	}
	_ = json.NewDecoder(w.Body).Decode(&md)
	fmt.Println(md.Issuer)
	fmt.Println(md.Token)
	fmt.Println(md.Methods, md.IssParam)
	// Output:
	// https://mcp.example.com
	// https://mcp.example.com/token
	// [S256] true
}
