// Package observe is the hook through which the packages of this module
// report what they do — token verifications by outcome and cause, token
// cache hits and misses, JWKS fetches, RFC 7662 introspection calls, Cedar
// decisions and filtered lists, RFC 8693 token exchanges and upstream token
// refreshes — so an
// operator can count, time and trace them. It has no dependency: adapters
// (for OpenTelemetry, github.com/mcpauth-go/mcpauth/observe/otelobserve, a
// module of its own) turn the events into metrics and spans.
//
// An [Observer] is a struct of optional functions, one per kind of event,
// in the manner of net/http/httptrace's ClientTrace. Set the same *Observer
// in the Config of each package you want to watch (authn.Config,
// authz.Config, tokenexchange.Config, upstream.TransportConfig); a nil
// *Observer, or a nil function, costs one pointer comparison on the path
// that would report the event: no allocation and no call. A struct of
// functions rather than an interface, because a user watches one event in
// five lines without writing the others, a package adds an event later
// without breaking anyone's implementation, and "nothing to report" is a nil
// check rather than an interface call to a no-op.
//
// Events never carry a token, a secret, a subject or any other value taken
// from a request: only counts, times and labels from small fixed sets
// ([Outcome], [Cause], [CacheResult]) or from the server's own configuration
// (an issuer, a policy id, an MCP method this module knows). Each event
// comes with the context of the request it belongs to (or, for work done in
// the background such as a JWKS refresh, the context it runs on), so an
// adapter can record a span under the request's span; events are reported
// once the work is done and carry its Start and Duration, so one call
// suffices to record a span with its true times.
//
// Functions are called synchronously on the request path, possibly from
// many goroutines at once: they must be safe for concurrent use and quick,
// and must not retain the event's slices after returning.
package observe

import (
	"context"
	"time"
)

// Observer receives events from the packages whose Config it is set in.
// Every field may be nil; so may the *Observer itself. It must not be
// modified once in use.
type Observer struct {
	// Verification is called once per token verified by an authn.Verifier
	// (the middleware's, or a direct Verify call), cached or not. Behind an
	// authn.MultiVerifier, the Verifier the token is routed to (or whose
	// cache answers) reports it; a token the MultiVerifier refuses before
	// routing it (no token, a malformed one, no iss, an issuer it does not
	// trust, no verifier for opaque tokens) is reported by the
	// MultiVerifier itself, with an empty Issuer, to the Observer of each of
	// its Verifiers (each distinct Observer once).
	Verification func(context.Context, Verification)

	// KeyFetch is called after each fetch of an issuer's JWKS (the first,
	// the scheduled background refreshes and the refetches triggered by an
	// unknown kid). Fetches are shared by all requests waiting for them and
	// run on the Verifier's own context, not a request's.
	KeyFetch func(context.Context, KeyFetch)

	// Introspection is called after each RFC 7662 introspection request (a
	// cached introspection result makes no request and no event).
	Introspection func(context.Context, Introspection)

	// Decision is called once per request the authz middleware answers or
	// passes on, when the decision is made (and once more, a denial, for a
	// list response too large or malformed to filter), and once per call
	// of authz.Authorizer.Authorize.
	Decision func(context.Context, Decision)

	// ListFilter is called once per list response the authz middleware
	// filtered (tools/list, prompts/list, resources/list,
	// resources/templates/list), with how many items it kept and removed.
	// A response that holds no list result (a JSON-RPC error) is not
	// reported; one that cannot be filtered is reported to Decision as a
	// denial instead.
	ListFilter func(context.Context, ListFilter)

	// Exchange is called once per token a tokenexchange.Transport serves
	// from its cache and once per RFC 8693 call to the STS (requests that
	// join a call already in flight are not reported again).
	Exchange func(context.Context, Exchange)

	// Refresh is called after each refresh of an upstream token by an
	// upstream.Transport (one per session and expiry in a process, however
	// many requests wait for it).
	Refresh func(context.Context, Refresh)
}

// Outcome is how an operation ended. Its String is the label adapters use.
type Outcome uint8

