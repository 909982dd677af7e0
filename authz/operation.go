package authz

import (
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"unsafe"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/mcpauth-go/mcpauth/internal/jsonread"
)

// This file is the operation: what a request asks (its Cedar action,
// resource and arguments), the Cedar request and entity view built for it,
// and the decision.

// decide maps a parsed request to Cedar and evaluates it, with sc's memory
// (nil: fresh memory). The Decision's Policies live in sc: use them before
// sc is reused.
//
// decide, decideOp and evaluate keep small frames (rare cases in functions
// of their own, large values behind pointers): they are on a connection
// goroutine's stack under Cedar's evaluation, and a tools/call whose
// arguments are evaluated stays within 8 KB of stack (see the middleware).
func (a *Authorizer) decide(ps *policySet, sub *subject, req *rpcRequest, sc *scratch) (Decision, error) {
	if req.isResponse {
		return Decision{Allowed: true, Reason: "json-rpc response"}, nil
	}
	m := &req.mcp
	if !req.known || m.removed && currentRevision(req.header) {
		return Decision{Reason: reasonUnknownMethod}, nil
	}
	switch m.kind {
	case kindProtocol:
		return Decision{Allowed: true, Reason: "protocol method"}, nil
	case kindList:
		if !a.cfg.AuthorizeLists {
			return Decision{Allowed: true, Reason: "list (filtered)"}, nil
		}
	case kindListen:
		return a.decideListen(ps, sub, req, sc)
	}
	op, err := a.operation(req, m)
	switch {
	case errors.Is(err, errUnrepresentable):
		return Decision{Action: op.action, Resource: op.resource, Reason: "argument without exact Cedar value"}, nil
	case err != nil:
		return Decision{Reason: "bad request"}, err
	}
	return a.decideOp(ps, sub, &op, sc), nil
}

// decideListen decides a subscriptions/listen request, the 2026-07-28
// replacement of resources/subscribe: every URI must be readable.
func (a *Authorizer) decideListen(ps *policySet, sub *subject, req *rpcRequest, sc *scratch) (Decision, error) {
	uris, err := req.listenURIs()
	if err != nil {
		return Decision{Reason: "bad request"}, err
	}
	d := Decision{Allowed: true, Reason: "protocol method"}
	for i := range uris {
		op := a.namedOp(kindResource, uris[i].Val.Text)
		if d = a.decideOp(ps, sub, &op, sc); !d.Allowed {
			break
		}
	}
	return d, nil
}

// decideOp decides op through ps's decision cache when the decision cannot
// depend on anything but the caller, the operation's action and resource,
// the tool annotations and the source text of the arguments the policies
// can read (selection.argNames): an operation without arguments, or one
// whose policies read arguments only by name (not the whole context) and
// whose read arguments are short. Anything else is evaluated. A cached
// Decision is shared: its slices must not be modified.
func (a *Authorizer) decideOp(ps *policySet, sub *subject, op *operation, sc *scratch) (d Decision) {
	sel := ps.lookup(op.action, op.resource)
	// A subject without a token is built for one request: an entry keyed
	// on it would never be found again. A long name (a request can carry
	// one of up to Config.MaxBodyBytes) would make the cache's bound one
	// of count only, not of memory.
	cached := !op.list && sub.token != "" && len(op.resource.ID) <= maxCachedName
	var key decisionKey
	if cached {
		// The version is read before deciding: a decision made while
		// hints change is filed under the old version, which is never
		// asked again.
		key = decisionKey{sub: sub, action: op.action, name: string(op.resource.ID), ann: a.annotations.version.Load()}
		if op.args != nil && !sel.argFree {
			cached = !sel.ctxAll
			if cached {
				if sc == nil {
					sc = new(scratch)
				}
				b, ok := op.argKey(sel.argNames, sc.argKey[:0])
				sc.argKey = b[:0]
				// The key points into sc only for the lookup; put copies it.
				key.args = unsafe.String(unsafe.SliceData(b), len(b))
				cached = ok
			}
		}
	}
	if cached && ps.decisions.getInto(&key, &d) {
		return d
	}
	d = a.evaluate(ps, sel, sub, op, sc)
	if cached && ps.decisions.admit(&key) {
		ps.remember(&key, &d)
	}
	return d
}

// remember stores a copy of d, with policy ids of its own, under key.
func (ps *policySet) remember(key *decisionKey, d *Decision) {
	stored := *d
	stored.Policies = ps.ownedIDs(d.Policies)
	ps.decisions.put(*key, stored)
}

// Bounds of a decision cache key's strings: a call whose item name or read
// arguments are longer is evaluated, so that a cache entry stays small (at
// most a few KB, so at most some 30 MB for a full cache). MCP tool names
// have at most 128 characters.
const (
	maxCachedName = 1024
	maxArgKey     = 512
)

