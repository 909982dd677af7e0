package authz

import (
	"hash/maphash"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/mcpauth-go/mcpauth/authn"
)

// This file is the subject: who is asking, as Cedar sees it. A verified
// identity (authn.TokenInfo) becomes the principal entity Client::"<id>"
// with its group parents and claim attributes, and the context attributes
// every request of that caller shares. The result is cached per token.

// subject is the Cedar view of a caller. It is immutable once built and
// shared: by every evaluation of one request (a list response evaluates once
// per item) and, through Authorizer.subjects, by later requests that carry
// the same verified token.
type subject struct {
	token     string // the bearer token it was built for: the cache identity ("" when uncached)
	issuer    string
	sub       string
	clientID  string
	scopes    []string
	id        string // the principal id: sub, or "<issuer>#<sub>" with several issuers
	uid       cedar.EntityUID
	ctxBase   cedar.RecordMap // claim_*, scopes, client_id
	ctxRecord cedar.Record    // NewRecord(ctxBase), for requests without arguments
	principal cedar.Entity    // merged with a static entity of the same uid
	// inScope holds, for the policy set last used, which of its policies'
	// principal scopes hold for this subject (see scopeMatches).
	inScope atomic.Pointer[principalScopes]
}

// principalScopes is, for one policy set, whether each policy's principal
// scope holds for a subject (by policyEntry.pos).
type principalScopes struct {
	ps *policySet
	ok []bool
}

// scopeMatches returns, by policyEntry.pos, whether each policy of ps can
// apply to s by its principal scope, computed once per subject and policy
// set (a Reload makes another). The principal's ancestors are those of the
// request's entity view (overlay): s.principal's parents, then the static
// entities' (the resource entity takes its static parents too).
func (s *subject) scopeMatches(a *Authorizer, ps *policySet) []bool {
	if m := s.inScope.Load(); m != nil && m.ps == ps {
		return m.ok
	}
	anc := map[cedar.EntityUID]bool{}
	stack := slices.Collect(s.principal.Parents.All())
	for len(stack) > 0 {
		u := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if anc[u] {
			continue
		}
		anc[u] = true
		parents := s.principal.Parents
		if u != s.uid {
			parents = a.entities[u].Parents
		}
		for p := range parents.All() {
			if !anc[p] {
				stack = append(stack, p)
			}
		}
	}
	ok := make([]bool, len(ps.entries))
	for i, e := range ps.entries {
		ok[i] = principalScopeMatches(e.policy.AST().Principal, s.uid, anc)
	}
	s.inScope.Store(&principalScopes{ps: ps, ok: ok})
	return ok
}

// Subject cache bounds: how many tokens' subjects are kept, and for how
// long one is kept when its token states no expiry.
const (
	maxSubjects        = 4096
	subjectTTLNoExpiry = 5 * time.Minute
)

// issuerSeparator joins issuer and subject in a principal id when several
// issuers are trusted. An issuer identifier has no fragment (RFC 8414 §2,
// OpenID Connect Discovery §3), so the first '#' ends the issuer and no two
// (issuer, sub) pairs give the same id.
const issuerSeparator = "#"

// principalID returns the principal id of a token from issuer with subject
// sub, and false when the issuer is not one this Authorizer trusts (see
// Config.Issuers).
func (a *Authorizer) principalID(issuer, sub string) (string, bool) {
	switch len(a.issuers) {
	case 0:
		// No issuer configured: the first issuer seen is the only one
		// (a second one could otherwise reuse its users' ids).
		if first := a.firstIssuer.Load(); first != nil {
			return sub, *first == issuer
		}
		if a.firstIssuer.CompareAndSwap(nil, &issuer) {
			return sub, true
		}
		return sub, *a.firstIssuer.Load() == issuer
	case 1:
		return sub, a.issuers[0] == issuer
	}
	if !slices.Contains(a.issuers, issuer) {
		return "", false
	}
	return issuer + issuerSeparator + sub, true
}

