package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth-go/mcpauth/authn"
)

const testPolicies = `
@id("read-only-tools")
permit (principal in THVGroup::"engineering", action == Action::"call_tool", resource)
when { resource.name like "get_*" || resource.name like "list_*" };

@id("admins-delete")
permit (principal in THVGroup::"admins", action == Action::"call_tool", resource == Tool::"delete_repo");

@id("weather-cities")
permit (principal, action == Action::"call_tool", resource == Tool::"weather")
when { context.arg_city == "London" || context.arg_city == "Paris" };

@id("limit")
permit (principal, action == Action::"call_tool", resource == Tool::"transfer")
when { context.arg_amount <= 100 };

@id("no-etc")
forbid (principal, action == Action::"read_resource", resource)
when { resource.uri like "file:///etc/*" };

@id("read-files")
permit (principal, action == Action::"read_resource", resource)
when { resource.uri like "file:///*" };

@id("greeting")
permit (principal, action == Action::"get_prompt", resource == Prompt::"greeting");

@id("erroring-forbid")
forbid (principal, action == Action::"call_tool", resource == Tool::"get_secret")
when { context.arg_level > 3 };

@id("deploy-scope")
@scope("deploy:write")
forbid (principal, action == Action::"call_tool", resource == Tool::"deploy")
unless { context.scopes.contains("deploy:write") };

@id("deploy")
permit (principal in THVGroup::"engineering", action == Action::"call_tool", resource == Tool::"deploy");
`

func engineer() *authn.TokenInfo {
	return &authn.TokenInfo{
		Issuer: "https://idp.example", Subject: "alice", ClientID: "client-1",
		Scopes: []string{"mcp"},
		Claims: map[string]any{"sub": "alice", "groups": []any{"engineering"}, "email": "alice@example.com", "level": float64(2)},
	}
}

// withIdentity plays authn's part: it puts info into the request context.
func withIdentity(info *authn.TokenInfo, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info != nil {
			r = r.WithContext(authn.NewContext(r.Context(), info))
		}
		h.ServeHTTP(w, r)
	})
}

type recorder struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (rec *recorder) handler(resp func(w http.ResponseWriter, r *http.Request, body []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.bodies = append(rec.bodies, b)
		rec.mu.Unlock()
		if resp != nil {
			resp(w, r, b)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"ok":true}}`)
	})
}

func newTestAuthorizer(t *testing.T, mut func(*Config)) *Authorizer {
	t.Helper()
	cfg := Config{Policies: testPolicies, ResourceMetadataURL: "https://mcp.example/.well-known/oauth-protected-resource/mcp"}
	if mut != nil {
		mut(&cfg)
	}
	a, err := New(cfg)
	require.NoError(t, err)
	return a
}

type rpcErr struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func post(t *testing.T, srv *httptest.Server, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

func call(tool, args string) string {
	if args == "" {
		return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + tool + `"}}`
	}
	return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args + `}}`
}