// Outcomes. Each event's documentation says which of them it reports.
const (
	OK                Outcome = iota // done: verified, fetched, exchanged, refreshed
	Invalid                          // the token (or a fetched document) was rejected
	Unavailable                      // the other party could not be reached or answered with a server error; retry later
	Failed                           // refused for good (an STS or upstream error answer, a lost grant)
	Allowed                          // an authorization decision that lets the request through
	Denied                           // an authorization decision that refuses the request
	InsufficientScope                // a denial answered with a step-up challenge (more scopes would help)
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "invalid", "unavailable", "failed", "allowed", "denied", "insufficient_scope"}

// String returns the outcome's label ("ok", "invalid", "unavailable",
// "failed", "allowed", "denied", "insufficient_scope").
func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// NumOutcomes is the number of Outcome values, for adapters that index
// arrays by outcome.
const NumOutcomes = int(numOutcomes)

// Cause is why a token verification failed, CauseNone when it did not.
// Its String is the label adapters use.
type Cause uint8

// Causes of a failed verification.
const (
	CauseNone          Cause = iota // verified
	CauseNoToken                    // an empty token
	CauseMalformed                  // not a well-formed token: size, segments, base64url, JSON, a JWE
	CauseBadHeader                  // a JOSE header refused: alg not allowed, typ, crit, kid not a string
	CauseUnknownKey                 // no key of the issuer matches the token's kid and alg
	CauseBadSignature               // the signature does not verify
	CauseWrongIssuer                // iss is not the configured issuer (or not a trusted one)
	CauseWrongAudience              // aud is missing or does not name this resource
	CauseExpired                    // exp has passed (with leeway)
	CauseNotYetValid                // nbf or iat is in the future
	CauseBadClaims                  // a required claim is missing or malformed (sub, exp, scope, token_type…)
	CauseInactive                   // introspection answered active: false
	CauseUnavailable                // keys or introspection unreachable and nothing cached could decide
	CauseOther                      // any other failure (a custom KeySet's error, for example)
	numCauses
)

var causeNames = [numCauses]string{
	"", "no_token", "malformed", "bad_header", "unknown_key", "bad_signature", "wrong_issuer",
	"wrong_audience", "expired", "not_yet_valid", "bad_claims", "inactive", "unavailable", "other",
}

// String returns the cause's label: "" for CauseNone, otherwise
// "no_token", "malformed", "bad_header", "unknown_key", "bad_signature",
// "wrong_issuer", "wrong_audience", "expired", "not_yet_valid",
// "bad_claims", "inactive", "unavailable" or "other".
func (c Cause) String() string {
	if c < numCauses {
		return causeNames[c]
	}
	return "other"
}

// Outcome returns OK for CauseNone, Unavailable for CauseUnavailable and
// Invalid for every other cause.
func (c Cause) Outcome() Outcome {
	switch c {
	case CauseNone:
		return OK
	case CauseUnavailable:
		return Unavailable
	}
	return Invalid
}

// NumCauses is the number of Cause values, for adapters that index arrays
// by cause.
const NumCauses = int(numCauses)

// CacheResult says whether a cache answered.
type CacheResult uint8

// Cache results.
const (
	CacheNotUsed CacheResult = iota // no cache consulted (disabled, or the request was refused before)
	CacheHit                        // answered from the cache
	CacheMiss                       // looked up, not found: the work was done
)

// String returns "", "hit" or "miss".
func (r CacheResult) String() string {
	switch r {
	case CacheHit:
		return "hit"
	case CacheMiss:
		return "miss"
	}
	return ""
}

// Verification reports one token verification by an authn.Verifier, or
// one token an authn.MultiVerifier refused before routing it.
type Verification struct {
	// Issuer is the Verifier's configured issuer (authn.Config.Issuer),
	// never a value read from the token; "" for a token an
	// authn.MultiVerifier refused before routing it to a Verifier (the
	// issuer it names, if any, is not trusted, so it is not a label).
	Issuer string
	// Cause is CauseNone for a verified token; Cause.Outcome gives OK,
	// Invalid or Unavailable.
	Cause Cause
	// Cache is CacheHit when the verified-token cache answered (the warm
	// path: then Start and Duration are zero, so that it stays cheap),
	// CacheMiss when it was consulted in vain, CacheNotUsed when it is
	// disabled or the token was refused before the lookup.
	Cache CacheResult
	// Start and Duration time the verification (signature checks, and any
	// key fetch or introspection it waited for).
	Start    time.Time
	Duration time.Duration
}

