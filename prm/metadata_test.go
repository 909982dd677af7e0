package prm_test

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/prm"
)

// fullMetadata sets every RFC 9728 §2 member to a valid non-zero value.
func fullMetadata() prm.Metadata {
	return prm.Metadata{
		Resource:                              "https://mcp.example.com/mcp",
		AuthorizationServers:                  []string{"https://as1.example.com", "https://as2.example.net/tenant"},
		JWKSURI:                               "https://mcp.example.com/jwks.json",
		ScopesSupported:                       []string{"mcp:tools", "mcp:resources"},
		BearerMethodsSupported:                []string{"header"},
		ResourceSigningAlgValuesSupported:     []string{"ES256", "RS256"},
		ResourceName:                          "Example MCP",
		ResourceDocumentation:                 "https://docs.example.com/mcp",
		ResourcePolicyURI:                     "https://example.com/privacy",
		ResourceTOSURI:                        "https://example.com/tos",
		TLSClientCertificateBoundAccessTokens: true,
		AuthorizationDetailsTypesSupported:    []string{"payment_initiation"},
		DPoPSigningAlgValuesSupported:         []string{"ES256"},
		DPoPBoundAccessTokensRequired:         true,
		SignedMetadata:                        "eyJhbGciOiJFUzI1NiJ9.eyJyZXNvdXJjZSI6IngifQ.c2ln",
	}
}

func TestMetadataJSONMemberNames(t *testing.T) {
	t.Parallel()
	// The member names of RFC 9728 §2 (and §2.2 for signed_metadata).
	rfc := []string{
		"resource", "authorization_servers", "jwks_uri", "scopes_supported",
		"bearer_methods_supported", "resource_signing_alg_values_supported",
		"resource_name", "resource_documentation", "resource_policy_uri",
		"resource_tos_uri", "tls_client_certificate_bound_access_tokens",
		"authorization_details_types_supported", "dpop_signing_alg_values_supported",
		"dpop_bound_access_tokens_required", "signed_metadata",
	}
	slices.Sort(rfc)

	tests := []struct {
		name string
		md   prm.Metadata
		want []string
	}{
		{"every member", fullMetadata(), rfc},
		{"optional members omitted when zero", prm.Metadata{Resource: "https://r.example"}, []string{"resource"}},
		{"empty slices omitted", prm.Metadata{Resource: "https://r.example", ScopesSupported: []string{}, AuthorizationServers: []string{}}, []string{"resource"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tc.md)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			got := slices.Sorted(maps.Keys(m))
			if !slices.Equal(got, tc.want) {
				t.Errorf("members = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMetadataJSONRoundTrip(t *testing.T) {
	t.Parallel()
	md := fullMetadata()
	md.Extra = map[string]any{"resource_name#ja": "例", "z_custom": []any{"a", "b"}}
	b, err := json.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	// Extra members follow the standard ones, sorted.
	if !strings.HasSuffix(string(b), `,"resource_name#ja":"例","z_custom":["a","b"]}`) {
		t.Errorf("extra members not appended in order: %s", b)
	}
	// A pointer marshals the same way.
	bp, err := json.Marshal(&md)
	if err != nil || string(bp) != string(b) {
		t.Errorf("pointer marshal = %s, %v; want %s", bp, err, b)
	}
	var got prm.Metadata
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	b2, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(b2) != string(b) {
		t.Errorf("round trip changed the document:\n got %s\nwant %s", b2, b)
	}
}

func TestMetadataMarshalRejectsExtraCollision(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"resource", "authorization_servers", "signed_metadata", ""} {
		md := prm.Metadata{Resource: "https://r.example", Extra: map[string]any{key: "https://evil.example"}}
		if b, err := json.Marshal(md); err == nil {
			t.Errorf("Extra[%q]: Marshal = %s, want error", key, b)
		}
		if err := md.Validate(); !errors.Is(err, prm.ErrInvalidMetadata) {
			t.Errorf("Extra[%q]: Validate = %v, want ErrInvalidMetadata", key, err)
		}
	}
}

func TestMetadataUnmarshalExactNames(t *testing.T) {
	t.Parallel()
	// RFC 9728 §6: names compare code point by code point. encoding/json
	// alone would fold "RESOURCE" into Resource.
	var md prm.Metadata
	err := json.Unmarshal([]byte(`{"RESOURCE":"https://evil.example","resource":"https://r.example","Authorization_Servers":["https://evil.example"]}`), &md)
	if err != nil {
		t.Fatal(err)
	}
	if md.Resource != "https://r.example" {
		t.Errorf("Resource = %q", md.Resource)
	}
	if md.AuthorizationServers != nil {
		t.Errorf("AuthorizationServers = %q, want nil", md.AuthorizationServers)
	}
	if md.Extra["RESOURCE"] != "https://evil.example" || md.Extra["Authorization_Servers"] == nil {
		t.Errorf("Extra = %v", md.Extra)
	}
}

func TestMetadataUnmarshalErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`[]`, `"x"`, `{"resource":1}`, `{"authorization_servers":"x"}`, `{`} {
		var md prm.Metadata
		err := json.Unmarshal([]byte(in), &md)
		if err == nil {
			t.Errorf("Unmarshal(%s) succeeded: %+v", in, md)
		}
	}
}