func TestMiddlewareDecisions(t *testing.T) {
	t.Parallel()
	admin := engineer()
	admin.Claims = map[string]any{"roles": []any{"admins"}}
	stranger := &authn.TokenInfo{Subject: "mallory", Claims: map[string]any{"groups": []any{"sales"}}}
	cases := []struct {
		name   string
		info   *authn.TokenInfo
		body   string
		hdr    map[string]string
		status int
		code   int    // JSON-RPC error code when status != 200
		id     string // echoed id
	}{
		{"group permit", engineer(), call("get_issue", `{"n":1}`), nil, 200, 0, ""},
		{"no permit for group", stranger, call("get_issue", ""), nil, 403, CodeForbidden, "7"},
		{"roles claim as group", admin, call("delete_repo", ""), nil, 200, 0, ""},
		{"engineer cannot delete", engineer(), call("delete_repo", ""), nil, 403, CodeForbidden, "7"},
		{"argument string allowed", stranger, call("weather", `{"city":"London"}`), nil, 200, 0, ""},
		{"argument string denied", stranger, call("weather", `{"city":"Berlin"}`), nil, 403, CodeForbidden, "7"},
		{"missing argument is error deny", stranger, call("weather", `{}`), nil, 403, CodeForbidden, "7"},
		{"long argument allowed", stranger, call("transfer", `{"amount":100}`), nil, 200, 0, ""},
		{"long argument denied", stranger, call("transfer", `{"amount":101}`), nil, 403, CodeForbidden, "7"},
		{"decimal vs long is type error deny", stranger, call("transfer", `{"amount":1.5}`), nil, 403, CodeForbidden, "7"},
		{"unrepresentable number denied", stranger, call("transfer", `{"amount":1e400}`), nil, 403, CodeForbidden, "7"},
		{"erroring forbid blocks permit", engineer(), call("get_secret", `{"level":"high"}`), nil, 403, CodeForbidden, "7"},
		{"forbid not satisfied", engineer(), call("get_secret", `{"level":1}`), nil, 200, 0, ""},
		{"forbid satisfied", engineer(), call("get_secret", `{"level":5}`), nil, 403, CodeForbidden, "7"},
		{"resource permit", stranger, `{"jsonrpc":"2.0","id":"r1","method":"resources/read","params":{"uri":"file:///home/a"}}`, nil, 200, 0, ""},
		{"resource forbid", stranger, `{"jsonrpc":"2.0","id":"r1","method":"resources/read","params":{"uri":"file:///etc/passwd"}}`, nil, 403, CodeForbidden, `"r1"`},
		{"prompt", stranger, `{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"greeting"}}`, nil, 200, 0, ""},
		{"completion of prompt not allowed", stranger, `{"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"secret"},"argument":{"name":"a","value":"b"}}}`, nil, 403, CodeForbidden, "2"},
		{"completion of allowed prompt", stranger, `{"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"greeting"},"argument":{"name":"a","value":"b"}}}`, nil, 200, 0, ""},
		{"protocol method passes", stranger, `{"jsonrpc":"2.0","id":3,"method":"server/discover","params":{}}`, nil, 200, 0, ""},
		{"legacy ping passes", stranger, `{"jsonrpc":"2.0","id":3,"method":"ping"}`, nil, 200, 0, ""},
		{"notification passes", stranger, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`, nil, 200, 0, ""},
		{"unknown method denied", engineer(), `{"jsonrpc":"2.0","id":4,"method":"tools/delete","params":{"name":"get_x"}}`, nil, 403, CodeMethodNotFound, "4"},
		{"unknown notification denied", engineer(), `{"jsonrpc":"2.0","method":"notifications/evil"}`, nil, 403, CodeMethodNotFound, "null"},
		{"no identity", nil, call("get_issue", ""), nil, 403, CodeForbidden, "null"},
		{"empty subject", &authn.TokenInfo{}, call("get_issue", ""), nil, 403, CodeForbidden, "null"},
		{"malformed", engineer(), `{"jsonrpc":"2.0","id":1,`, nil, 400, CodeParseError, "null"},
		{"invalid utf-8", engineer(), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"get_\xff\"}}", nil, 400, CodeParseError, "null"},
		{"batch", engineer(), `[` + call("get_issue", "") + `]`, nil, 400, CodeInvalidRequest, "null"},
		{"not jsonrpc 2.0", engineer(), `{"jsonrpc":"1.0","id":1,"method":"ping"}`, nil, 400, CodeInvalidRequest, "1"},
		{"duplicate name", engineer(), `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_issue","name":"delete_repo"}}`, nil, 400, CodeInvalidRequest, "null"},
		{"case-variant name", engineer(), `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_issue","Name":"delete_repo"}}`, nil, 400, CodeInvalidRequest, "null"},
		{"case-variant method", engineer(), `{"jsonrpc":"2.0","id":1,"method":"tools/call","Method":"tools/list","params":{"name":"get_issue"}}`, nil, 400, CodeInvalidRequest, "null"},
		{"duplicate via escape", engineer(), `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_issue","n\u0061me":"delete_repo"}}`, nil, 400, CodeInvalidRequest, "null"},
		{"duplicate nested argument", stranger, call("weather", `{"city":"London","opts":{"a":1,"A":2}}`), nil, 400, CodeInvalidRequest, "null"},
		{"case-variant argument", stranger, call("weather", `{"city":"London","City":"Berlin"}`), nil, 400, CodeInvalidRequest, "null"},
		{"kelvin sign variant", stranger, call("weather", `{"city":"London","k":1,"\u212a":2}`), nil, 400, CodeInvalidRequest, "null"},
		{"tools/call without name", engineer(), `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{}}`, nil, 400, CodeInvalidParams, "5"},
		{"arguments not an object", engineer(), call("get_issue", `[1]`), nil, 400, CodeInvalidParams, "7"},
		{"headers match", engineer(), call("get_issue", ""), map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "get_issue"}, 200, 0, ""},
		{"method header mismatch", engineer(), call("get_issue", ""), map[string]string{"Mcp-Method": "tools/list"}, 400, CodeHeaderMismatch, "7"},
		{"name header mismatch", engineer(), call("delete_repo", ""), map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "get_issue"}, 400, CodeHeaderMismatch, "7"},
		{"base64 name header", engineer(), call("get_ünïcode", ""), map[string]string{"Mcp-Name": "=?base64?Z2V0X8O8bsOvY29kZQ==?="}, 200, 0, ""},
		{"base64 name header mismatch", engineer(), call("get_issue", ""), map[string]string{"Mcp-Name": "=?base64?ZGVsZXRlX3JlcG8=?="}, 400, CodeHeaderMismatch, "7"},
		{"bad base64 name header", engineer(), call("get_issue", ""), map[string]string{"Mcp-Name": "=?base64?***?="}, 400, CodeHeaderMismatch, "7"},
		{"name header on method without name", engineer(), `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`, map[string]string{"Mcp-Name": "x"}, 400, CodeHeaderMismatch, "9"},
		{"uri header", stranger, `{"jsonrpc":"2.0","id":"r1","method":"resources/read","params":{"uri":"file:///home/a"}}`, map[string]string{"Mcp-Name": "file:///home/a"}, 200, 0, ""},
		{"client response passes", stranger, `{"jsonrpc":"2.0","id":11,"result":{}}`, nil, 200, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newTestAuthorizer(t, nil)
			rec := &recorder{}
			srv := httptest.NewServer(withIdentity(tc.info, a.Middleware(rec.handler(nil))))
			defer srv.Close()
			resp, body := post(t, srv, tc.body, tc.hdr)
			require.Equal(t, tc.status, resp.StatusCode, "body: %s", body)
			if tc.status == http.StatusOK {
				require.Len(t, rec.bodies, 1)
				assert.Equal(t, tc.body, string(rec.bodies[0]), "handler must see the identical bytes")
				return
			}
			assert.Empty(t, rec.bodies, "handler must not run")
			var e rpcErr
			require.NoError(t, json.Unmarshal(body, &e), "body: %s", body)
			assert.Equal(t, "2.0", e.JSONRPC)
			assert.Equal(t, tc.code, e.Error.Code)
			assert.Equal(t, tc.id, string(e.ID))
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.NotContains(t, string(body), "permit", "no policy text in responses")
			assert.Empty(t, resp.Header.Get("WWW-Authenticate"))
		})
	}
}

