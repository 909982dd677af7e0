package authn

// Challenge is one RFC 6750 §3 Bearer challenge, with the RFC 9728 §5.1
// resource_metadata parameter, as sent in WWW-Authenticate.
type Challenge struct {
	Realm            string   // realm; omitted if empty
	Error            string   // "", "invalid_request", "invalid_token" or "insufficient_scope"
	ErrorDescription string   // fixed public text; never a cause or a token
	Scopes           []string // scope="a b"; omitted if empty
	ResourceMetadata string   // resource_metadata URL; omitted if empty
}

// String returns the header value, e.g.
// `Bearer resource_metadata="https://…", scope="a b"`.
func (c Challenge) String() string { return "Bearer" } // stub
