package authz

import (
	"encoding/base64"
	"errors"
	"maps"
	"net/http"
	"strings"
	"unicode/utf8"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/mcpauth-go/mcpauth/internal/jsonread"
)

type methodKind uint8

const (
	kindProtocol   methodKind = iota // carries no resource: passes
	kindTool                         // params.name → Tool, params.arguments → arg_*
	kindPrompt                       // params.name → Prompt, params.arguments → arg_*
	kindResource                     // params.uri → Resource
	kindCompletion                   // params.ref → Prompt or Resource
	kindList                         // passes (or list_* when AuthorizeLists); response filtered
	kindListen                       // params.notifications.resourceSubscriptions → Resource each
)

type mcpMethod struct {
	kind    methodKind
	action  cedar.EntityUID
	feature string // lists: FeatureType id
	listKey string // lists: result member holding the items
	itemKey string // lists: item member naming the item
	nameOf  string // Mcp-Name source member of params ("" when the header has no source)
}

// mcpMethods lists every client-to-server method of MCP 2026-07-28 and the
// 2025-11-25 methods still accepted for backwards compatibility. A method not
// listed here is denied.
var mcpMethods = map[string]mcpMethod{
	"tools/call":               {kind: kindTool, action: actionCallTool, nameOf: "name"},
	"prompts/get":              {kind: kindPrompt, action: actionGetPrompt, nameOf: "name"},
	"resources/read":           {kind: kindResource, action: actionReadResource, nameOf: "uri"},
	"resources/subscribe":      {kind: kindResource, action: actionReadResource}, // 2025-11-25
	"resources/unsubscribe":    {kind: kindResource, action: actionReadResource}, // 2025-11-25
	"completion/complete":      {kind: kindCompletion},                           // authorized as the referenced prompt/resource
	"tools/list":               {kind: kindList, action: actionListTools, feature: "tool", listKey: "tools", itemKey: "name"},
	"prompts/list":             {kind: kindList, action: actionListPrompts, feature: "prompt", listKey: "prompts", itemKey: "name"},
	"resources/list":           {kind: kindList, action: actionListResources, feature: "resource", listKey: "resources", itemKey: "uri"},
	"resources/templates/list": {kind: kindList, action: actionListResources, feature: "resource", listKey: "resourceTemplates", itemKey: "uriTemplate"},

	"server/discover":                  {kind: kindProtocol},
	"subscriptions/listen":             {kind: kindListen},   // authorized as resources/subscribe, per URI
	"tasks/get":                        {kind: kindProtocol}, // tasks extension; task ownership is the server's check
	"tasks/update":                     {kind: kindProtocol},
	"tasks/cancel":                     {kind: kindProtocol},
	"tasks/result":                     {kind: kindProtocol}, // 2025-11-25
	"tasks/list":                       {kind: kindProtocol}, // 2025-11-25
	"initialize":                       {kind: kindProtocol}, // 2025-11-25
	"ping":                             {kind: kindProtocol}, // 2025-11-25
	"logging/setLevel":                 {kind: kindProtocol}, // 2025-11-25
	"notifications/initialized":        {kind: kindProtocol}, // 2025-11-25
	"notifications/cancelled":          {kind: kindProtocol},
	"notifications/progress":           {kind: kindProtocol},
	"notifications/roots/list_changed": {kind: kindProtocol}, // 2025-11-25
}

// maxRequestValues bounds the JSON values (scalars and containers) of a
// request body. A parsed value costs about 72 bytes, plus the growth of the
// parse stacks, so without a bound a 1 MiB body of [0,0,…] (half a million
// values) cost some 300 MB of allocation; at this bound a body costs at most
// a few tens of MB, while a tool call carrying an array of 100 000 numbers
// still passes.
const maxRequestValues = 1 << 17

// rpcRequest is a parsed JSON-RPC message.
type rpcRequest struct {
	id         []byte // raw id literal; nil when absent
	method     string
	isResponse bool // a JSON-RPC response posted by a 2025-11-25 client
	params     *jsonread.Value
}