// TestCaseVariantMembers covers members that only a case-insensitive
// decoder (encoding/json struct fields, Unicode simple folding) takes for the
// JSON-RPC or MCP member: without a rule, {"Method":…,"result":{}} is a client
// response here and a tools/call to such a decoder, and "Arguments" hides the
// arguments from the policies.
func TestCaseVariantMembers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		code       int
	}{
		{"Method with result", `{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"delete_repo"},"result":{}}`, CodeInvalidRequest},
		{"methoD with error", `{"jsonrpc":"2.0","id":1,"methoD":"tools/call","params":{"name":"delete_repo"},"error":{"code":1,"message":"x"}}`, CodeInvalidRequest},
		{"Result", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo"},"Result":{}}`, CodeInvalidRequest},
		{"ID", `{"jsonrpc":"2.0","ID":1,"method":"tools/call","params":{"name":"get_issue"}}`, CodeInvalidRequest},
		{"Params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","Params":{"name":"delete_repo"}}`, CodeInvalidRequest},
		{"long s in params", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"param\u017f\":{\"name\":\"delete_repo\"}}", CodeInvalidRequest},
		{"Arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_file","Arguments":{"path":"/etc/passwd"}}}`, CodeInvalidParams},
		{"long s in arguments", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"get_file\",\"argument\u017f\":{\"path\":\"/etc/passwd\"}}}", CodeInvalidParams},
		{"Name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"delete_repo"}}`, CodeInvalidParams},
		{"URI", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"URI":"file:///etc/passwd"}}`, CodeInvalidParams},
		{"ref Name", `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","Name":"secret"},"argument":{"name":"a","value":"b"}}}`, CodeInvalidParams},
	}
	a := newTestAuthorizer(t, func(c *Config) {
		c.Policies += `
@id("no-etc-files") forbid (principal, action == Action::"call_tool", resource == Tool::"get_file")
when { context has arg_path && context.arg_path like "/etc/*" };`
	})
	ctx := authn.NewContext(context.Background(), engineer())
	d, err := a.Authorize(ctx, []byte(call("get_file", `{"path":"/etc/passwd"}`)))
	require.NoError(t, err)
	require.False(t, d.Allowed, "the canonical spelling is denied")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			srv := httptest.NewServer(withIdentity(engineer(), a.Middleware(rec.handler(nil))))
			defer srv.Close()
			resp, body := post(t, srv, tc.body, nil)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, "body: %s", body)
			assert.Empty(t, rec.bodies, "handler must not run")
			var e rpcErr
			require.NoError(t, json.Unmarshal(body, &e), "body: %s", body)
			assert.Equal(t, tc.code, e.Error.Code)
		})
	}
}