// argKey appends to b the key of the arguments named (sorted): for each,
// 0 when it is absent or null (it is then left out of the context and the
// resource), else 1, its source length (uvarint) and its source text. Two
// calls with the same key have the same value for every argument named,
// so policies that read no other argument decide them alike. ok is false
// when the key would exceed maxArgKey.
func (op *operation) argKey(names []string, b []byte) ([]byte, bool) {
	for _, n := range names {
		v, ok := op.args.Get(n)
		if !ok || v.Kind == jsonread.Null {
			b = append(b, 0)
			continue
		}
		text := op.src[v.Start:v.End]
		if len(b)+len(text)+1+binary.MaxVarintLen32 > maxArgKey {
			return b, false
		}
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(text)))
		b = append(b, text...)
	}
	return b, true
}

// operation is the Cedar shape of one resource-bearing request.
type operation struct {
	action   cedar.EntityUID
	resource cedar.EntityUID
	feature  string          // "tool", "prompt", "resource"; its generated attributes are built lazily
	list     bool            // a list action on FeatureType::"<feature>"
	args     *jsonread.Value // the arguments object; nil when none
	src      []byte          // the request body args points into
	scopes   []string        // Config.ToolScopes of a tool, checked by evaluate before any policy
}

// operation maps a resource-bearing request. ErrInvalidParams for a request
// MCP itself would reject; errUnrepresentable for arguments with no exact
// Cedar value (checked here for every argument; they are converted only when
// a policy reads them).
func (a *Authorizer) operation(r *rpcRequest, m *mcpMethod) (operation, error) {
	switch m.kind {
	case kindTool, kindPrompt:
		// One pass over params for name and arguments (as in
		// rpcRequest.parse: only another name can be a case variant).
		var name, args *jsonread.Value
		if r.params != nil && r.params.Kind == jsonread.Object {
			for i := range r.params.Kids {
				switch mem := &r.params.Kids[i]; mem.Key {
				case "name":
					name = &mem.Val
				case "arguments":
					args = &mem.Val
				default:
					if caseVariant(mem.Key, namedMembers) {
						return operation{}, ErrInvalidParams
					}
				}
			}
		}
		if name == nil || name.Kind != jsonread.String || name.Text == "" {
			return operation{}, ErrInvalidParams
		}
		op := a.namedOp(m.kind, name.Text)
		if args != nil && args.Kind != jsonread.Null {
			if args.Kind != jsonread.Object {
				return operation{}, ErrInvalidParams
			}
			if err := checkRepresentable(args); err != nil {
				return op, err
			}
			if len(args.Kids) > 0 {
				op.args, op.src = args, r.body
			}
		}
		return op, nil
	case kindResource:
		if r.params != nil && r.params.CaseVariant(uriMembers) {
			return operation{}, ErrInvalidParams
		}
		uri, ok := r.stringParam("uri")
		if !ok {
			return operation{}, ErrInvalidParams
		}
		return a.namedOp(kindResource, uri), nil
	case kindCompletion:
		if r.params != nil && r.params.CaseVariant(refMembers) {
			return operation{}, ErrInvalidParams
		}
		ref, ok := r.param("ref")
		if !ok || ref.Kind != jsonread.Object || ref.CaseVariant(refKeyMembers) {
			return operation{}, ErrInvalidParams
		}
		t, _ := ref.Get("type")
		key, kind := "name", kindPrompt
		if t != nil && t.Kind == jsonread.String && t.Text == "ref/resource" {
			key, kind = "uri", kindResource
		} else if t == nil || t.Kind != jsonread.String || t.Text != "ref/prompt" {
			return operation{}, ErrInvalidParams
		}
		v, ok := ref.Get(key)
		if !ok || v.Kind != jsonread.String || v.Text == "" {
			return operation{}, ErrInvalidParams
		}
		return a.namedOp(kind, v.Text), nil
	case kindList:
		return operation{action: m.action, resource: cedar.NewEntityUID(EntityTypeFeatureType, cedar.String(m.feature)), feature: m.feature, list: true}, nil
	}
	return operation{}, ErrInvalidRequest
}

// namedOp is the operation on one tool, prompt or resource, without
// arguments; a tool's carries the scopes Config.ToolScopes requires for it.
func (a *Authorizer) namedOp(kind methodKind, name string) operation {
	switch kind {
	case kindTool:
		return operation{action: actionCallTool, resource: cedar.NewEntityUID(EntityTypeTool, cedar.String(name)), feature: "tool", scopes: a.toolScopes(name)}
	case kindPrompt:
		return operation{action: actionGetPrompt, resource: cedar.NewEntityUID(EntityTypePrompt, cedar.String(name)), feature: "prompt"}
	}
	return operation{action: actionReadResource, resource: cedar.NewEntityUID(EntityTypeResource, cedar.String(name)), feature: "resource"}
}

