package authz

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/mcpauth-go/mcpauth/internal/jsonread"
)

// This file is the JSON-RPC request and its header rules: the MCP method
// table, the parse of one message (with the member-name rules that keep
// the request authorized equal to the request the handler decodes), and
// the Mcp-Method/Mcp-Name check.

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
	// resultKeys are the result members a list filter reads: the list
	// and cacheScope (a case variant of either is refused).
	resultKeys []string
	nameOf     string // Mcp-Name source member of params ("" when the header has no source)
	// removed: a 2025-11-25 method that 2026-07-28 removed, unknown to a
	// request of that revision or a later one (revision.go).
	removed bool
}

// mcpMethods lists every client-to-server method of MCP 2026-07-28 and the
// 2025-11-25 methods still accepted for backwards compatibility (from
// requests of an earlier revision than 2026-07-28). A method not listed here
// is denied.
var mcpMethods = map[string]mcpMethod{
	"tools/call":               {kind: kindTool, action: actionCallTool, nameOf: "name"},
	"prompts/get":              {kind: kindPrompt, action: actionGetPrompt, nameOf: "name"},
	"resources/read":           {kind: kindResource, action: actionReadResource, nameOf: "uri"},
	"resources/subscribe":      {kind: kindResource, action: actionReadResource, removed: true}, // 2025-11-25 only
	"resources/unsubscribe":    {kind: kindResource, action: actionReadResource, removed: true}, // 2025-11-25 only
	"completion/complete":      {kind: kindCompletion},                                          // authorized as the referenced prompt/resource
	"tools/list":               {kind: kindList, action: actionListTools, feature: "tool", listKey: "tools", resultKeys: []string{"tools", "cacheScope"}, itemKey: "name"},
	"prompts/list":             {kind: kindList, action: actionListPrompts, feature: "prompt", listKey: "prompts", resultKeys: []string{"prompts", "cacheScope"}, itemKey: "name"},
	"resources/list":           {kind: kindList, action: actionListResources, feature: "resource", listKey: "resources", resultKeys: []string{"resources", "cacheScope"}, itemKey: "uri"},
	"resources/templates/list": {kind: kindList, action: actionListResources, feature: "resource", listKey: "resourceTemplates", resultKeys: []string{"resourceTemplates", "cacheScope"}, itemKey: "uriTemplate"},

	"server/discover":                  {kind: kindProtocol},
	"subscriptions/listen":             {kind: kindListen},   // authorized as resources/subscribe, per URI
	"tasks/get":                        {kind: kindProtocol}, // tasks extension; task ownership is the server's check
	"tasks/update":                     {kind: kindProtocol},
	"tasks/cancel":                     {kind: kindProtocol},
	"tasks/result":                     {kind: kindProtocol, removed: true}, // 2025-11-25 only
	"tasks/list":                       {kind: kindProtocol, removed: true}, // 2025-11-25 only
	"initialize":                       {kind: kindProtocol, removed: true}, // 2025-11-25 only
	"ping":                             {kind: kindProtocol, removed: true}, // 2025-11-25 only
	"logging/setLevel":                 {kind: kindProtocol, removed: true}, // 2025-11-25 only
	"notifications/initialized":        {kind: kindProtocol, removed: true}, // 2025-11-25 only
	"notifications/cancelled":          {kind: kindProtocol},
	"notifications/progress":           {kind: kindProtocol},
	"notifications/roots/list_changed": {kind: kindProtocol, removed: true}, // 2025-11-25 only
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
	mcp        mcpMethod // mcpMethods[method], looked up once
	known      bool      // method is in mcpMethods
	isResponse bool      // a JSON-RPC response posted by a 2025-11-25 client
	params     *jsonread.Value
	body       []byte      // the message: the parse tree's source
	header     http.Header // the HTTP request's (nil from Authorize), for its protocol version
}

// parseRPC parses and validates one JSON-RPC message into a new rpcRequest.
func parseRPC(body []byte) (*rpcRequest, error) {
	r := &rpcRequest{}
	err := r.parse(new(jsonread.Parser), body)
	return r, err
}

// parse parses and validates one JSON-RPC message with p, whose memory
// holds the parameters until p's next parse. On error, r.id is the request
// id when it was read.
func (r *rpcRequest) parse(p *jsonread.Parser, body []byte) error {
	*r = rpcRequest{body: body}
	// _meta (protocol version, client info and capabilities) is checked but
	// not kept: nothing here reads it.
	root, err := p.Parse(body, jsonread.Options{SkipMeta: true, MaxValues: maxRequestValues})
	return r.envelope(&root, err)
}

// envelope validates the parsed message root (err is the parse's error)
// and reads its members into r. It is a function of its own so that its
// locals are not on the goroutine's stack during the parse.
func (r *rpcRequest) envelope(root *jsonread.Value, err error) error {
	body := r.body
	switch {
	case errors.Is(err, jsonread.ErrDuplicate):
		return ErrInvalidRequest
	case err != nil:
		return ErrParse
	case root.Kind != jsonread.Object: // a batch array, or not a message at all
		return ErrInvalidRequest
	}
	// One pass over the members, in place of a lookup per name: names are
	// unique (the parser refuses duplicates and case variants of each
	// other), so only a name that is none of the envelope's can be a case
	// variant of one.
	var id, jsonrpc, params, method *jsonread.Value
	var hasResult, hasError bool
	for i := range root.Kids {
		m := &root.Kids[i]
		switch m.Key {
		case "id":
			id = &m.Val
		case "jsonrpc":
			jsonrpc = &m.Val
		case "method":
			method = &m.Val
		case "params":
			params = &m.Val
		case "result":
			hasResult = true
		case "error":
			hasError = true
		default:
			if caseVariant(m.Key, envelopeMembers) {
				return ErrInvalidRequest
			}
		}
	}
	if v := id; v != nil {
		if v.Kind != jsonread.String && v.Kind != jsonread.Number && v.Kind != jsonread.Null {
			return ErrInvalidRequest
		}
		r.id = body[v.Start:v.End]
	}
	if v := jsonrpc; v == nil || v.Kind != jsonread.String || v.Text != "2.0" {
		return ErrInvalidRequest
	}
	if v := params; v != nil {
		if v.Kind != jsonread.Object && v.Kind != jsonread.Array {
			return ErrInvalidRequest
		}
		r.params = v
	}
	v := method
	if v == nil {
		if r.id == nil || hasResult == hasError {
			return ErrInvalidRequest
		}
		r.isResponse = true
		return nil
	}
	if v.Kind != jsonread.String {
		return ErrInvalidRequest
	}
	r.method = v.Text
	r.mcp, r.known = mcpMethods[r.method]
	return nil
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

// caseVariant reports whether name is not one of names but equals one of
// them under Unicode simple case folding (see jsonread.Value.CaseVariant).
func caseVariant(name string, names []string) bool {
	for _, n := range names {
		if name != n && strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

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
	m := &r.mcp
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