// parseRPC parses and validates one JSON-RPC message.
func parseRPC(body []byte) (*rpcRequest, error) {
	// _meta (protocol version, client info and capabilities) is checked but
	// not kept: nothing here reads it.
	root, err := jsonread.ParseWith(body, jsonread.Options{SkipMeta: true, MaxValues: maxRequestValues})
	switch {
	case errors.Is(err, jsonread.ErrDuplicate):
		return nil, ErrInvalidRequest
	case err != nil:
		return nil, ErrParse
	case root.Kind != jsonread.Object: // a batch array, or not a message at all
		return nil, ErrInvalidRequest
	case root.CaseVariant(envelopeMembers):
		return nil, ErrInvalidRequest
	}
	r := &rpcRequest{}
	if v, ok := root.Get("id"); ok {
		if v.Kind != jsonread.String && v.Kind != jsonread.Number && v.Kind != jsonread.Null {
			return r, ErrInvalidRequest
		}
		r.id = body[v.Start:v.End]
	}
	if v, ok := root.Get("jsonrpc"); !ok || v.Kind != jsonread.String || v.Text != "2.0" {
		return r, ErrInvalidRequest
	}
	if v, ok := root.Get("params"); ok {
		if v.Kind != jsonread.Object && v.Kind != jsonread.Array {
			return r, ErrInvalidRequest
		}
		r.params = v
	}
	v, ok := root.Get("method")
	if !ok {
		_, hasResult := root.Get("result")
		_, hasError := root.Get("error")
		if r.id == nil || hasResult == hasError {
			return r, ErrInvalidRequest
		}
		r.isResponse = true
		return r, nil
	}
	if v.Kind != jsonread.String {
		return r, ErrInvalidRequest
	}
	r.method = v.Text
	return r, nil
}

// Member names read by the mapping, per object: a case variant of one of
// them is rejected (see caseVariant).
var (
	envelopeMembers = []string{"jsonrpc", "id", "method", "params", "result", "error"}
	namedMembers    = []string{"name", "arguments"} // tools/call, prompts/get params
	uriMembers      = []string{"uri"}               // resources/* params
	refMembers      = []string{"ref"}               // completion/complete params
	refKeyMembers   = []string{"type", "name", "uri"}
	listenMembers   = []string{"notifications"}         // subscriptions/listen params
	listenSubs      = []string{"resourceSubscriptions"} // its notifications
)

// param returns params.<key> when params is an object.
func (r *rpcRequest) param(key string) (*jsonread.Value, bool) {
	if r.params == nil || r.params.Kind != jsonread.Object {
		return nil, false
	}
	return r.params.Get(key)
}

// stringParam returns the non-empty string params.<key>.
func (r *rpcRequest) stringParam(key string) (string, bool) {
	v, ok := r.param(key)
	if !ok || v.Kind != jsonread.String || v.Text == "" {
		return "", false
	}
	return v.Text, true
}

// operation is the Cedar shape of one resource-bearing request.
type operation struct {
	action   cedar.EntityUID
	resource cedar.EntityUID
	feature  string          // "tool", "prompt", "resource"; its generated attributes are built lazily
	list     bool            // a list action on FeatureType::"<feature>"
	args     *jsonread.Value // the arguments object; nil when none
	scopes   []string        // Config.ToolScopes of a tool, checked by evaluate before any policy
}