// checkRepresentable reports errUnrepresentable if any value in v has no
// exact Cedar value (see jsonToCedar), without converting anything.
func checkRepresentable(v *jsonread.Value) error {
	switch v.Kind {
	case jsonread.Number:
		if !numberRepresentable(v.Text) {
			return errUnrepresentable
		}
	case jsonread.Array:
		for i := range v.Kids {
			if v.Kids[i].Val.Kind == jsonread.Null {
				return errUnrepresentable
			}
			if err := checkRepresentable(&v.Kids[i].Val); err != nil {
				return err
			}
		}
	case jsonread.Object:
		for i := range v.Kids {
			if err := checkRepresentable(&v.Kids[i].Val); err != nil {
				return err
			}
		}
	}
	return nil
}

// toolScopes returns the scopes Config.ToolScopes requires for tool, or nil.
func (a *Authorizer) toolScopes(tool string) []string {
	if s, ok := a.cfg.ToolScopes[tool]; ok {
		return s
	}
	return a.cfg.ToolScopes["*"]
}

// evaluate decides one operation: the scopes it requires (Config.ToolScopes)
// first, then the indexed policies (sel, ps.lookup of the operation). Deny by default; any evaluation error in
// a policy that applies is a deny, whatever the other policies say.
//
// sc (nil: fresh memory) lends the entity view, the context's scratch map
// and the Decision's Policies array.
func (a *Authorizer) evaluate(ps *policySet, sel *selection, sub *subject, op *operation, sc *scratch) Decision {
	for _, s := range op.scopes {
		if !slices.Contains(sub.scopes, s) {
			return Decision{Action: op.action, Resource: op.resource, Scopes: op.scopes, Reason: "missing scope"}
		}
	}
	if sc == nil {
		sc = new(scratch)
	}
	req := sub.requestInto(a, op, sel, &sc.ov, &sc.ctx)
	var pols cedar.PolicyIterator = sel
	if sub.token != "" {
		// A cached subject: the policies its principal cannot satisfy are
		// left out (built once per policy set; an uncached subject would
		// build it for every request).
		if sc.sp.seq == nil {
			sc.sp.seq = sc.sp.all
		}
		sc.sp.sel, sc.sp.ok = sel, sub.scopeMatches(a, ps)
		pols = &sc.sp
	}
	dec, diag := cedar.Authorize(pols, &sc.ov, req)
	sc.sp.sel, sc.sp.ok = nil, nil
	sc.ov = overlay{} // drop the request's references
	d := Decision{Action: op.action, Resource: op.resource, Policies: sc.pols[:0]}
	switch {
	case len(diag.Errors) > 0:
		d.Reason = "evaluation error"
		for _, e := range diag.Errors {
			d.Policies = append(d.Policies, e.PolicyID)
		}
	case dec == cedar.Allow:
		d.Allowed = true
		d.Reason = "permitted"
		for _, r := range diag.Reasons {
			d.Policies = append(d.Policies, r.PolicyID)
		}
	case len(diag.Reasons) > 0:
		d.Reason = "forbidden"
		scoped := true
		var scopes []string
		for _, r := range diag.Reasons {
			d.Policies = append(d.Policies, r.PolicyID)
			e := ps.entry(r.PolicyID)
			if e == nil || len(e.scopes) == 0 {
				scoped = false
				continue
			}
			for _, s := range e.scopes {
				if !slices.Contains(scopes, s) {
					scopes = append(scopes, s)
				}
			}
		}
		if scoped {
			d.Scopes = scopes
			d.Reason = "missing scope"
		}
	default:
		d.Reason = "no permit"
	}
	return d
}

// request builds the Cedar request and its entity view.
//
// With sel nil the context is complete; otherwise it holds only the
// attributes sel's policies can observe (see selection).
func (s *subject) request(a *Authorizer, op *operation, sel *selection) (cedar.Request, *overlay) {
	ov := new(overlay)
	var m cedar.RecordMap
	return s.requestInto(a, op, sel, ov, &m), ov
}