func TestMiddlewareBodyLimit(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, func(c *Config) { c.MaxBodyBytes = 90 })
	rec := &recorder{}
	srv := httptest.NewServer(withIdentity(engineer(), a.Middleware(rec.handler(nil))))
	defer srv.Close()
	resp, _ := post(t, srv, call("get_issue", `{"pad":"`+strings.Repeat("x", 100)+`"}`), nil)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Empty(t, rec.bodies)
	resp, _ = post(t, srv, call("get_issue", ""), nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// A body longer than its declared Content-Length still meets the cap.
	h := withIdentity(engineer(), a.Middleware(rec.handler(nil)))
	for _, declared := range []int64{10, -1} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(call("get_issue", `{"pad":"`+strings.Repeat("x", 100)+`"}`)))
		req.ContentLength = declared
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code, "declared %d", declared)
	}
	assert.Len(t, rec.bodies, 1)
}

// TestReplayBodySizes: the handler reads the bytes that were authorized,
// whether the body was read into the array of a replay (of each size,
// up to smallBody bytes) or into one of its size, and whatever
// Content-Length declared.
func TestReplayBodySizes(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	rec := &recorder{}
	h := withIdentity(engineer(), a.Middleware(rec.handler(nil)))
	base := len(call("get_issue", `{"pad":""}`))
	var want []string
	for _, size := range []int{base, 215, 216, 343, 344, 471, 472, smallBody - 1, smallBody, smallBody + 1, 4 * smallBody} {
		body := call("get_issue", `{"pad":"`+strings.Repeat("x", size-base)+`"}`)
		require.Len(t, body, size)
		for _, declared := range []int64{int64(size), -1} {
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			req.ContentLength = declared
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			require.Equal(t, http.StatusOK, w.Code, "size %d declared %d", size, declared)
			want = append(want, body)
		}
	}
	require.Len(t, rec.bodies, len(want))
	for i := range want {
		assert.Equal(t, want[i], string(rec.bodies[i]))
	}
}

