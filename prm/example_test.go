package prm_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/mcpauth-go/mcpauth/prm"
)

// Serve the metadata of an MCP endpoint at its RFC 9728 well-known path.
func ExampleNewHandler() {
	md := prm.Metadata{
		Resource:               "https://mcp.example.com/mcp",
		AuthorizationServers:   []string{"https://login.example.com"},
		ScopesSupported:        []string{"mcp:tools"},
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "Example MCP server",
	}
	h, err := prm.NewHandler(md)
	if err != nil {
		fmt.Println(err)
		return
	}
	path, _ := prm.WellKnownPath(md.Resource)
	mux := http.NewServeMux()
	mux.Handle(path, h)

	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(path)
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"))
	fmt.Println(string(body))
	// Output:
	// /.well-known/oauth-protected-resource/mcp
	// 200 OK application/json
	// {"resource":"https://mcp.example.com/mcp","authorization_servers":["https://login.example.com"],"scopes_supported":["mcp:tools"],"bearer_methods_supported":["header"],"resource_name":"Example MCP server"}
}

// The resource_metadata URL for 401 challenges: the well-known string goes
// between the host and the resource's path.
func ExampleMetadataURL() {
	for _, resource := range []string{
		"https://mcp.example.com",
		"https://mcp.example.com/mcp",
		"http://127.0.0.1:8080/mcp",
	} {
		u, err := prm.MetadataURL(resource)
		fmt.Println(u, err)
	}
	_, err := prm.MetadataURL("http://mcp.example.com/mcp")
	fmt.Println(err)
	// Output:
	// https://mcp.example.com/.well-known/oauth-protected-resource <nil>
	// https://mcp.example.com/.well-known/oauth-protected-resource/mcp <nil>
	// http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp <nil>
	// prm: resource "http://mcp.example.com/mcp": plain http is allowed only on loopback hosts (127.0.0.0/8, ::1, localhost); use https for host "mcp.example.com"
}

// Validation names the member at fault.
func ExampleMetadata_Validate() {
	md := prm.Metadata{
		Resource:               "https://mcp.example.com/mcp",
		AuthorizationServers:   []string{"https://login.example.com"},
		BearerMethodsSupported: []string{"header", "query"},
	}
	fmt.Println(md.Validate())
	// Output:
	// prm: bearer_methods_supported[1]: "query" is not allowed: MCP forbids access tokens in the URI query string
}
