// Package prm publishes OAuth 2.0 Protected Resource Metadata (RFC 9728) for
// an MCP server.
//
// An MCP server must tell clients which authorization servers issue tokens
// for it (MCP 2026-07-28, "Authorization Server Discovery"). It does so with
// a JSON document, [Metadata], served at a well-known URL derived from the
// server's resource identifier (RFC 9728 §3), and by naming that URL in the
// resource_metadata parameter of its 401 challenges (RFC 9728 §5.1; see
// package authn).
//
// [NewHandler] validates the document once, encodes it once and serves it
// with GET, HEAD and CORS preflight. [WellKnownPath] is the path to mount the
// handler on; [MetadataURL] is the absolute URL to put in challenges:
//
//	md := prm.Metadata{
//		Resource:             "https://mcp.example.com/mcp",
//		AuthorizationServers: []string{"https://login.example.com"},
//		ScopesSupported:      []string{"mcp:tools"},
//	}
//	h, err := prm.NewHandler(md)                // validates md
//	path, _ := prm.WellKnownPath(md.Resource)   // /.well-known/oauth-protected-resource/mcp
//	mux.Handle(path, h)
//
// The resource identifier is always the configured one. Nothing in this
// package derives a URL from the request's Host or X-Forwarded-* headers: a
// metadata document that echoed them would let anyone who can reach the
// server (or poison a cache in front of it) point clients at an
// authorization server of their choosing (RFC 9728 §7.3).
//
// Related specifications: RFC 9728 (the document and its location), RFC 8707
// (resource identifiers), RFC 8414 (issuer identifiers in
// authorization_servers), RFC 6750 (bearer methods), RFC 8615 (well-known
// URIs).
package prm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// Metadata is an RFC 9728 §2 Protected Resource Metadata document. Field
// names follow the RFC's JSON member names; optional members are omitted when
// zero, as RFC 9728 §3.2 requires.
//
// A Metadata value is plain data: build it, hand it to [NewHandler] (which
// validates it with [Metadata.Validate] and copies what it needs) and do not
// rely on later changes being served.
type Metadata struct {
	// Resource is the protected resource's resource identifier: the
	// canonical URI of the MCP server (RFC 8707 §2), e.g.
	// "https://mcp.example.com/mcp". Required. It must be an absolute https
	// URL (http only on a loopback host), with lowercase scheme and host,
	// no fragment, no user information and no "." or ".." path segments.
	// Tokens are audience-restricted to exactly this string.
	Resource string `json:"resource"`

	// AuthorizationServers lists the issuer identifiers (RFC 8414) of the
	// authorization servers that issue tokens for this resource. Optional in
	// RFC 9728 but required by MCP, so Validate requires at least one. Each
	// must be an absolute https URL (http only on loopback) without query or
	// fragment.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`

	// JWKSURI is the URL of the resource's own JSON Web Key Set, for
	// signed resource responses. Optional; https (http only on loopback).
	JWKSURI string `json:"jwks_uri,omitempty"`

	// ScopesSupported lists scope values (RFC 6749 §3.3) the resource is
	// willing to disclose. Recommended. It describes, it does not require:
	// required scopes are configured on the authn middleware.
	ScopesSupported []string `json:"scopes_supported,omitempty"`

	// BearerMethodsSupported lists how a bearer token may be presented
	// (RFC 6750): "header" or "body". "query" is refused: MCP forbids
	// access tokens in the URI query string. Optional; when empty the member
	// is omitted (an empty array cannot be expressed).
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`

	// ResourceSigningAlgValuesSupported lists the JWS algorithms the
	// resource uses to sign responses. Optional; "none" is refused
	// (RFC 9728 §2).
	ResourceSigningAlgValuesSupported []string `json:"resource_signing_alg_values_supported,omitempty"`

	// ResourceName is a human-readable name for end users. Recommended.
	// Language-tagged variants (RFC 9728 §2.1), such as "resource_name#de",
	// go in Extra.
	ResourceName string `json:"resource_name,omitempty"`

	// ResourceDocumentation is a URL of human-readable developer
	// documentation. Optional; absolute http or https URL.
	ResourceDocumentation string `json:"resource_documentation,omitempty"`

	// ResourcePolicyURI is a URL describing how client data is used.
	// Optional; absolute http or https URL.
	ResourcePolicyURI string `json:"resource_policy_uri,omitempty"`

	// ResourceTOSURI is a URL of the terms of service. Optional; absolute
	// http or https URL.
	ResourceTOSURI string `json:"resource_tos_uri,omitempty"`

	// TLSClientCertificateBoundAccessTokens reports support for mutual-TLS
	// certificate-bound access tokens (RFC 8705). Omitted when false, which
	// is the RFC's default.
	TLSClientCertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`

	// AuthorizationDetailsTypesSupported lists the RFC 9396
	// authorization_details type values the resource supports. Optional.
	AuthorizationDetailsTypesSupported []string `json:"authorization_details_types_supported,omitempty"`

	// DPoPSigningAlgValuesSupported lists the JWS algorithms accepted for
	// DPoP proofs (RFC 9449). Optional; "none" is refused.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`

	// DPoPBoundAccessTokensRequired reports that the resource always
	// requires DPoP-bound access tokens. Omitted when false, which is the
	// RFC's default.
	DPoPBoundAccessTokensRequired bool `json:"dpop_bound_access_tokens_required,omitempty"`

	// SignedMetadata is a JWT (JWS compact serialization) whose claims are
	// metadata values vouched for by its issuer (RFC 9728 §2.2). Optional.
	// This package publishes it as given; it does not sign or verify it.
	SignedMetadata string `json:"signed_metadata,omitempty"`

	// Extra holds additional members, e.g. language-tagged human-readable
	// values ("resource_name#ja", RFC 9728 §2.1) or parameters registered
	// later. Keys must not repeat a member defined above. Values must be
	// encodable with encoding/json. Members are written after the standard
	// ones, sorted by key. When decoding, members not defined above land here.
	Extra map[string]any `json:"-"`
}

