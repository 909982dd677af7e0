package google_test

import (
	"fmt"

	"github.com/mcpauth-go/mcpauth/tokenexchange/google"
)

// STS fills a tokenexchange.Config for workload identity federation.
func ExampleSTS() {
	cfg := google.STS(google.STSConfig{
		ProjectNumber: "123456789",
		PoolID:        "mcp-pool",
		ProviderID:    "corp-idp",
	})
	fmt.Println(cfg.TokenURL)
	fmt.Println(cfg.Audience)
	fmt.Println(cfg.SubjectTokenType)
	fmt.Println(cfg.Scopes)
	// Output:
	// https://sts.googleapis.com/v1/token
	// //iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/mcp-pool/providers/corp-idp
	// urn:ietf:params:oauth:token-type:jwt
	// [https://www.googleapis.com/auth/cloud-platform]
}
