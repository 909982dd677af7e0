// Package authz enforces Cedar policies on MCP JSON-RPC requests (MCP
// 2026-07-28, backwards compatible with 2025-11-25) and filters list
// responses to what the caller may use.
//
// It is the step after authentication: [Authorizer.Middleware] must be
// wrapped by authn's middleware, and a request whose context holds no
// verified identity (authn.FromContext) is denied. Standards: JSON-RPC 2.0,
// RFC 8259 (JSON), RFC 6750 §3.1 and RFC 9728 §5.1 (the insufficient_scope
// step-up challenge), the MCP Streamable HTTP transport (Mcp-Method/Mcp-Name
// validation, HeaderMismatch -32020) and the Cedar policy language, evaluated
// by github.com/cedar-policy/cedar-go.
//
// # Request handling
//
// The body of each POST is read once, up to Config.MaxBodyBytes (1 MiB by
// default; larger is HTTP 413), and the handler later receives the identical
// bytes. Malformed JSON, invalid UTF-8, nesting deeper than 64 or more than
// 131 072 values (each costs some 72 bytes parsed) is HTTP 400 with JSON-RPC
// -32700; a
// batch array, a message that is not JSON-RPC 2.0, or an object holding two
// member names that are equal or differ only in case (at any depth) is 400
// with -32600; so is a JSON-RPC member (jsonrpc, id, method, params, result,
// error) spelled in another case, and an MCP parameter the mapping reads
// (name, arguments, uri, ref and its type, name, uri) spelled in another case
// is 400 with -32602. These rules exist because encoding/json keeps the last
// duplicate and matches struct fields case-insensitively (Unicode simple
// folding) while case-sensitive decoders do not: without them the request
// authorized could differ from the request the handler decodes, e.g.
// {"Method":"tools/call",…,"result":{}} would pass here as a client response.
// Tool argument names are the tool's own and are taken as spelled; a policy
// on context.arg_path does not see an argument sent as "Path".
//
// When the Mcp-Method or Mcp-Name header is present it must equal the body's
// method, or params.name (tools/call, prompts/get) or params.uri
// (resources/read), after decoding the "=?base64?…?=" form; otherwise 400
// with -32020. The headers are optional (2025-11-25 clients do not send
// them); the decision is always made on the body.
//
// A denial is HTTP 403 with a JSON-RPC error echoing the request id, code
// [CodeForbidden] and the fixed message "Forbidden". When the denial is for a
// missing scope, the response also carries
// `WWW-Authenticate: Bearer error="insufficient_scope", scope="…", resource_metadata="…"`.
// A method authz does not know is refused too, with [CodeMethodNotFound]
// (see Unknown methods).
//
// # Methods
//
// tools/call, prompts/get, resources/read (and the 2025-11-25
// resources/subscribe and resources/unsubscribe), completion/complete
// (authorized as the prompt or resource its ref names) and
// subscriptions/listen (read_resource on every URI of
// params.notifications.resourceSubscriptions, its replacement for
// resources/subscribe; allowed when it names none) are evaluated.
// tools/list, prompts/list, resources/list and resources/templates/list pass
// (unless Config.AuthorizeLists) and their responses, JSON or
// text/event-stream, are filtered: an item stays when the caller could call
// the tool, get the prompt or read the resource (a template is checked as
// read_resource on its uriTemplate), or would be denied only for a missing
// scope, so that calling it gets the step-up challenge (see Scope step-up). Only the removed items' bytes change; in
// an event stream, events that carry no list are copied as they are, except
// that event ids are removed (the response is sent complete, and a
// 2025-11-25 server keeping its events would replay the unfiltered list to a
// GET with that Last-Event-ID). A list result is filtered whatever the HTTP
// status it comes with. A filtered result is the caller's own: its
// cacheScope (MCP 2026-07-28 CacheableResult) becomes "private" (and is
// added when absent), and the response's Cache-Control leads with private,
// without public or s-maxage. A list response that cannot be filtered (a
// content type other than JSON or SSE, a Content-Encoding such as gzip,
// malformed or ambiguous JSON, more than Config.MaxResponseBytes) is
// replaced by a JSON-RPC -32603 error, with HTTP 500 (or the handler's own
// status when it is 400 or more): a list is never passed on unfiltered. Methods carrying no resource pass:
// server/discover, tasks/get, tasks/update,
// tasks/cancel and, from 2025-11-25, initialize, ping, logging/setLevel,
// tasks/list, tasks/result and the client notifications initialized,
// cancelled, progress and roots/list_changed; so do JSON-RPC responses a
// 2025-11-25 client posts. Every other method is denied as unknown (see
// Unknown methods), and so are the methods 2026-07-28 removed (initialize,
// notifications/initialized, ping, logging/setLevel, resources/subscribe,
// resources/unsubscribe, tasks/result, tasks/list,
// notifications/roots/list_changed) in a request of 2026-07-28 or later,
// whatever the policies say. Non-POST requests
// without a body (GET streams, DELETE of 2025-11-25 sessions) pass once an
// identity is present; one with a body is authorized like a POST.
//
// # Unknown methods
//
// A request for a method authz does not know never reaches the handler, and
// is audited and reported to the Observer as a denial with the reason
// "unknown method": with no policy written for it, deny by default holds.
// Its answer is a JSON-RPC error with the request's id (null for a
// notification), code -32601 and the message "Method not found", with an
// HTTP status chosen by the revision the request names in its
// MCP-Protocol-Version header:
//
//   - 2026-07-28 or later (or a value that is not a revision date, since
//     every earlier revision is one): 404 Not Found, as its Streamable HTTP
//     transport requires of a server that does not implement the method.
//     The JSON-RPC body tells this 404 apart from a legacy HTTP+SSE server's.
//   - an earlier revision, or no header (which 2025-11-25 and 2026-07-28 both
//     take as 2025-03-26; a 2025-11-25 client sends none on initialize):
//     403 Forbidden. In 2025-03-26 to 2025-11-25, 404 means that the session
//     is gone: a client that sent Mcp-Session-Id and gets 404 must start a
//     new session (2025-11-25 Streamable HTTP, Session Management 3 and 4),
//     so it would re-initialize and send the same request again, to be
//     refused again. 400 would call the request malformed, which it is not,
//     and these revisions give an unknown method no status of their own.
//     200 with the error, what a server of theirs answers for a method it
//     lacks, would make a refusal look like a served request to every
//     proxy, log and dashboard that counts HTTP statuses, and a
//     notification, which gets no JSON-RPC answer, must be refused with an
//     error status anyway (2025-11-25 Sending Messages 4). 403 is what authz
//     answers every refusal with, which these clients already handle (no
//     WWW-Authenticate, so no step-up). The code is -32601 all the same:
//     no policy was evaluated and none could allow the method, so
//     [CodeForbidden] would send the user to ask for a permission that
//     does not exist.
//
// The header is the client's word: it chooses between these two refusals
// and whether a method 2026-07-28 removed is unknown or, as in the earlier
// revisions, decided by the policies; no value of it lets through a request
// that another value would refuse by policy. [Authorizer.Authorize] has no
// header: it decides as for an earlier revision.
//
// # Request to Cedar
//
// The mapping follows ToolHive's Cedar authorizer, so its policies carry
// over:
//
//	principal  Client::"<sub>", or Client::"<iss>#<sub>" when Config.Issuers
//	           lists several issuers (a sub is unique only within its issuer)
//	           parents: <GroupEntityType>::"<g>" (default THVGroup) for every
//	           string in the GroupClaims claims (default "groups", "roles")
//	           attributes: claim_<name> for every claim
//	action     Action::"call_tool"      tools/call
//	           Action::"get_prompt"     prompts/get, completion/complete (ref/prompt)
//	           Action::"read_resource"  resources/read, resources/subscribe,
//	                                    resources/unsubscribe, completion/complete (ref/resource),
//	                                    subscriptions/listen (each resourceSubscriptions URI)
//	           Action::"list_tools", "list_prompts", "list_resources"
//	                                    list methods, only with Config.AuthorizeLists
//	resource   Tool::"<name>"     attributes name, operation "call", feature "tool", arg_*, and
//	                              readOnlyHint, destructiveHint, idempotentHint, openWorldHint
//	                              as the latest tools/list response gave them
//	           Prompt::"<name>"   attributes name, operation "get", feature "prompt", arg_*
//	           Resource::"<uri>"  attributes name and uri (the exact URI), operation "read", feature "resource"
//	           FeatureType::"tool" | "prompt" | "resource"  (list actions)
//	context    claim_<name> for every claim, arg_<name> for every argument,
//	           scopes (Set of String, the token's scopes), client_id (String,
//	           when the token names a client)
//
// Tool annotation hints are learnt from the tools/list responses the
// middleware filters (as in ToolHive), so "engineers may call any read-only
// tool" is
//
//	permit (principal in THVGroup::"engineering", action == Action::"call_tool", resource)
//	when { resource has readOnlyHint && resource.readOnlyHint };
//
// Before the first tools/list, or when the latest one gives a tool no hints,
// the attributes are absent; the `has` guard then makes the permit not apply.
// The server is trusted for its hints; a policy that must not depend on them
// names tools or uses Config.Entities instead.
//
// Entities from Config.Entities with the same uid as the request's principal
// or resource are merged into it: parents are united, and the static
// attributes win over generated ones of the same name.
//
// Values: JSON strings and booleans map to String and Boolean; arrays to
// Set; objects to Record; members whose value is null are left out (Go
// decodes a null member like an absent one). A JSON number with an integral
// value is a Long, however it is spelt (1, 1.0, 1e0: a handler sees the same
// number, so `== 1` must match all three), when a float64 holds it exactly
// (every integer up to 2^53 in magnitude; beyond, only those a double has:
// 1e18 yes, 9007199254740993 no, since Go's any decoding and every
// JavaScript SDK hand the handler 9007199254740992) and, for a spelling
// with fraction or exponent, it is in decimal's range; any other number is
// a decimal when its value is exact with at most four fractional digits
// and the nearest float64 reads back as the same value (1.5, 0.25e1;
// decimal's range); a number that is neither, or a null
// inside an array, has no faithful Cedar value and the request is denied,
// because leaving the argument out would silently skip policies that test
// `context has arg_x`. Claims come from the verified token: they follow the
// same rules (an integral float64 is a Long), except that a claim without a
// Cedar value is left out instead of denying.
//
// # Decisions
//
// Deny by default. Cedar's rule applies (any satisfied forbid denies,
// otherwise a satisfied permit allows) with one change: if any policy that
// applies to the request fails to evaluate (a missing attribute, a type
// error, an overflow), the request is denied, even if a permit is satisfied,
// so an erroring forbid never lets a permit through. Guard optional
// attributes with `has`.
//
// Scope step-up: Config.ToolScopes names scopes a tool requires, checked
// before the policies; and a forbid annotated @scope("s1 s2") that determines
// a deny turns it into an insufficient_scope challenge for those scopes, e.g.
//
//	@id("delete-needs-admin-scope")
//	@scope("repo:admin")
//	forbid (principal, action == Action::"call_tool", resource == Tool::"delete_repo")
//	unless { context.scopes.contains("repo:admin") };
//
// Policy ids are taken from @id annotations, else "policy<n>" by position.
// Names are checked at load: a policy naming an action the mapping never
// issues (Action::"call-tool"), or an entity type it never produces and
// Config.Entities does not use (Tol::"x"), is an error naming the policy,
// its line and column, rather than a policy that silently never matches;
// so is, with several Config.Issuers, a Client id without a listed issuer.
// Each decision is logged to Config.Logger with the ids of the policies that
// determined it (never a token).
//
// # Metrics and traces
//
// With Config.Observer set (package observe), every decision of the
// middleware and every call of [Authorizer.Authorize] is a Decision event:
// outcome, the MCP method when authz knows it, the Cedar action, the ids of
// the deciding policies, and its start and duration (from the body read to
// the decision). Every filtered list response is one ListFilter event: the
// list method and the numbers of items kept and removed. Items are counted,
// not reported one by one: a list of hundreds of tools would make hundreds
// of events per request, and an item's name (a tool, a prompt, a resource
// URI, possibly different per user) is no label for a metric. Nothing names
// the principal or the resource. Without an Observer the hooks are nil
// checks and the clock is not read.
//
// # Cost
//
// Policies are indexed by their action and resource scope (action ==, in,
// in [...], including action groups from the static entities; resource ==,
// is, is … in); a request evaluates only the policies whose scope can match
// it, plus those with an unconstrained action or resource, so its cost grows
// with the policies that concern its tool, not with the size of the set.
// The context handed to Cedar holds only the attributes those policies read
// (Cedar observes a record only through `.attr`, `["attr"]` and `has`; a
// policy that uses `context` any other way gets the whole record), and the
// resource entity and argument values are built only when a policy reads
// them. A differential test against the official Cedar engine (cedar-wasm,
// given the complete context and every policy) checks that this gives the
// same decision, determining policies and erroring policies.
//
// The Cedar form of a caller (principal entity, claim attributes) is cached
// per bearer token (authn.TokenInfo.Token), in a bounded LRU keyed by a
// seeded hash of the token; a hit also compares the whole token, issuer,
// subject, client id and scopes, so one token is never served another's
// subject.
//
// A list response is read in one pass (every value checked, only the items'
// members kept) and each item is decided once per caller: the decision is
// cached per (subject, item, tool annotations version) in the policy set it
// was made with, bounded in size, so a Reload, another caller or a change
// of the tool's hints never reuses it. A call is cached the same way, its
// key extended with the source text of the arguments its policies name
// (`arg_<name>`, on the context or the resource; Cedar reaches an attribute
// only by its literal name): a call whose policies read no argument is
// decided once per caller and tool, one whose policies read some is decided
// again for any other text of those arguments, and one whose policies use
// the whole context, or whose read arguments exceed 512 bytes, is always
// evaluated. A decision keyed on arguments is stored only the second time
// its key is asked, so arguments that never repeat cost no entry. The
// memory a decision needs (parse tree, entity view, context scratch) is
// recycled between requests; it never holds the body the handler reads.
//
// A server answers every tools/list with the same bytes but for the
// JSON-RPC id, so the policy set also remembers the shape of the last few
// list messages seen twice (where the list, its items and their names are;
// up to 256 KiB each) and, per caller, which items it may see: a message
// equal to a remembered one except for its id, which must parse as one
// string, number or null, is filtered without being parsed again. Only a
// message that passed the full parse is remembered, so the one filtered
// this way is one the full parse accepts, with the same items; a change of
// tool hints since, or a Reload, sets the shape aside.
//
// [Authorizer.Reload] swaps the policy set atomically; a bad set is rejected
// and the old one stays in force.
package authz