// KeyFetch reports one fetch of an issuer's JWKS.
type KeyFetch struct {
	// Issuer is the Verifier's configured issuer.
	Issuer string
	// Outcome is OK, or Unavailable (network error, timeout, a status
	// other than 200, a document refused): the last good keys stay in use.
	Outcome Outcome
	// Keys is the number of usable keys fetched (zero on failure).
	Keys int
	// Start and Duration time the fetch.
	Start    time.Time
	Duration time.Duration
}

// Introspection reports one RFC 7662 introspection request.
type Introspection struct {
	// Issuer is the Verifier's configured issuer.
	Issuer string
	// Outcome is OK (an active token accepted), Invalid (inactive or
	// refused: see Cause) or Unavailable (endpoint unreachable, a server
	// error, a malformed answer).
	Outcome Outcome
	// Cause is why the answer was refused, CauseNone when it was not.
	Cause Cause
	// Start and Duration time the request.
	Start    time.Time
	Duration time.Duration
}

// Decision reports one authorization decision of the authz middleware.
type Decision struct {
	// Outcome is Allowed, Denied, or InsufficientScope (a denial with a
	// step-up challenge).
	Outcome Outcome
	// Method is the MCP method decided ("tools/call", "tools/list", …) when
	// authz knows it, and "" otherwise (a method name is the client's text:
	// only known ones are reported).
	Method string
	// Action is the Cedar action evaluated ("call_tool", "get_prompt",
	// "read_resource", …), "" when no policy was evaluated (protocol
	// methods, malformed or refused requests).
	Action string
	// Policies are the ids of the policies that determined the decision
	// (the satisfied forbids of a denial, the satisfied permits of an
	// allowance); empty for a default denial or a request refused before
	// evaluation. The slice is valid only during the call.
	Policies []string
	// Start and Duration time the decision: from the moment the request's
	// body was read (or the call to Authorize) to the decision, that is
	// parsing, header checks and policy evaluation. A request refused
	// before its body is read (no identity) has a zero Duration; the
	// denial of a list response that cannot be filtered times the attempt
	// to filter it. The clock is read only when Decision is set.
	Start    time.Time
	Duration time.Duration
}

// ListFilter reports one list response filtered by the authz middleware.
// It carries counts, not names: the items of a list (tools, prompts,
// resource URIs) are many and may differ per user, so they are no labels,
// and an event per item would make hundreds of calls per tools/list. It is
// an event of its own rather than fields of Decision: the request's
// decision is made and reported before the handler runs, and the list is
// filtered once the handler has answered.
type ListFilter struct {
	// Method is the list method: "tools/list", "prompts/list",
	// "resources/list" or "resources/templates/list".
	Method string
	// Kept and Removed are the numbers of items the caller may and may
	// not use (summed over the list results of an event stream).
	Kept, Removed int
	// Start and Duration time the filtering (not the handler that
	// produced the list): parsing the response and deciding each item.
	Start    time.Time
	Duration time.Duration
}

// Exchange reports one token a tokenexchange.Transport needed.
type Exchange struct {
	// Cache is CacheHit when a cached token was used (Start and Duration
	// are then zero), CacheMiss when the STS was called after a cache
	// miss, CacheNotUsed when the STS was called with caching disabled.
	Cache CacheResult
	// Outcome is OK, Failed (the STS refused: a 4xx error answer, a subject
	// it does not accept) or Unavailable (network error, timeout, 429 or
	// 5xx, a malformed answer).
	Outcome Outcome
	// Start and Duration time the STS call.
	Start    time.Time
	Duration time.Duration
}

// Refresh reports one refresh of an upstream token by an
// upstream.Transport.
type Refresh struct {
	// Outcome is OK (refreshed, or another replica's refresh was read),
	// Failed (only a new login helps: the grant was refused or is gone) or
	// Unavailable (the upstream or the store cannot answer now).
	Outcome Outcome
	// Start and Duration time the refresh, including any wait for another
	// replica's lock.
	Start    time.Time
	Duration time.Duration
}