// subjectFor returns the subject for info, or nil when its issuer is not
// trusted. Subjects are cached per bearer token: the key is a keyed hash
// (hash/maphash, a random seed per Authorizer) of the token, and a hit also
// compares the whole token, issuer, subject, client and scopes, so no token
// can be served another's subject. An identity without a token (from a
// custom verifier that does not attach one) is built every time.
func (a *Authorizer) subjectFor(info *authn.TokenInfo) *subject {
	tok := info.Token()
	if tok == "" {
		return a.newSubject(info, "")
	}
	key := a.subjectKey(tok)
	now := time.Now()
	if s, ok := a.subjects.Get(key, now); ok && s.token == tok && s.issuer == info.Issuer &&
		s.sub == info.Subject && s.clientID == info.ClientID && slices.Equal(s.scopes, info.Scopes) {
		return s
	}
	s := a.newSubject(info, tok)
	if s == nil {
		return nil
	}
	until := info.Expiry
	if until.IsZero() || until.Sub(now) > subjectTTLNoExpiry {
		until = now.Add(subjectTTLNoExpiry)
	}
	a.subjects.Put(key, s, until)
	return s
}

// subjectKey is the cache key of a token: its keyed 64-bit hash, and its
// length, in the cache's 32-byte key.
func (a *Authorizer) subjectKey(tok string) [32]byte {
	var k [32]byte
	h := maphash.String(a.seed, tok)
	for i := range 8 {
		k[i] = byte(h >> (8 * i))
	}
	n := uint64(len(tok))
	for i := range 8 {
		k[8+i] = byte(n >> (8 * i))
	}
	return k
}

// newSubject builds the subject of info (tok is the token it is cached
// for), or returns nil when its issuer is not trusted.
func (a *Authorizer) newSubject(info *authn.TokenInfo, tok string) *subject {
	id, ok := a.principalID(info.Issuer, info.Subject)
	if !ok {
		return nil
	}
	s := &subject{
		token: tok, issuer: info.Issuer, sub: info.Subject, clientID: info.ClientID, scopes: slices.Clone(info.Scopes),
		id: id, uid: cedar.NewEntityUID(EntityTypeClient, cedar.String(id)),
	}
	claims := make(cedar.RecordMap, len(info.Claims))
	for k, v := range info.Claims {
		if cv, ok := claimValue(v, 0); ok {
			claims[cedar.String("claim_"+k)] = cv
		}
	}
	s.ctxBase = make(cedar.RecordMap, len(claims)+2)
	maps.Copy(s.ctxBase, claims)
	scopes := make([]cedar.Value, len(info.Scopes))
	for i, sc := range info.Scopes {
		scopes[i] = cedar.String(sc)
	}
	s.ctxBase["scopes"] = cedar.NewSet(scopes...)
	if info.ClientID != "" {
		s.ctxBase["client_id"] = cedar.String(info.ClientID)
	}
	s.ctxRecord = cedar.NewRecord(s.ctxBase)

	var parents []cedar.EntityUID
	for _, c := range a.groupClaims {
		for _, g := range claimStrings(info.Claims[c]) {
			parents = append(parents, cedar.NewEntityUID(a.groupType, cedar.String(g)))
		}
	}
	if st, ok := a.entities[s.uid]; ok {
		for p := range st.Parents.All() {
			parents = append(parents, p)
		}
		maps.Insert(claims, st.Attributes.All())
	}
	s.principal = cedar.Entity{UID: s.uid, Parents: cedar.NewEntityUIDSet(parents...), Attributes: cedar.NewRecord(claims)}
	return s
}

// claimStrings returns the strings of a string or string-array claim.
func claimStrings(v any) []string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
		return []string{x}
	case []string:
		return x
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// validIssuer reports whether iss can be one of Config.Issuers: not empty
// and without the separator (an issuer identifier has no fragment).
func validIssuer(iss string) bool {
	return iss != "" && !strings.Contains(iss, issuerSeparator)
}