// standardMembers are the RFC 9728 §2 member names, in the order Metadata
// encodes them.
var standardMembers = []string{
	"resource",
	"authorization_servers",
	"jwks_uri",
	"scopes_supported",
	"bearer_methods_supported",
	"resource_signing_alg_values_supported",
	"resource_name",
	"resource_documentation",
	"resource_policy_uri",
	"resource_tos_uri",
	"tls_client_certificate_bound_access_tokens",
	"authorization_details_types_supported",
	"dpop_signing_alg_values_supported",
	"dpop_bound_access_tokens_required",
	"signed_metadata",
}

// checkExtraName rejects an Extra key that is empty or repeats a standard
// member; both Validate and MarshalJSON apply it.
func checkExtraName(k string) error {
	if k == "" {
		return invalidf("extra member with an empty name")
	}
	if slices.Contains(standardMembers, k) {
		return invalidf("extra member %q repeats a standard member; set the field instead", k)
	}
	return nil
}

// plainMetadata has Metadata's fields and tags but none of its methods, so
// encoding/json handles it without recursing into MarshalJSON.
type plainMetadata Metadata

// MarshalJSON encodes md with its Extra members appended, sorted by key. It
// fails if an Extra key repeats a standard member name.
func (md Metadata) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(plainMetadata(md))
	if err != nil {
		return nil, err
	}
	if len(md.Extra) == 0 {
		return b, nil
	}
	keys := make([]string, 0, len(md.Extra))
	for k := range md.Extra {
		if err := checkExtraName(k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var buf bytes.Buffer
	buf.Grow(len(b) + 32*len(keys))
	buf.Write(b[:len(b)-1]) // drop the closing brace; "resource" is always present
	for _, k := range keys {
		kb, _ := json.Marshal(k) // a string always encodes
		vb, err := json.Marshal(md.Extra[k])
		if err != nil {
			return nil, fmt.Errorf("prm: extra member %q: %w", k, err)
		}
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON decodes a metadata document. Member names are matched
// exactly (RFC 9728 §6: code-point equality, no case folding, unlike
// encoding/json's default); members it does not define go to Extra. JSON
// null leaves md unchanged. It does not validate; call [Metadata.Validate]
// for that.
func (md *Metadata) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		return nil // the encoding/json convention for Unmarshalers
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		return fmt.Errorf("prm: decoding metadata: %w", err)
	}
	var out Metadata
	for name, raw := range members {
		var dst any
		switch name {
		case "resource":
			dst = &out.Resource
		case "authorization_servers":
			dst = &out.AuthorizationServers
		case "jwks_uri":
			dst = &out.JWKSURI
		case "scopes_supported":
			dst = &out.ScopesSupported
		case "bearer_methods_supported":
			dst = &out.BearerMethodsSupported
		case "resource_signing_alg_values_supported":
			dst = &out.ResourceSigningAlgValuesSupported
		case "resource_name":
			dst = &out.ResourceName
		case "resource_documentation":
			dst = &out.ResourceDocumentation
		case "resource_policy_uri":
			dst = &out.ResourcePolicyURI
		case "resource_tos_uri":
			dst = &out.ResourceTOSURI
		case "tls_client_certificate_bound_access_tokens":
			dst = &out.TLSClientCertificateBoundAccessTokens
		case "authorization_details_types_supported":
			dst = &out.AuthorizationDetailsTypesSupported
		case "dpop_signing_alg_values_supported":
			dst = &out.DPoPSigningAlgValuesSupported
		case "dpop_bound_access_tokens_required":
			dst = &out.DPoPBoundAccessTokensRequired
		case "signed_metadata":
			dst = &out.SignedMetadata
		default:
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("prm: decoding metadata member %q: %w", name, err)
			}
			if out.Extra == nil {
				out.Extra = make(map[string]any)
			}
			out.Extra[name] = v
			continue
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return fmt.Errorf("prm: decoding metadata member %q: %w", name, err)
		}
	}
	*md = out
	return nil
}
