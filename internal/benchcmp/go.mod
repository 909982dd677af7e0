module github.com/mcpauth-go/mcpauth/internal/benchcmp

go 1.26.0

require github.com/mcpauth-go/mcpauth v0.0.0

require (
	github.com/coreos/go-oidc/v3 v3.21.0 // indirect
	github.com/go-jose/go-jose/v4 v4.1.8 // indirect
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
)

replace github.com/mcpauth-go/mcpauth => ../../