// requestInto is request with the entity view built in ov and *m (created
// when nil) as scratch for the context (cedar.NewRecord copies it).
func (s *subject) requestInto(a *Authorizer, op *operation, sel *selection, ov *overlay, m *cedar.RecordMap) cedar.Request {
	var ctx cedar.Record
	switch {
	case op.args == nil:
		ctx = s.ctxRecord
	case sel == nil || sel.ctxAll:
		c := make(cedar.RecordMap, len(s.ctxBase)+len(op.args.Kids))
		maps.Copy(c, s.ctxBase)
		op.addArgs(c)
		ctx = cedar.NewRecord(c)
	case len(sel.ctxKeys) == 0:
		ctx = cedar.Record{}
	default:
		if *m == nil {
			*m = make(cedar.RecordMap, 8)
		}
		for _, k := range sel.ctxKeys {
			if v, ok := op.arg(k); ok {
				(*m)[k] = v
			} else if v, ok := s.ctxBase[k]; ok {
				(*m)[k] = v
			}
		}
		ctx = cedar.NewRecord(*m)
		clear(*m)
	}
	*ov = overlay{a: a, static: a.entities, sub: s, op: *op}
	return cedar.Request{Principal: s.uid, Action: op.action, Resource: op.resource, Context: ctx}
}

// overlay is the entity store of one request: the static entities with the
// request's principal and resource entities on top. The resource entity is
// built on first use, since many policies never look past its uid.
type overlay struct {
	a            *Authorizer
	static       cedar.EntityMap
	sub          *subject
	op           operation // a copy, so that the caller's stays on its stack
	resource     cedar.Entity
	haveResource bool
}

// Get implements cedar.EntityGetter.
func (o *overlay) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	switch uid {
	case o.sub.uid:
		return o.sub.principal, true
	case o.op.resource:
		return o.resourceEntity(), true
	}
	e, ok := o.static[uid]
	return e, ok
}

// resourceEntity builds the resource entity: generated attributes, a tool's
// annotation hints and the arguments, merged with a static entity of the
// same uid (static attributes win; its parents are kept).
func (o *overlay) resourceEntity() cedar.Entity {
	if o.haveResource {
		return o.resource
	}
	m := make(cedar.RecordMap, 8)
	o.op.generatedAttrs(m)
	if o.op.feature == "tool" && !o.op.list {
		maps.Copy(m, o.a.annotations.get(string(o.op.resource.ID)))
	}
	o.op.addArgs(m)
	res := cedar.Entity{UID: o.op.resource}
	if st, ok := o.static[o.op.resource]; ok {
		res.Parents = st.Parents
		maps.Insert(m, st.Attributes.All())
	}
	res.Attributes = cedar.NewRecord(m)
	o.resource, o.haveResource = res, true
	return res
}

// generatedAttrs adds the attributes the mapping gives the resource entity.
func (op *operation) generatedAttrs(m cedar.RecordMap) {
	feature := cedar.String(op.feature)
	m["feature"] = feature
	if op.list {
		m["type"] = feature
		m["operation"] = cedar.String("list")
		return
	}
	name := op.resource.ID
	m["name"] = name
	switch op.feature {
	case "tool":
		m["operation"] = cedar.String("call")
	case "prompt":
		m["operation"] = cedar.String("get")
	default:
		m["uri"] = name
		m["operation"] = cedar.String("read")
	}
}

// addArgs converts every argument into m as arg_<name>.
func (op *operation) addArgs(m cedar.RecordMap) {
	if op.args == nil {
		return
	}
	for i := range op.args.Kids {
		mem := &op.args.Kids[i]
		if mem.Val.Kind == jsonread.Null {
			continue
		}
		if cv, err := jsonToCedar(&mem.Val); err == nil { // checked by checkRepresentable
			m[cedar.String("arg_"+mem.Key)] = cv
		}
	}
}

// arg returns the converted argument for the context key k ("arg_<name>").
func (op *operation) arg(k cedar.String) (cedar.Value, bool) {
	name, ok := strings.CutPrefix(string(k), "arg_")
	if !ok || op.args == nil {
		return nil, false
	}
	v, ok := op.args.Get(name)
	if !ok || v.Kind == jsonread.Null {
		return nil, false
	}
	cv, err := jsonToCedar(v)
	return cv, err == nil
}

// scratch is the memory one request's decision borrows from a pool
// (scratches) and gives back once the decision is made and logged: nothing
// in it may be used after that. It holds what would otherwise be allocated
// per request: the parse tree, the parsed message, the entity view handed
// to cedar, the context's scratch map, the Decision's Policies.
type scratch struct {
	parser jsonread.Parser
	req    rpcRequest
	ov     overlay
	ctx    cedar.RecordMap
	pols   [4]cedar.PolicyID
	argKey []byte         // the arguments' part of a decision cache key
	sp     scopedPolicies // the policies handed to cedar.Authorize
}

var scratches = sync.Pool{New: func() any { return new(scratch) }}

// release gives sc back to the pool without references to the request.
func (sc *scratch) release() {
	sc.parser.Release()
	sc.req = rpcRequest{}
	sc.ov = overlay{}
	clear(sc.pols[:])
	scratches.Put(sc)
}
