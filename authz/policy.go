package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"iter"
	"maps"
	"slices"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// This file is the compiled policy set: the Cedar names the mapping uses,
// each policy's id, @scope and what it reads, and the index by action and
// resource scope that a decision looks its policies up in.

// Cedar names used by the request mapping (see the package documentation).
const (
	EntityTypeClient      cedar.EntityType = "Client"
	EntityTypeAction      cedar.EntityType = "Action"
	EntityTypeTool        cedar.EntityType = "Tool"
	EntityTypePrompt      cedar.EntityType = "Prompt"
	EntityTypeResource    cedar.EntityType = "Resource"
	EntityTypeFeatureType cedar.EntityType = "FeatureType"

	// DefaultGroupEntityType is the entity type of the principal's group
	// parents when Config.GroupEntityType is empty; it is ToolHive's, so
	// `principal in THVGroup::"eng"` policies carry over unchanged.
	DefaultGroupEntityType cedar.EntityType = "THVGroup"
)

// Actions issued by the middleware (unexported so that nothing can
// reassign them; the package documentation lists their names).
var (
	actionCallTool      = cedar.NewEntityUID(EntityTypeAction, "call_tool")
	actionGetPrompt     = cedar.NewEntityUID(EntityTypeAction, "get_prompt")
	actionReadResource  = cedar.NewEntityUID(EntityTypeAction, "read_resource")
	actionListTools     = cedar.NewEntityUID(EntityTypeAction, "list_tools")
	actionListPrompts   = cedar.NewEntityUID(EntityTypeAction, "list_prompts")
	actionListResources = cedar.NewEntityUID(EntityTypeAction, "list_resources")
	knownActions        = []cedar.EntityUID{actionCallTool, actionGetPrompt, actionReadResource, actionListTools, actionListPrompts, actionListResources}
	scopeAnnotation     = types.AnnotationKey("scope") // @scope("a b") on a forbid: the scopes whose absence it enforces
	idAnnotation        = types.AnnotationKey("id")
	errNoPolicies       = errors.New("authz: no policies")
)

// policyEntry is one parsed policy with its id and step-up scopes.
type policyEntry struct {
	id      cedar.PolicyID
	policy  *cedar.Policy
	scopes  []string // from @scope, forbid policies only
	ctxAll  bool     // uses the context record other than through attribute access
	ctxKeys []string // context attributes it reads or tests
	// readsArgs: it names an attribute "arg_…" (of the context, the
	// resource or anything else) or uses the whole context, so a request's
	// arguments can change what it says.
	readsArgs bool
	// argNames are the arguments it can read: the <name> of every
	// attribute "arg_<name>" it names, on any value.
	argNames []string
	// ids is []cedar.PolicyID{id}: what a cached decision that only this
	// policy determined names (see policySet.ownedIDs).
	ids []cedar.PolicyID
	// pos is its position in policySet.entries (see subject.scopeMatches).
	pos int
}

// argAttributes adds to names the <name> of every attribute "arg_<name>"
// a policy's JSON form reads or tests, on any value. Cedar reaches an
// attribute only by its literal name (`.attr`, `["attr"]`, `has attr`), so
// a policy can observe no other argument: the arguments are attributes
// named arg_<name> of the context and of the resource entity.
func argAttributes(doc any, names map[string]bool) {
	switch x := doc.(type) {
	case []any:
		for _, e := range x {
			argAttributes(e, names)
		}
	case map[string]any:
		for k, v := range x {
			if k == "." || k == "has" {
				if op, ok := v.(map[string]any); ok {
					if attr, ok := op["attr"].(string); ok {
						if name, ok := strings.CutPrefix(attr, "arg_"); ok {
							names[name] = true
						}
					}
				}
			}
			argAttributes(v, names)
		}
	}
}

// policyJSON returns a policy's JSON form (cedar-go's MarshalJSON) as
// encoding/json values, which contextUse and checkPolicyNames walk.
func policyJSON(p *cedar.Policy) (any, error) {
	b, err := p.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var doc any
	err = json.Unmarshal(b, &doc)
	return doc, err
}

