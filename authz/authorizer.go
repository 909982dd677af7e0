package authz

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/internal/lru"
	"github.com/mcpauth-go/mcpauth/observe"
)

// This file is the Authorizer: its Config, construction and Reload (the
// loading itself is in load.go), the Authorize entry point, and the audit
// record of each decision.

// Default limits.
const (
	DefaultMaxBodyBytes     = 1 << 20 // 1 MiB
	DefaultMaxResponseBytes = 8 << 20 // 8 MiB
)

// Config configures an Authorizer. The zero value of every field but
// Policies is safe.
type Config struct {
	// Policies is the Cedar policy text (required). Policy ids come from an
	// @id("…") annotation, else "policy<n>" (n counts from 0 in text order).
	// A forbid policy may carry @scope("s1 s2"): when it determines a deny,
	// the answer is an insufficient_scope step-up challenge for those scopes.
	Policies string

	// Entities is a Cedar entities JSON document (an array of
	// {"uid","parents","attrs"} objects) for group hierarchies, action groups
	// and resource attributes. If nil, there are no static entities.
	Entities []byte

	// Issuers lists the token issuers (the exact iss values) whose callers
	// reach this Authorizer; a token from any other issuer is denied. A
	// subject is unique only within its issuer, so with several issuers (an
	// authn.MultiVerifier) the principal id carries the issuer:
	// Client::"<iss>#<sub>" (an issuer identifier has no fragment, so the
	// first '#' ends it), and static entities and policies must name
	// principals that way; a Client id without the issuer, or with an
	// issuer not listed, is an error at New. With one issuer the id is
	// Client::"<sub>", as in ToolHive. If empty, the first issuer seen is
	// the only one trusted: a token from a second issuer is denied (list
	// every issuer here when more than one is trusted).
	Issuers []string

	// GroupClaims lists the claims whose string or string-array values become
	// the principal's group parents. If nil, "groups" then "roles" are used;
	// the groups of every listed claim are united.
	GroupClaims []string

	// GroupEntityType is the entity type of those parents. If empty,
	// DefaultGroupEntityType ("THVGroup", as in ToolHive) is used.
	GroupEntityType string

	// ToolScopes maps a tool name to the OAuth scopes a tools/call of it
	// requires, checked before any policy; the key "*" applies to tools not
	// listed. A call without them is answered 403 with an insufficient_scope
	// challenge naming the required scopes. If nil, no tool needs a scope here
	// (policies may still require scopes through context.scopes and @scope).
	ToolScopes map[string][]string

	// ResourceMetadataURL is sent as resource_metadata in step-up challenges
	// (RFC 9728 §5.1). If empty, the parameter is omitted.
	ResourceMetadataURL string

	// AuthorizeLists makes tools/list, prompts/list and resources/list (and
	// resources/templates/list) require a permit for Action::"list_tools",
	// "list_prompts" or "list_resources" on FeatureType::"tool", "prompt" or
	// "resource", as ToolHive names them. If false, list requests pass and only
	// their responses are filtered.
	AuthorizeLists bool

	// MaxBodyBytes caps the request body. If zero, DefaultMaxBodyBytes.
	MaxBodyBytes int64

	// MaxResponseBytes caps a list response buffered for filtering; a larger
	// one is replaced by a JSON-RPC internal error (fail closed). If zero,
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64

	// Logger receives one audit record per decision: the decision, method,
	// principal (the token subject), action, resource and the ids of the
	// policies that determined it. Tokens are never logged. If nil, decisions
	// are not logged.
	Logger *slog.Logger

	// Observer receives an event per decision of the middleware or of
	// Authorize (outcome, MCP method, Cedar action, deciding policy ids and
	// duration) and per list response filtered (list method, items kept and
	// removed), never the principal, the resource or an item's name (see
	// package observe). If nil, nothing is reported and the clock is not
	// read for it.
	Observer *observe.Observer
}