// operation maps a resource-bearing request. ErrInvalidParams for a request
// MCP itself would reject; errUnrepresentable for arguments with no exact
// Cedar value (checked here for every argument; they are converted only when
// a policy reads them).
func (a *Authorizer) operation(r *rpcRequest, m mcpMethod) (operation, error) {
	switch m.kind {
	case kindTool, kindPrompt:
		if r.params != nil && r.params.CaseVariant(namedMembers) {
			return operation{}, ErrInvalidParams
		}
		name, ok := r.stringParam("name")
		if !ok {
			return operation{}, ErrInvalidParams
		}
		op := a.namedOp(m.kind, name)
		if args, ok := r.param("arguments"); ok && args.Kind != jsonread.Null {
			if args.Kind != jsonread.Object {
				return operation{}, ErrInvalidParams
			}
			if err := checkRepresentable(args); err != nil {
				return op, err
			}
			if len(args.Kids) > 0 {
				op.args = args
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

// listenURIs returns the resource URIs a subscriptions/listen request asks
// updates for (params.notifications.resourceSubscriptions), ErrInvalidParams
// for a request MCP itself would reject.
func (r *rpcRequest) listenURIs() ([]jsonread.Member, error) {
	if r.params != nil && r.params.CaseVariant(listenMembers) {
		return nil, ErrInvalidParams
	}
	n, ok := r.param("notifications")
	if !ok || n.Kind == jsonread.Null {
		return nil, nil
	}
	if n.Kind != jsonread.Object || n.CaseVariant(listenSubs) {
		return nil, ErrInvalidParams
	}
	subs, ok := n.Get("resourceSubscriptions")
	if !ok || subs.Kind == jsonread.Null {
		return nil, nil
	}
	if subs.Kind != jsonread.Array {
		return nil, ErrInvalidParams
	}
	for i := range subs.Kids {
		if v := &subs.Kids[i].Val; v.Kind != jsonread.String || v.Text == "" {
			return nil, ErrInvalidParams
		}
	}
	return subs.Kids, nil
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

// checkHeaders applies the MCP 2026-07-28 Streamable HTTP server validation
// to the standard headers that are present: Mcp-Method must equal the body's
// method and Mcp-Name (after decoding the =?base64?…?= form) the body's
// params.name or params.uri. Headers are optional so that 2025-11-25 clients,
// which do not send them, keep working; the decision is always made on the
// body.
func checkHeaders(h http.Header, r *rpcRequest) error {
	if vals, ok := h["Mcp-Method"]; ok {
		if len(vals) != 1 || r.isResponse || vals[0] != r.method {
			return ErrHeaderMismatch
		}
	}
	vals, ok := h["Mcp-Name"]
	if !ok {
		return nil
	}
	if len(vals) != 1 || r.isResponse {
		return ErrHeaderMismatch
	}
	m := mcpMethods[r.method]
	if m.nameOf == "" {
		return ErrHeaderMismatch
	}
	body, ok := r.stringParam(m.nameOf)
	if !ok {
		return ErrHeaderMismatch
	}
	got, ok := decodeHeaderValue(vals[0])
	if !ok || got != body {
		return ErrHeaderMismatch
	}
	return nil
}

// decodeHeaderValue decodes the MCP Base64 sentinel form
// "=?base64?<std base64 of UTF-8>?=" (markers case-sensitive); any other value
// is taken literally.
func decodeHeaderValue(v string) (string, bool) {
	const prefix, suffix = "=?base64?", "?="
	if !strings.HasPrefix(v, prefix) || !strings.HasSuffix(v, suffix) || len(v) < len(prefix)+len(suffix) {
		return v, true
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(v[len(prefix) : len(v)-len(suffix)])
	if err != nil || !utf8.Valid(raw) {
		return "", false
	}
	return string(raw), true
}

// request builds the Cedar request and its entity view.
//
// With sel nil the context is complete; otherwise it holds only the
// attributes sel's policies can observe (see selection).
func (s *subject) request(a *Authorizer, op *operation, sel *selection) (cedar.Request, *overlay) {
	var ctx cedar.Record
	switch {
	case op.args == nil:
		ctx = s.ctxRecord
	case sel == nil || sel.ctxAll:
		m := make(cedar.RecordMap, len(s.ctxBase)+len(op.args.Kids))
		maps.Copy(m, s.ctxBase)
		op.addArgs(m)
		ctx = cedar.NewRecord(m)
	case len(sel.ctxKeys) == 0:
		ctx = cedar.Record{}
	default:
		m := make(cedar.RecordMap, len(sel.ctxKeys))
		for _, k := range sel.ctxKeys {
			if v, ok := op.arg(k); ok {
				m[k] = v
			} else if v, ok := s.ctxBase[k]; ok {
				m[k] = v
			}
		}
		ctx = cedar.NewRecord(m)
	}
	return cedar.Request{Principal: s.uid, Action: op.action, Resource: op.resource, Context: ctx},
		&overlay{a: a, static: a.entities, sub: s, op: *op}
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