// contextUse finds how a policy uses the context record, from its JSON form:
// every {"Var":"context"} must be the left operand of "." or "has", whose
// attribute is then recorded; any other use sets all.
func contextUse(doc any) (keys []string, all bool) {
	seen := map[string]bool{}
	var walk func(n any)
	walk = func(n any) {
		switch x := n.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if v, ok := x["Var"]; ok && v == "context" {
				all = true
				return
			}
			for k, v := range x {
				if k == "." || k == "has" {
					if op, ok := v.(map[string]any); ok {
						if left, ok := op["left"].(map[string]any); ok && len(left) == 1 && left["Var"] == "context" {
							if attr, ok := op["attr"].(string); ok {
								if !seen[attr] {
									seen[attr] = true
									keys = append(keys, attr)
								}
								continue
							}
						}
					}
				}
				walk(v)
			}
		}
	}
	walk(doc)
	return keys, all
}

// bucket is the list of policies that can apply to requests with one action
// and one resource key; it implements cedar.PolicyIterator without allocating
// per request beyond the iterator closure.
type bucket []*policyEntry

func (b bucket) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, e := range b {
			if !yield(e.id, e.policy) {
				return
			}
		}
	}
}

// actionIndex holds, for one action, the policies per resource key. Every
// slice already contains the policies with a wider resource scope, so a
// lookup is one map access and evaluation touches nothing else.
type actionIndex struct {
	action      cedar.EntityUID
	anyResource *selection                      // resource scope `resource` or `resource in …`
	byType      map[cedar.EntityType]*selection // `resource is T [in …]` plus anyResource
	// byID is `resource == UID` plus byType[UID.Type], by the UID's id
	// (a map keyed by string hashes faster than one keyed by EntityUID),
	// then its type.
	byID map[cedar.String][]typedSelection
}

// typedSelection is the selection of one resource UID in actionIndex.byID.
type typedSelection struct {
	typ cedar.EntityType
	sel *selection
}

// selection is the policies one lookup returns, with the context attributes
// they can observe: Cedar reads a record only through `.attr`, `["attr"]` and
// `has attr`, so a context holding just those attributes gives every policy
// of the selection the same result as the full context, at a fraction of the
// cost of building it (cedar.NewRecord sorts and hashes every member). If a
// policy uses `context` any other way (compares or passes the whole record),
// ctxAll is set and the full context is built.
type selection struct {
	pols    bucket
	seq     iter.Seq2[cedar.PolicyID, *cedar.Policy] // pols.All()
	ctxAll  bool
	ctxKeys []cedar.String
	// argFree: no policy of the selection can observe a request's
	// arguments, so its decision depends only on the caller, the action
	// and the resource (see decisionCache).
	argFree bool
	// argNames are the arguments the selection's policies can read, sorted
	// (see policyEntry.argNames). Unless ctxAll, a decision depends on a
	// request's arguments only through these.
	argNames []string
}

func newSelection(b bucket) *selection {
	sel := &selection{pols: b, seq: b.All(), argFree: true}
	seen := map[string]bool{}
	for _, e := range b {
		if e.ctxAll {
			sel.ctxAll = true
		}
		if e.readsArgs {
			sel.argFree = false
		}
		for _, n := range e.argNames {
			if !slices.Contains(sel.argNames, n) {
				sel.argNames = append(sel.argNames, n)
			}
		}
		for _, k := range e.ctxKeys {
			if !seen[k] {
				seen[k] = true
				sel.ctxKeys = append(sel.ctxKeys, cedar.String(k))
			}
		}
	}
	slices.Sort(sel.argNames)
	return sel
}

// All implements cedar.PolicyIterator without allocating: the sequence is
// built once, with the selection.
func (s *selection) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] { return s.seq }

// policySet is an immutable compiled policy set: what an atomic reload swaps.
type policySet struct {
	entries []*policyEntry
	all     *selection
	index   []*actionIndex // one per knownActions
	byID    map[cedar.PolicyID]*policyEntry
	// decisions made under this set for list items; a Reload swaps the
	// whole set, so no decision outlives the policies it was made with.
	decisions decisionCache
	// lists are the list messages filtered under this set (listmemo.go).
	lists listMemo
}

// ownedIDs returns the policy ids of a decision in memory of their own, for
// the decision cache: the entry's shared ids for one policy (the common
// case, which then costs no allocation), else a copy.
func (ps *policySet) ownedIDs(ids []cedar.PolicyID) []cedar.PolicyID {
	switch len(ids) {
	case 0:
		return nil
	case 1:
		if e := ps.entry(ids[0]); e != nil {
			return e.ids[:1:1]
		}
	}
	return slices.Clone(ids)
}