// Authorizer enforces Cedar policies on MCP JSON-RPC requests. It is safe for
// concurrent use, including concurrent Reload.
type Authorizer struct {
	cfg         Config
	entities    cedar.EntityMap
	groupType   cedar.EntityType
	groupClaims []string
	policies    atomic.Pointer[policySet]
	annotations toolAnnotations

	entityNames entityNames            // what Config.Entities names, for load-time checks
	issuers     []string               // Config.Issuers
	firstIssuer atomic.Pointer[string] // with no Config.Issuers, the one issuer trusted
	subjects    *lru.Cache[*subject]   // by keyed token hash (see subjectFor)
	seed        maphash.Seed
}

// New validates cfg, compiles its policies and entities, and returns an
// Authorizer. Policy and entity errors name their line:column.
func New(cfg Config) (*Authorizer, error) {
	a := &Authorizer{cfg: cfg, entities: cedar.EntityMap{}, subjects: lru.New[*subject](maxSubjects), seed: maphash.MakeSeed()}
	for _, iss := range cfg.Issuers {
		if !validIssuer(iss) {
			return nil, fmt.Errorf("authz: Config.Issuers: %q is not an issuer identifier (empty, or has a '#' fragment)", iss)
		}
		if slices.Contains(a.issuers, iss) {
			return nil, fmt.Errorf("authz: Config.Issuers: %q is listed twice", iss)
		}
		a.issuers = append(a.issuers, iss)
	}
	a.groupType = DefaultGroupEntityType
	if cfg.GroupEntityType != "" {
		a.groupType = cedar.EntityType(cfg.GroupEntityType)
	}
	if len(cfg.Entities) > 0 {
		if err := a.loadEntities(cfg.Entities); err != nil {
			return nil, err
		}
	}
	a.groupClaims = cfg.GroupClaims
	if a.groupClaims == nil {
		a.groupClaims = []string{"groups", "roles"}
	}
	if a.cfg.MaxBodyBytes <= 0 {
		a.cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if a.cfg.MaxResponseBytes <= 0 {
		a.cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	// Copy what the caller could change after New.
	a.groupClaims = slices.Clone(a.groupClaims)
	a.cfg.ToolScopes = make(map[string][]string, len(cfg.ToolScopes))
	for tool, scopes := range cfg.ToolScopes {
		for _, s := range scopes {
			if !validScope(s) {
				return nil, fmt.Errorf("authz: ToolScopes[%q]: invalid scope %q", tool, s)
			}
		}
		a.cfg.ToolScopes[tool] = slices.Clone(scopes)
	}
	a.indexEntityNames() // now, so that concurrent Reloads only read it
	ps, err := a.compilePolicies(cfg.Policies)
	if err != nil {
		return nil, err
	}
	a.policies.Store(ps)
	return a, nil
}

// Reload atomically replaces the policy set with policies (Cedar text). The
// static entities stay as configured. On error the current policies stay in
// force. Requests already being evaluated finish with the set they started
// with.
func (a *Authorizer) Reload(policies string) error {
	ps, err := a.compilePolicies(policies)
	if err != nil {
		return err
	}
	a.policies.Store(ps)
	return nil
}

// cloneOrNil returns a copy of s, or nil when s is empty.
func cloneOrNil[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// validScope reports whether s is an RFC 6749 §3.3 scope-token
// (%x21 / %x23-5B / %x5D-7E), which a step-up challenge carries unchanged.
func validScope(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

// reasonIssuer is the Decision.Reason of a token from an issuer not trusted
// (see Config.Issuers).
const reasonIssuer = "issuer not trusted"

// Decision is the outcome of authorizing one MCP request.
type Decision struct {
	// Allowed is true when the request may reach the handler.
	Allowed bool
	// Action and Resource are the Cedar action and resource evaluated; both
	// are zero for protocol methods that carry no resource.
	Action, Resource cedar.EntityUID
	// Policies are the ids of the policies that determined the decision: the
	// satisfied forbids of a deny, the satisfied permits of an allow, or the
	// policies whose evaluation failed.
	Policies []cedar.PolicyID
	// Scopes, on a deny, are the scopes a step-up would need (from
	// Config.ToolScopes or a determining forbid's @scope).
	Scopes []string
	// Reason is a short fixed description for audit logs.
	Reason string
}

// Errors returned by Authorize for requests that are not well-formed
// JSON-RPC; the middleware answers them with HTTP 400.
var (
	ErrParse          = errors.New("authz: malformed JSON-RPC body")             // JSON-RPC -32700
	ErrInvalidRequest = errors.New("authz: invalid JSON-RPC request")            // JSON-RPC -32600 (batches, duplicate keys, bad shapes)
	ErrInvalidParams  = errors.New("authz: invalid params for MCP method")       // JSON-RPC -32602
	ErrNoIdentity     = errors.New("authz: no verified identity in context")     // authz must run after authn
	ErrHeaderMismatch = errors.New("authz: Mcp-Method/Mcp-Name header mismatch") // JSON-RPC -32020
)

// Authorize decides one JSON-RPC request body for the identity in ctx (see
// authn.NewContext), exactly as the middleware does, without the HTTP layer
// and without header checks. A list request is allowed or denied as a whole
// here; its items are filtered by the middleware. Each call is reported to
// Config.Observer's Decision (a refusal with an error as a denial); it
// writes no audit record (the caller decides what the decision is for).
func (a *Authorizer) Authorize(ctx context.Context, body []byte) (Decision, error) {
	start := a.decisionStart()
	info, ok := authn.FromContext(ctx)
	if !ok || info == nil || info.Subject == "" {
		d := Decision{Reason: "no identity"}
		a.observe(ctx, start, "", d)
		return d, ErrNoIdentity
	}
	sc := scratches.Get().(*scratch)
	defer sc.release()
	if err := sc.req.parse(&sc.parser, body); err != nil {
		d := Decision{Reason: "bad request"}
		a.observe(ctx, start, "", d)
		return d, err
	}
	sub := a.subjectFor(info)
	if sub == nil {
		d := Decision{Reason: reasonIssuer}
		a.observe(ctx, start, sc.req.method, d)
		return d, nil
	}
	d, err := a.decide(a.policies.Load(), sub, &sc.req, sc)
	a.observe(ctx, start, sc.req.method, d) // with an error, d is a denial
	// The caller owns what it gets: Policies may live in sc (which goes
	// back to the pool) and a cached Decision is shared.
	d.Policies, d.Scopes = cloneOrNil(d.Policies), cloneOrNil(d.Scopes)
	return d, err
}

// log writes the audit record for one decision, made since start (see
// decisionStart).
func (a *Authorizer) log(ctx context.Context, start time.Time, sub string, method string, d Decision) {
	a.observe(ctx, start, method, d) // Config.Observer (observe.go)
	if a.cfg.Logger == nil {
		return
	}
	level := slog.LevelInfo
	decision := "allow"
	if !d.Allowed {
		level = slog.LevelWarn
		decision = "deny"
	}
	if !a.cfg.Logger.Enabled(ctx, level) {
		return
	}
	ids := make([]string, len(d.Policies))
	for i, p := range d.Policies {
		ids[i] = string(p)
	}
	attrs := []slog.Attr{
		slog.String("decision", decision),
		slog.String("reason", d.Reason),
		slog.String("method", clip(method)),
		slog.String("principal", sub),
		slog.Any("policies", ids),
	}
	if d.Action.Type != "" {
		attrs = append(attrs, slog.String("action", d.Action.String()), slog.String("resource", clip(d.Resource.String())))
	}
	if len(d.Scopes) > 0 {
		attrs = append(attrs, slog.Any("required_scopes", d.Scopes))
	}
	a.cfg.Logger.LogAttrs(ctx, level, "authz decision", attrs...)
}

// clip bounds caller-chosen strings (method names, tool names, URIs) in
// audit records.
func clip(s string) string {
	const max = 256
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}
