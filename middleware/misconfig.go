package middleware

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/prm"
)

// ErrMisconfigured is matched by the error Protect returns when the
// Protected Resource Metadata and the verifier disagree: tokens a client
// obtains by following the metadata would all be rejected.
var ErrMisconfigured = errors.New("middleware: metadata and verifier disagree")

// checkAgreement fails when md and v cannot work together: the metadata's
// resource is not among the audiences a verifier accepts (tokens minted for
// the resource, RFC 8707, would carry an aud the verifier refuses), or a
// verifier's issuer is not listed in authorization_servers (clients would
// never ask it for a token). It looks only at what v exposes: Issuer() or
// Issuers(), Audience(), and Verifiers() for a verifier that routes to
// others (*authn.MultiVerifier); a custom TokenVerifier that exposes none of
// them is not checked.
func checkAgreement(v authn.TokenVerifier, md prm.Metadata) error {
	var errs []error
	for _, leaf := range leafVerifiers(v, 0) {
		aud, ok := leaf.(interface{ Audience() []string })
		if ok && !slices.ContainsFunc(aud.Audience(), func(a string) bool { return sameResource(a, md.Resource) }) {
			errs = append(errs, fmt.Errorf("%w: the metadata resource %q is not among the audiences %s the verifier%s accepts; "+
				"add %q to authn.Config.Audience (or set Metadata.Resource to one of them)",
				ErrMisconfigured, md.Resource, quoteAll(aud.Audience()), issuerSuffix(leaf), md.Resource))
		}
	}
	for _, iss := range verifierIssuers(v) {
		if !slices.Contains(md.AuthorizationServers, iss) {
			errs = append(errs, fmt.Errorf("%w: the verifier trusts issuer %q, which the metadata's authorization_servers %s does not list; "+
				"add %q to Metadata.AuthorizationServers (issuer identifiers compare exactly, trailing slash included)",
				ErrMisconfigured, iss, quoteAll(md.AuthorizationServers), iss))
		}
	}
	return errors.Join(errs...)
}

// checkIssuers fails when the authorizer would deny the callers of an issuer
// the verifier trusts: with several issuers, authz needs them listed
// (authz.Config.Issuers) to namespace principals by issuer, and an issuer
// it does not list is denied outright. It looks only at what the two
// expose (Issuers() on the authorizer, Issuer()/Issuers() on the verifier).
func checkIssuers(v authn.TokenVerifier, a Authorizer) error {
	ai, ok := a.(interface{ Issuers() []string })
	if !ok {
		return nil
	}
	trusted, listed := verifierIssuers(v), ai.Issuers()
	if len(listed) == 0 {
		if len(trusted) > 1 {
			return fmt.Errorf("%w: the verifier trusts %d issuers %s but the authorizer lists none, so it would trust only the first one seen; "+
				"set authz.Config.Issuers to %s (principals then read Client::\"<iss>#<sub>\")",
				ErrMisconfigured, len(trusted), quoteAll(trusted), quoteAll(trusted))
		}
		return nil
	}
	var errs []error
	for _, iss := range trusted {
		if !slices.Contains(listed, iss) {
			errs = append(errs, fmt.Errorf("%w: the verifier trusts issuer %q, which authz.Config.Issuers %s does not list, so every caller it verifies would be denied; "+
				"add %q to authz.Config.Issuers", ErrMisconfigured, iss, quoteAll(listed), iss))
		}
	}
	return errors.Join(errs...)
}

// leafVerifiers returns v, or the verifiers it routes to.
func leafVerifiers(v authn.TokenVerifier, depth int) []authn.TokenVerifier {
	r, ok := v.(interface{ Verifiers() []authn.TokenVerifier })
	if !ok || depth > 8 {
		return []authn.TokenVerifier{v}
	}
	var out []authn.TokenVerifier
	for _, sub := range r.Verifiers() {
		out = append(out, leafVerifiers(sub, depth+1)...)
	}
	return out
}

// verifierIssuers returns the issuers v reports, if any.
func verifierIssuers(v authn.TokenVerifier) []string {
	switch x := v.(type) {
	case interface{ Issuers() []string }:
		return x.Issuers()
	case interface{ Issuer() string }:
		return []string{x.Issuer()}
	}
	return nil
}

func issuerSuffix(v authn.TokenVerifier) string {
	if x, ok := v.(interface{ Issuer() string }); ok {
		return fmt.Sprintf(" for issuer %q", x.Issuer())
	}
	return ""
}

func quoteAll(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, " ") + "]"
}

// sameResource compares resource identifiers as authn compares a token's
// aud: exactly, except for the case of scheme and host.
func sameResource(a, b string) bool {
	if a == b {
		return true
	}
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil || ua.User != nil || ub.User != nil || ua.Host == "" {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host) &&
		ua.Opaque == ub.Opaque && ua.RawPath == ub.RawPath && ua.Path == ub.Path &&
		ua.RawQuery == ub.RawQuery && ua.ForceQuery == ub.ForceQuery && ua.Fragment == ub.Fragment
}
