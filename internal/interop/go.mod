module github.com/mcpauth-go/mcpauth/internal/interop

go 1.26.0

require github.com/mcpauth-go/mcpauth v0.0.0

require github.com/zitadel/oidc/v3 v3.51.17 // indirect

replace github.com/mcpauth-go/mcpauth => ../../