// entry returns the policy with the given id, or nil.
func (ps *policySet) entry(id cedar.PolicyID) *policyEntry { return ps.byID[id] }

// lookup returns the policies that can apply to a request for action on
// resource. For actions outside the index (none are issued today) it returns
// the whole set, which is always correct.
func (ps *policySet) lookup(action, resource cedar.EntityUID) *selection {
	var ai *actionIndex
	for _, x := range ps.index {
		if x.action == action {
			ai = x
			break
		}
	}
	if ai == nil {
		return ps.all
	}
	for _, t := range ai.byID[resource.ID] {
		if t.typ == resource.Type {
			return t.sel
		}
	}
	if b, ok := ai.byType[resource.Type]; ok {
		return b
	}
	return ai.anyResource
}

// compilePolicies parses Cedar policy text. Policy ids come from an @id("…")
// annotation, else "policy<n>" with n the 0-based position in the text (the
// official Cedar tooling's default naming). Errors carry line:column.
func (a *Authorizer) compilePolicies(text string) (*policySet, error) {
	entities := a.entities
	list, err := cedar.NewPolicyListFromBytes("policies.cedar", []byte(text))
	if err != nil {
		return nil, parseError(text, err)
	}
	if len(list) == 0 {
		return nil, errNoPolicies
	}
	ps := &policySet{
		index: make([]*actionIndex, 0, len(knownActions)),
		byID:  make(map[cedar.PolicyID]*policyEntry, len(list)),
	}
	ps.decisions.seed = maphash.MakeSeed()
	seen := make(map[cedar.PolicyID]cedar.Position, len(list))
	for i, p := range list {
		id := cedar.PolicyID(fmt.Sprintf("policy%d", i))
		ann := p.Annotations()
		if v, ok := ann[idAnnotation]; ok {
			id = cedar.PolicyID(v)
		}
		pos := p.Position()
		if prev, dup := seen[id]; dup {
			return nil, fmt.Errorf("authz: policies: policy %q (line %d, column %d): id already used at line %d, column %d",
				id, pos.Line, pos.Column, prev.Line, prev.Column)
		}
		seen[id] = pos
		e := &policyEntry{id: id, policy: p, ids: []cedar.PolicyID{id}}
		doc, err := policyJSON(p)
		if err != nil {
			return nil, fmt.Errorf("authz: policies: policy %q (line %d, column %d): %w", id, pos.Line, pos.Column, err)
		}
		if err := a.checkPolicyNames(doc); err != nil {
			return nil, fmt.Errorf("authz: policies: policy %q (line %d, column %d): %s", id, pos.Line, pos.Column, err)
		}
		e.ctxKeys, e.ctxAll = contextUse(doc)
		names := map[string]bool{}
		argAttributes(doc, names)
		e.argNames = slices.Sorted(maps.Keys(names))
		e.readsArgs = e.ctxAll || len(e.argNames) > 0
		if v, ok := ann[scopeAnnotation]; ok {
			if p.Effect() != cedar.Forbid {
				return nil, fmt.Errorf("authz: policies: policy %q (line %d, column %d): @scope is only meaningful on forbid policies", id, pos.Line, pos.Column)
			}
			e.scopes = strings.Fields(string(v))
			if len(e.scopes) == 0 {
				return nil, fmt.Errorf("authz: policies: policy %q (line %d, column %d): empty @scope", id, pos.Line, pos.Column)
			}
			for _, sc := range e.scopes {
				if !validScope(sc) {
					return nil, fmt.Errorf("authz: policies: policy %q (line %d, column %d): invalid scope %q in @scope", id, pos.Line, pos.Column, sc)
				}
			}
		}
		e.pos = len(ps.entries)
		ps.entries = append(ps.entries, e)
		ps.byID[id] = e
	}
	ps.all = newSelection(bucket(ps.entries))
	for _, act := range knownActions {
		ps.index = append(ps.index, buildActionIndex(ps.entries, act, entities))
	}
	return ps, nil
}