// TestMiddlewareValueLimit: the parsed form of a value costs some 36 times
// the two bytes of "0,", so the number of values is bounded as well as the
// body size.
func TestMiddlewareValueLimit(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	rec := &recorder{}
	srv := httptest.NewServer(withIdentity(engineer(), a.Middleware(rec.handler(nil))))
	defer srv.Close()
	array := func(n int) string { return `{"v":[` + strings.Repeat("0,", n-1) + `0]}` }
	resp, _ := post(t, srv, call("get_issue", array(100_000)), nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a large numeric argument passes")
	resp, body := post(t, srv, call("get_issue", array(maxRequestValues)), nil)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	var e rpcErr
	require.NoError(t, json.Unmarshal(body, &e))
	assert.Equal(t, CodeParseError, e.Error.Code)
	assert.Len(t, rec.bodies, 1)
}

func TestMiddlewareStepUp(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, func(c *Config) {
		c.ToolScopes = map[string][]string{"get_billing": {"billing:read", "mcp"}}
	})
	cases := []struct {
		name   string
		scopes []string
		body   string
		status int
		want   string // scope parameter
	}{
		{"tool scope table", []string{"mcp"}, call("get_billing", ""), 403, `scope="billing:read mcp"`},
		{"tool scope table satisfied", []string{"mcp", "billing:read"}, call("get_billing", ""), 200, ""},
		{"scope annotation", []string{"mcp"}, call("deploy", ""), 403, `scope="deploy:write"`},
		{"scope annotation satisfied", []string{"deploy:write"}, call("deploy", ""), 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			info := engineer()
			info.Scopes = tc.scopes
			srv := httptest.NewServer(withIdentity(info, a.Middleware((&recorder{}).handler(nil))))
			defer srv.Close()
			resp, body := post(t, srv, tc.body, nil)
			require.Equal(t, tc.status, resp.StatusCode, "%s", body)
			h := resp.Header.Get("WWW-Authenticate")
			if tc.status == 200 {
				assert.Empty(t, h)
				return
			}
			var e rpcErr
			require.NoError(t, json.Unmarshal(body, &e))
			assert.Equal(t, "7", string(e.ID))
			assert.True(t, strings.HasPrefix(h, "Bearer "), h)
			assert.Contains(t, h, `error="insufficient_scope"`)
			assert.Contains(t, h, tc.want)
			assert.Contains(t, h, `resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp"`)
		})
	}
}

