// Command quickstart runs an MCP server protected by mcpauth.
package main

import (
	_ "github.com/mcpauth-go/mcpauth/authn"
	_ "github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {}