// buildActionIndex selects the policies whose action scope can match act and
// files them by resource scope.
func buildActionIndex(entries []*policyEntry, act cedar.EntityUID, entities cedar.EntityMap) *actionIndex {
	ai := &actionIndex{action: act, byType: map[cedar.EntityType]*selection{}, byID: map[cedar.String][]typedSelection{}}
	var anyResource bucket
	typed := map[cedar.EntityType][]*policyEntry{}
	exact := map[cedar.EntityUID][]*policyEntry{}
	for _, e := range entries {
		a := e.policy.AST()
		if !actionScopeMatches(a.Action, act, entities) {
			continue
		}
		switch rs := a.Resource.(type) {
		case xast.ScopeTypeEq:
			exact[rs.Entity] = append(exact[rs.Entity], e)
		case xast.ScopeTypeIs:
			typed[rs.Type] = append(typed[rs.Type], e)
		case xast.ScopeTypeIsIn:
			typed[rs.Type] = append(typed[rs.Type], e)
		default: // all, `in`: can match any resource
			anyResource = append(anyResource, e)
		}
	}
	ai.anyResource = newSelection(anyResource)
	byType := map[cedar.EntityType]bucket{}
	for t, es := range typed {
		byType[t] = append(append(bucket{}, anyResource...), es...)
		ai.byType[t] = newSelection(byType[t])
	}
	for uid, es := range exact {
		base := anyResource
		if b, ok := byType[uid.Type]; ok {
			base = b
		}
		ai.byID[uid.ID] = append(ai.byID[uid.ID], typedSelection{uid.Type, newSelection(append(append(bucket{}, base...), es...))})
	}
	return ai
}

// principalScopeMatches reports whether a policy's principal scope holds
// for the principal uid whose ancestors (transitive parents, in the
// request's entity view) are anc, as Cedar's `==`, `in` and `is` decide it.
// A policy whose scope does not hold is never satisfied and never fails:
// Cedar tests the scope before the conditions.
func principalScopeMatches(scope xast.IsPrincipalScopeNode, uid cedar.EntityUID, anc map[cedar.EntityUID]bool) bool {
	switch s := scope.(type) {
	case xast.ScopeTypeEq:
		return s.Entity == uid
	case xast.ScopeTypeIn:
		return s.Entity == uid || anc[s.Entity]
	case xast.ScopeTypeIs:
		return s.Type == uid.Type
	case xast.ScopeTypeIsIn:
		return s.Type == uid.Type && (s.Entity == uid || anc[s.Entity])
	}
	return true // all, and any scope this code does not know
}

// scopedPolicies is a selection without the policies whose principal scope
// cannot hold for the request's subject (ok, by policyEntry.pos): what
// evaluate hands cedar.Authorize, which then skips evaluating, for every
// request, scopes such as `principal in Group::"admins"` the caller is not
// in. It lives in a request's scratch.
type scopedPolicies struct {
	sel *selection
	ok  []bool
	seq iter.Seq2[cedar.PolicyID, *cedar.Policy] // all, bound once per scratch
}

// All implements cedar.PolicyIterator.
func (sp *scopedPolicies) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] { return sp.seq }

func (sp *scopedPolicies) all(yield func(cedar.PolicyID, *cedar.Policy) bool) {
	for _, e := range sp.sel.pols {
		if sp.ok[e.pos] && !yield(e.id, e.policy) {
			return
		}
	}
}

// actionScopeMatches reports whether an action scope can be satisfied by a
// request whose action is act, given the static entities (which may place
// actions in action groups). When in doubt it reports true: including a
// policy that cannot apply never changes a decision, excluding one could.
func actionScopeMatches(scope xast.IsActionScopeNode, act cedar.EntityUID, entities cedar.EntityMap) bool {
	switch s := scope.(type) {
	case xast.ScopeTypeAll:
		return true
	case xast.ScopeTypeEq:
		return s.Entity == act
	case xast.ScopeTypeIn:
		return s.Entity == act || isAncestor(entities, act, s.Entity)
	case xast.ScopeTypeInSet:
		for _, g := range s.Entities {
			if g == act || isAncestor(entities, act, g) {
				return true
			}
		}
		return false
	}
	return true
}

// isAncestor reports whether anc is a transitive parent of uid in entities.
func isAncestor(entities cedar.EntityMap, uid, anc cedar.EntityUID) bool {
	seen := map[cedar.EntityUID]bool{}
	stack := []cedar.EntityUID{uid}
	for len(stack) > 0 {
		u := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		e, ok := entities[u]
		if !ok {
			continue
		}
		for p := range e.Parents.All() {
			if p == anc {
				return true
			}
			if !seen[p] {
				seen[p] = true
				stack = append(stack, p)
			}
		}
	}
	return false
}