func TestPolicyErrorsHavePositions(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, policies, want string }{
		{"syntax", "permit(principal, action, resource);\npermit(principal, action, resource) when { context.x + };", "policy 1 (policy1 unless it has an @id), line 2, column 57: syntax error"},
		{"syntax in a string", "permit(principal, action, resource) when { context.x == \";\" };\n// ;\npermit(principal, action, resource) when { context.x + };", "policy 1 (policy1 unless it has an @id), line 3, column"},
		{"duplicate id", "@id(\"a\")\npermit(principal, action, resource);\n@id(\"a\")\nforbid(principal, action, resource);", `policy "a" (line 3, column 1): id already used at line 1, column 1`},
		{"scope on permit", "@scope(\"x\")\npermit(principal, action, resource);", `policy "policy0" (line 1, column 1)`},
		{"empty", "  ", "no policies"},
		{"scope with a quote", "@scope(\"a\\\"b\")\nforbid(principal, action, resource);", `policy "policy0" (line 1, column 1)`},
		{"non-ASCII scope", "@scope(\"écrire\")\nforbid(principal, action, resource);", `policy "policy0" (line 1, column 1)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(Config{Policies: tc.policies})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// A scope the challenge could not carry as it is would name another one.
	for _, scope := range []string{"écrire", "a\x01b", "a\"b", "a b"} {
		_, err := New(Config{Policies: "permit(principal, action, resource);", ToolScopes: map[string][]string{"t": {scope}}})
		assert.Error(t, err, "%q", scope)
	}
	_, err := New(Config{Policies: "permit(principal, action, resource);", Entities: []byte("[\n {\"uid\": }]")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "authz: Config.Entities: malformed JSON: line 2, column")
}

// TestUnknownNamesRefused (issue 7 item 11): a policy naming an action or
// an entity type the MCP mapping never produces would silently never
// match; it is an error at load, naming the policy and its position.
func TestUnknownNamesRefused(t *testing.T) {
	t.Parallel()
	entities := []byte(`[
 {"uid":{"type":"Action","id":"call_tool"},"parents":[{"type":"Action","id":"reads"}],"attrs":{}},
 {"uid":{"type":"Tool","id":"get_issue"},"parents":[{"type":"ToolGroup","id":"safe"}],"attrs":{}}
]`)
	bad := map[string]string{
		`permit (principal, action == Action::"call-tool", resource);`:                                              `Action::"call-tool" is not an action the MCP mapping issues`,
		`permit (principal, action in [Action::"call_tool", Action::"callTool"], resource);`:                        `Action::"callTool"`,
		`permit (principal, action, resource) when { action == Action::"read_resources" };`:                         `Action::"read_resources"`,
		`permit (principal, action, resource == Tol::"x");`:                                                         `entity type "Tol" is never produced`,
		`permit (principal in Group::"eng", action, resource);`:                                                     `entity type "Group"`,
		`permit (principal, action, resource is Tools);`:                                                            `entity type "Tools"`,
		`permit (principal, action, resource) when { resource in Folder::"x" };`:                                    `entity type "Folder"`,
		"permit (principal, action, resource);\n@id(\"p\")\npermit (principal, action == Action::\"x\", resource);": `policy "p" (line 2, column 1): Action::"x"`,
	}
	for policy, want := range bad {
		_, err := New(Config{Policies: policy, Entities: entities})
		assert.ErrorContains(t, err, want, policy)
		a := newTestAuthorizer(t, nil)
		assert.ErrorContains(t, a.Reload(policy), want, "Reload: %s", policy)
	}
	good := []string{
		`permit (principal, action in Action::"reads", resource in ToolGroup::"safe");`,
		`permit (principal is Client in THVGroup::"eng", action in [Action::"list_tools", Action::"get_prompt"], resource is FeatureType);`,
		`permit (principal, action, resource) when { resource is Resource && resource in Tool::"get_issue" };`,
	}
	for _, policy := range good {
		_, err := New(Config{Policies: policy, Entities: entities})
		assert.NoError(t, err, policy)
	}
	_, err := New(Config{Policies: `permit (principal in Team::"x", action, resource);`, GroupEntityType: "Team"})
	assert.NoError(t, err, "the configured group type")
}

// TestEntitiesErrorsInOurTerms (issue 7 item 11): a malformed entities
// document is reported as what is wrong with which entity, not as a Go
// decoding error.
func TestEntitiesErrorsInOurTerms(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		`{}`:            "must be a JSON array of entities",
		`[{"uid":"x"}]`: `entity 0 (line 1, column 2): "uid" must be {"type":"…","id":"…"}`,
		"[\n{\"uid\":{\"type\":\"T\",\"id\":\"a\"}},\n 3]":                "entity 1 (line 3, column 2): must be an object",
		`[{"uid":{"type":"T","id":"a"},"parents":{"type":"G","id":"g"}}]`: `"parents" must be an array`,
		`[{"uid":{"type":"T","id":"a"},"parents":["g"]}]`:                 `parent 0 must be`,
		`[{"uid":{"type":"T","id":"a"},"attrs":[]}]`:                      `"attrs" must be an object`,
		`[{"uid":{"type":"T","id":"a"},"attributes":{}}]`:                 `unknown member "attributes"`,
		`[{"parents":[]}]`: `"uid" is missing`,
		`[{"uid":{"type":"T","id":"a"},"uid":{"type":"T","id":"b"}}]`: "duplicate",
	}
	for doc, want := range cases {
		_, err := New(Config{Policies: `permit (principal, action, resource);`, Entities: []byte(doc)})
		require.Error(t, err, doc)
		assert.Contains(t, err.Error(), want, doc)
		assert.NotContains(t, err.Error(), "types.", doc)
	}
}

func TestReload(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	ctx := authn.NewContext(context.Background(), engineer())
	d, err := a.Authorize(ctx, []byte(call("get_issue", "")))
	require.NoError(t, err)
	require.True(t, d.Allowed)

	require.Error(t, a.Reload("permit(principal, action"), "bad policies are rejected")
	d, _ = a.Authorize(ctx, []byte(call("get_issue", "")))
	assert.True(t, d.Allowed, "old set still in force after a failed reload")

	require.NoError(t, a.Reload(`@id("only-delete") permit(principal, action == Action::"call_tool", resource == Tool::"delete_repo");`))
	d, _ = a.Authorize(ctx, []byte(call("get_issue", "")))
	assert.False(t, d.Allowed)
	d, _ = a.Authorize(ctx, []byte(call("delete_repo", "")))
	assert.True(t, d.Allowed)
	assert.Equal(t, "only-delete", string(d.Policies[0]))

	// Concurrent reloads and requests: every decision comes from one whole set.
	var wg sync.WaitGroup
	sets := []string{
		`permit(principal, action == Action::"call_tool", resource == Tool::"a"); permit(principal, action == Action::"call_tool", resource == Tool::"b");`,
		`forbid(principal, action == Action::"call_tool", resource == Tool::"a"); forbid(principal, action == Action::"call_tool", resource == Tool::"b");`,
	}
	require.NoError(t, a.Reload(sets[0]))
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				if i == 0 {
					_ = a.Reload(sets[j%2])
					continue
				}
				for _, tool := range []string{"a", "b"} {
					d, err := a.Authorize(ctx, []byte(call(tool, "")))
					assert.NoError(t, err)
					// Every decision comes from one whole set: exactly one
					// policy (a permit or a forbid) decided it.
					assert.Len(t, d.Policies, 1)
				}
			}
		})
	}
	wg.Wait()
}

func TestAuditLog(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := newTestAuthorizer(t, func(c *Config) { c.Logger = logger })
	const canary = "eyJcanary-token-must-never-appear"
	info := engineer().WithToken(canary)
	srv := httptest.NewServer(withIdentity(info, a.Middleware((&recorder{}).handler(nil))))
	defer srv.Close()
	post(t, srv, call("get_issue", ""), nil)
	post(t, srv, call("get_secret", `{"level":9}`), nil)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	assert.NotContains(t, out, canary)
	assert.Contains(t, out, `"decision":"allow"`)
	assert.Contains(t, out, `"policies":["read-only-tools"]`)
	assert.Contains(t, out, `"decision":"deny"`)
	assert.Contains(t, out, `"policies":["erroring-forbid"]`)
	assert.Contains(t, out, `"principal":"alice"`)
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestStaticEntities(t *testing.T) {
	t.Parallel()
	a, err := New(Config{
		Policies: `
@id("safe") permit (principal in THVGroup::"staff", action in Action::"reads", resource in ToolGroup::"safe");
@id("owner") permit (principal, action == Action::"call_tool", resource) when { resource has owner && resource.owner == principal.claim_sub };`,
		Entities: []byte(`[
 {"uid":{"type":"THVGroup","id":"engineering"},"parents":[{"type":"THVGroup","id":"staff"}],"attrs":{}},
 {"uid":{"type":"Action","id":"call_tool"},"parents":[{"type":"Action","id":"reads"}],"attrs":{}},
 {"uid":{"type":"Tool","id":"get_issue"},"parents":[{"type":"ToolGroup","id":"safe"}],"attrs":{}},
 {"uid":{"type":"Tool","id":"mine"},"parents":[],"attrs":{"owner":"alice","name":"static wins"}}
]`),
	})
	require.NoError(t, err)
	ctx := authn.NewContext(context.Background(), engineer())
	cases := map[string]bool{
		call("get_issue", ""):           true,  // group hierarchy, action group, resource parent
		call("get_other", ""):           false, // not in ToolGroup::"safe"
		call("mine", `{"owner":"bob"}`): true,  // static attribute; the argument is arg_owner
	}
	for body, want := range cases {
		d, err := a.Authorize(ctx, []byte(body))
		require.NoError(t, err)
		assert.Equal(t, want, d.Allowed, body)
	}
}

func TestNonPOSTNeedsIdentity(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	for _, tc := range []struct {
		info   *authn.TokenInfo
		status int
	}{{engineer(), 200}, {nil, 403}} {
		rec := &recorder{}
		srv := httptest.NewServer(withIdentity(tc.info, a.Middleware(rec.handler(nil))))
		resp, err := srv.Client().Get(srv.URL)
		require.NoError(t, err)
		_ = resp.Body.Close()
		srv.Close()
		assert.Equal(t, tc.status, resp.StatusCode)
	}
}

// TestNonPOSTWithBody: a handler that decodes the body whatever the HTTP
// method must not receive an unauthorized JSON-RPC message through PUT, PATCH
// or a GET with a body.
func TestNonPOSTWithBody(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	for _, method := range []string{http.MethodPut, http.MethodPatch, http.MethodGet, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			srv := httptest.NewServer(withIdentity(engineer(), a.Middleware(rec.handler(nil))))
			defer srv.Close()
			for _, chunked := range []bool{false, true} {
				var body io.Reader = strings.NewReader(call("delete_repo", ""))
				if chunked {
					body = io.MultiReader(body) // no length known: sent chunked
				}
				req, err := http.NewRequest(method, srv.URL, body)
				require.NoError(t, err)
				resp, err := srv.Client().Do(req)
				require.NoError(t, err)
				_ = resp.Body.Close()
				assert.Equal(t, http.StatusForbidden, resp.StatusCode, "chunked %v", chunked)
			}
			assert.Empty(t, rec.bodies, "handler must not run")
		})
	}

	// An empty body of unknown length still passes.
	rec := &recorder{}
	h := withIdentity(engineer(), a.Middleware(rec.handler(nil)))
	req := httptest.NewRequest(http.MethodGet, "/", strings.NewReader(""))
	req.ContentLength = -1
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Len(t, rec.bodies, 1)
}

// TestSubscriptionsListen: subscriptions/listen replaces resources/subscribe
// in 2026-07-28 and is authorized the same way, per URI.
func TestSubscriptionsListen(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	listen := func(notifications string) string {
		return `{"jsonrpc":"2.0","id":8,"method":"subscriptions/listen","params":{"notifications":` + notifications + `}}`
	}
	cases := []struct {
		name, body string
		status     int
	}{
		{"list changes only", listen(`{"toolsListChanged":true}`), 200},
		{"readable resource", listen(`{"resourceSubscriptions":["file:///home/a"]}`), 200},
		{"forbidden resource", listen(`{"resourceSubscriptions":["file:///home/a","file:///etc/passwd"]}`), 403},
		{"no permit", listen(`{"resourceSubscriptions":["https://x.example/y"]}`), 403},
		{"legacy subscribe forbidden too", `{"jsonrpc":"2.0","id":8,"method":"resources/subscribe","params":{"uri":"file:///etc/passwd"}}`, 403},
		{"case-variant list", listen(`{"ResourceSubscriptions":["file:///etc/passwd"]}`), 400},
		{"case-variant notifications", `{"jsonrpc":"2.0","id":8,"method":"subscriptions/listen","params":{"Notifications":{"resourceSubscriptions":["file:///etc/passwd"]}}}`, 400},
		{"not a string", listen(`{"resourceSubscriptions":[1]}`), 400},
		{"no params", `{"jsonrpc":"2.0","id":8,"method":"subscriptions/listen"}`, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			srv := httptest.NewServer(withIdentity(engineer(), a.Middleware(rec.handler(nil))))
			defer srv.Close()
			resp, body := post(t, srv, tc.body, nil)
			require.Equal(t, tc.status, resp.StatusCode, "body: %s", body)
			assert.Equal(t, tc.status == 200, len(rec.bodies) == 1)
		})
	}
}

// A forbid on an integer argument cannot be evaded by spelling the number
// differently: 1, 1.0, 1e0 and 10e-1 are the same value to the handler.
func TestIntegerSpellingsMatchLongPolicies(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, func(c *Config) {
		c.Policies = `permit(principal, action == Action::"call_tool", resource == Tool::"transfer");
forbid(principal, action == Action::"call_tool", resource == Tool::"transfer") when { context has arg_account && context.arg_account == 1 };`
	})
	rec := &recorder{}
	srv := httptest.NewServer(withIdentity(engineer(), a.Middleware(rec.handler(nil))))
	defer srv.Close()
	for _, n := range []string{"1", "1.0", "1e0", "10e-1", "0.1e1", "1.0000"} {
		resp, _ := post(t, srv, call("transfer", `{"account":`+n+`}`), nil)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("account %s: status %d, want 403", n, resp.StatusCode)
		}
	}
	resp, _ := post(t, srv, call("transfer", `{"account":2.0}`), nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("account 2.0: status %d, want 200", resp.StatusCode)
	}
}

// Issue 7 item 5: 9007199254740993 is an exact Long, but a handler reading
// it as a float64 (Go's any, every JS SDK) sees 9007199254740992, the
// forbidden value: such a number has no faithful Cedar value and is denied.
func TestIntegerBeyondFloat64Denied(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, func(c *Config) {
		c.Policies = `permit(principal, action == Action::"call_tool", resource == Tool::"transfer");
forbid(principal, action == Action::"call_tool", resource == Tool::"transfer") when { context has arg_account && context.arg_account == 9007199254740992 };`
	})
	ctx := authn.NewContext(context.Background(), engineer())
	for n, want := range map[string]bool{
		"9007199254740991": true, "9007199254740992": false, "9007199254740993": false,
		"-9007199254740993": false, "9007199254740993.0": false, "1000000000000000000": true,
	} {
		d, err := a.Authorize(ctx, []byte(call("transfer", `{"account":`+n+`}`)))
		require.NoError(t, err)
		assert.Equal(t, want, d.Allowed, n)
	}
}
