package authz

import "slices"

// Issuers returns Config.Issuers: the issuers whose callers this Authorizer
// decides for, or nil when none were listed (then the first issuer seen is
// the only one trusted). middleware.Protect compares it with the verifier's
// issuers at construction.
func (a *Authorizer) Issuers() []string { return slices.Clone(a.issuers) }
