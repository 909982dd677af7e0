package authz

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth-go/mcpauth/authn"
)

const toolsListResult = `{"jsonrpc":"2.0","id":3,"result":{"tools":[` +
	`{"name":"get_issue","description":"read","inputSchema":{"type":"object"}},` +
	`{"name":"delete_repo","description":"dangerous"},` +
	` {"name":"list_repos"} ,` +
	`{"name":"weather"},` +
	`{"description":"no name"}` +
	`],"nextCursor":"abc","ttlMs":1000},"extra":{"keep":[1,2,3]}}`

func listRequest(method string) string {
	return `{"jsonrpc":"2.0","id":3,"method":"` + method + `","params":{}}`
}

func serveList(t *testing.T, a *Authorizer, method, contentType, resp string, status int) (*http.Response, string) {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", fmt.Sprint(len(resp)))
		w.Header().Set("X-Custom", "kept")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, resp)
	})
	srv := httptest.NewServer(withIdentity(engineer(), a.Middleware(h)))
	t.Cleanup(srv.Close)
	r, body := post(t, srv, listRequest(method), nil)
	return r, string(body)
}

func TestFilterJSON(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	resp, body := serveList(t, a, "tools/list", "application/json", toolsListResult, 200)
	require.Equal(t, 200, resp.StatusCode)
	want := `{"jsonrpc":"2.0","id":3,"result":{"cacheScope":"private","tools":[` +
		`{"name":"get_issue","description":"read","inputSchema":{"type":"object"}},` +
		`{"name":"list_repos"}` +
		`],"nextCursor":"abc","ttlMs":1000},"extra":{"keep":[1,2,3]}}`
	assert.Equal(t, want, body, "only the removed items change")
	assert.Equal(t, fmt.Sprint(len(want)), resp.Header.Get("Content-Length"))
	assert.Equal(t, "kept", resp.Header.Get("X-Custom"))
}

func TestFilterOtherLists(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	cases := []struct{ method, resp, want string }{
		{"prompts/list",
			`{"jsonrpc":"2.0","id":3,"result":{"prompts":[{"name":"greeting"},{"name":"secret"}]}}`,
			`{"jsonrpc":"2.0","id":3,"result":{"cacheScope":"private","prompts":[{"name":"greeting"}]}}`},
		{"resources/list",
			`{"jsonrpc":"2.0","id":3,"result":{"resources":[{"uri":"file:///etc/passwd","name":"p"},{"uri":"file:///home/a","name":"a"},{"uri":"https://x","name":"x"}]}}`,
			`{"jsonrpc":"2.0","id":3,"result":{"cacheScope":"private","resources":[{"uri":"file:///home/a","name":"a"}]}}`},
		{"resources/templates/list",
			`{"jsonrpc":"2.0","id":3,"result":{"resourceTemplates":[{"uriTemplate":"file:///etc/{name}"},{"uriTemplate":"file:///home/{name}"}]}}`,
			`{"jsonrpc":"2.0","id":3,"result":{"cacheScope":"private","resourceTemplates":[{"uriTemplate":"file:///home/{name}"}]}}`},
		{"tools/list", // an error response passes untouched
			`{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"x"}}`,
			`{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"x"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			resp, body := serveList(t, a, tc.method, "application/json; charset=utf-8", tc.resp, 200)
			require.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, tc.want, body)
		})
	}
}

func TestFilterSSE(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	progress := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n"
	comment := ": keep-alive\r\n\r\n"
	// The list message split over several data: lines, with CRLF endings.
	list := "event: message\r\nid: 42\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\r\ndata: \"result\":{\"tools\":[{\"name\":\"delete_repo\"},{\"name\":\"get_issue\"}]}}\r\nretry: 10\r\n\r\n"
	stream := progress + comment + list
	resp, body := serveList(t, a, "tools/list", "text/event-stream", stream, 200)
	require.Equal(t, 200, resp.StatusCode)
	require.True(t, strings.HasPrefix(body, progress+comment), "untouched events are copied byte for byte: %q", body)
	rest := strings.TrimPrefix(body, progress+comment)
	assert.Equal(t, "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\ndata: \"result\":{\"cacheScope\":\"private\",\"tools\":[{\"name\":\"get_issue\"}]}}\nretry: 10\r\n\r\n", rest)

	// What a client reassembles is valid JSON with only the allowed tool.
	var data []string
	for _, line := range strings.Split(strings.ReplaceAll(rest, "\r\n", "\n"), "\n") {
		if v, ok := strings.CutPrefix(line, "data: "); ok {
			data = append(data, v)
		}
	}
	var msg struct {
		Result struct{ Tools []struct{ Name string } }
	}
	require.NoError(t, json.Unmarshal([]byte(strings.Join(data, "\n")), &msg))
	require.Len(t, msg.Result.Tools, 1)
	assert.Equal(t, "get_issue", msg.Result.Tools[0].Name)
}

func TestFilterFailsClosed(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, func(c *Config) { c.MaxResponseBytes = 4096 })
	cases := []struct{ name, ct, resp string }{
		{"duplicate tools key", "application/json", `{"jsonrpc":"2.0","id":3,"result":{"tools":[],"tools":[{"name":"delete_repo"}]}}`},
		{"case-variant key", "application/json", `{"jsonrpc":"2.0","id":3,"result":{"tools":[],"Tools":[{"name":"delete_repo"}]}}`},
		{"case-variant list key alone", "application/json", `{"jsonrpc":"2.0","id":3,"result":{"Tools":[{"name":"delete_repo"}]}}`},
		{"case-variant result alone", "application/json", `{"jsonrpc":"2.0","id":3,"Result":{"tools":[{"name":"delete_repo"}]}}`},
		{"malformed", "application/json", `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"delete_repo"}]`},
		{"tools not an array", "application/json", `{"jsonrpc":"2.0","id":3,"result":{"tools":{"name":"delete_repo"}}}`},
		{"unknown content type", "text/plain", `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"delete_repo"}]}}`},
		{"sse malformed data", "text/event-stream", "data: {\"result\":{\"tools\":[{\"name\":\"delete_repo\"}]\n\n"},
		{"too large", "application/json", `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"delete_repo","d":"` + strings.Repeat("x", 5000) + `"}]}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := serveList(t, a, "tools/list", tc.ct, tc.resp, 200)
			assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
			assert.NotContains(t, body, "delete_repo")
			var e rpcErr
			require.NoError(t, json.Unmarshal([]byte(body), &e))
			assert.Equal(t, CodeInternalError, e.Error.Code)
		})
	}
	// A non-2xx response is filtered too (issue 7 item 3): one that cannot
	// be keeps its status and gets the JSON-RPC internal error.
	resp, body := serveList(t, a, "tools/list", "text/plain", "upstream down", 503)
	assert.Equal(t, 503, resp.StatusCode)
	assert.NotContains(t, body, "upstream down")
}

func TestNonListResponsesStream(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	flushed := make(chan bool, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"tools\":[{\"name\":\"delete_repo\"}]}\n\n")
		f, ok := w.(http.Flusher)
		flushed <- ok
		if ok {
			f.Flush()
		}
	})
	srv := httptest.NewServer(withIdentity(engineer(), a.Middleware(h)))
	defer srv.Close()
	resp, body := post(t, srv, call("get_issue", ""), nil)
	assert.Equal(t, 200, resp.StatusCode)
	assert.True(t, <-flushed, "the handler gets the original, flushable writer")
	assert.Contains(t, string(body), "delete_repo", "non-list responses are not rewritten")
}

func TestAuthorizeLists(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, func(c *Config) {
		c.AuthorizeLists = true
		c.Policies += `
@id("list-tools") permit (principal in THVGroup::"engineering", action == Action::"list_tools", resource == FeatureType::"tool");`
	})
	resp, _ := serveList(t, a, "tools/list", "application/json", toolsListResult, 200)
	assert.Equal(t, 200, resp.StatusCode)
	resp, _ = serveList(t, a, "prompts/list", "application/json", `{"jsonrpc":"2.0","id":3,"result":{"prompts":[]}}`, 200)
	assert.Equal(t, 403, resp.StatusCode)
}

func TestToolAnnotations(t *testing.T) {
	t.Parallel()
	a, err := New(Config{Policies: `
@id("read-only") permit (principal in THVGroup::"engineering", action == Action::"call_tool", resource)
when { resource has readOnlyHint && resource.readOnlyHint };`})
	require.NoError(t, err)
	ctx := authn.NewContext(context.Background(), engineer())
	allowed := func(tool string) bool {
		t.Helper()
		d, err := a.Authorize(ctx, []byte(call(tool, "")))
		require.NoError(t, err)
		return d.Allowed
	}
	assert.False(t, allowed("search"), "no hints before the first tools/list")

	_, body := serveList(t, a, "tools/list", "application/json", `{"jsonrpc":"2.0","id":3,"result":{"tools":[`+
		`{"name":"search","annotations":{"readOnlyHint":true,"title":"x"},"inputSchema":{"type":"object","properties":{"q":{"type":"string"}}}},`+
		`{"name":"write_file","annotations":{"readOnlyHint":false,"destructiveHint":true}},`+
		`{"name":"unannotated"}]}}`, 200)
	assert.Equal(t, `{"jsonrpc":"2.0","id":3,"result":{"cacheScope":"private","tools":[`+
		`{"name":"search","annotations":{"readOnlyHint":true,"title":"x"},"inputSchema":{"type":"object","properties":{"q":{"type":"string"}}}}]}}`, body)
	assert.True(t, allowed("search"))
	assert.False(t, allowed("write_file"))
	assert.False(t, allowed("unannotated"))

	// A later list without the hint withdraws it.
	serveList(t, a, "tools/list", "application/json", `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"search"}]}}`, 200)
	assert.False(t, allowed("search"))
}

// serveListWith runs the list request against h behind the middleware.
func serveListWith(t *testing.T, a *Authorizer, h http.HandlerFunc) (*http.Response, string) {
	t.Helper()
	srv := httptest.NewServer(withIdentity(engineer(), a.Middleware(h)))
	t.Cleanup(srv.Close)
	r, body := post(t, srv, listRequest("tools/list"), nil)
	return r, string(body)
}

func TestFilterEncodedResponseFailsClosed(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	for _, ct := range []string{"text/event-stream", "application/json"} {
		t.Run(ct, func(t *testing.T) {
			t.Parallel()
			msg := `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"delete_repo"},{"name":"get_issue"}]}}`
			if ct == "text/event-stream" {
				msg = "event: message\ndata: " + msg + "\n\n"
			}
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			_, _ = io.WriteString(zw, msg)
			require.NoError(t, zw.Close())
			resp, body := serveListWith(t, a, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ct)
				w.Header().Set("Content-Encoding", "gzip")
				_, _ = w.Write(gz.Bytes())
			})
			// The client transport decompresses what it is sent.
			assert.NotContains(t, body, "delete_repo")
			assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
		})
	}
}

func TestFilterInformationalStatus(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	resp, body := serveListWith(t, a, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"delete_repo"},{"name":"get_issue"}]}}`)
	})
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, `{"jsonrpc":"2.0","id":3,"result":{"cacheScope":"private","tools":[{"name":"get_issue"}]}}`, body)
}

// TestFilterSSEResumable covers a 2025-11-25 server with stream resumption
// (the MCP Go SDK with an EventStore): a priming event with an id and empty
// data, then the list with an id. The priming event must not fail the
// response, and no event id may reach the client: a GET with Last-Event-ID
// would have the server replay the stored, unfiltered list.
func TestFilterSSEResumable(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	stream := "event: prime\nid: AbC_0\ndata: \n\n" +
		"event: message\nid: AbC_1\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[{\"name\":\"delete_repo\"},{\"name\":\"get_issue\"}]}}\n\n"
	resp, body := serveListWith(t, a, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, stream)
	})
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "event: prime\ndata: \n\n"+
		"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"cacheScope\":\"private\",\"tools\":[{\"name\":\"get_issue\"}]}}\n\n", body)
}

// TestFilterSSEByteOrderMark: an event stream may start with a BOM, which
// SSE parsers strip (WHATWG HTML §9.2.5); the first event is still a list.
func TestFilterSSEByteOrderMark(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	resp, body := serveListWith(t, a, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "\ufeffdata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[{\"name\":\"delete_repo\"},{\"name\":\"get_issue\"}]}}\n\n")
	})
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.NotContains(t, body, "delete_repo")
	assert.Contains(t, body, "get_issue")
}

// Issue 7 item 2: a list filtered for one caller is that caller's: its
// result says cacheScope "private" (MCP 2026-07-28 CacheableResult) and the
// HTTP response is not shared-cacheable, even when nothing was removed.
func TestFilteredListIsPrivate(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	cases := map[string]string{
		"some removed": `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"get_issue"},{"name":"delete_repo"}],"ttlMs":1000,"cacheScope":"public"}}`,
		"none removed": `{"jsonrpc":"2.0","id":3,"result":{"cacheScope":"public","tools":[{"name":"get_issue"}],"ttlMs":1000}}`,
		"spaced":       `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"get_issue"}],"cacheScope" : "public" }}`,
	}
	for name, list := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Cache-Control", "public, max-age=60")
				_, _ = io.WriteString(w, list)
			})
			resp, body := serveListWith(t, a, h)
			require.Equal(t, 200, resp.StatusCode)
			var msg struct {
				Result struct {
					Tools      []struct{ Name string } `json:"tools"`
					CacheScope string                  `json:"cacheScope"`
				} `json:"result"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &msg), body)
			assert.Equal(t, "private", msg.Result.CacheScope, body)
			assert.NotContains(t, body, "public")
			cc := resp.Header.Get("Cache-Control")
			assert.NotContains(t, cc, "public")
			assert.Contains(t, cc, "private")
		})
	}
	// In an event stream too.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: "+cases["none removed"]+"\n\n")
	})
	resp, body := serveListWith(t, a, h)
	assert.Contains(t, body, `"cacheScope":"private"`)
	assert.NotContains(t, body, "public")
	assert.Contains(t, resp.Header.Get("Cache-Control"), "private")
}

// Issue 7 item 3: a list result is filtered whatever the HTTP status it is
// sent with, and one that cannot be filtered is refused.
func TestListFilteredWhateverStatus(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	for _, status := range []int{500, 400, 404, 302, 203} {
		resp, body := serveList(t, a, "tools/list", "application/json", toolsListResult, status)
		assert.Equal(t, status, resp.StatusCode)
		assert.NotContains(t, body, "delete_repo", status)
		assert.Contains(t, body, "get_issue", status)
	}
	// Unfilterable with an error status: refused, the status kept.
	resp, body := serveList(t, a, "tools/list", "application/json", `{"jsonrpc":"2.0","id":3,"result":{"tools":[],"Tools":[{"name":"delete_repo"}]}}`, 500)
	assert.Equal(t, 500, resp.StatusCode)
	assert.NotContains(t, body, "delete_repo")
	resp, body = serveList(t, a, "tools/list", "text/plain", `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"delete_repo"}]}}`, 502)
	assert.Equal(t, 502, resp.StatusCode)
	assert.NotContains(t, body, "delete_repo")
	var e rpcErr
	require.NoError(t, json.Unmarshal([]byte(body), &e))
	assert.Equal(t, CodeInternalError, e.Error.Code)
}

// TestListDecisionCache (issue 13): list items are decided once per
// (subject, item, policy set, annotations), and a cached decision is never
// served after Reload, to another subject, or after the tool's hints
// changed.
func TestListDecisionCache(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, func(c *Config) {
		c.Policies = `@id("eng") permit (principal in THVGroup::"engineering", action == Action::"call_tool", resource == Tool::"get_issue");
@id("ro") permit (principal, action == Action::"call_tool", resource == Tool::"search") when { resource has readOnlyHint && resource.readOnlyHint };`
	})
	list := func(info *authn.TokenInfo, resp string) string {
		t.Helper()
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, resp)
		})
		srv := httptest.NewServer(withIdentity(info, a.Middleware(h)))
		defer srv.Close()
		_, body := post(t, srv, listRequest("tools/list"), nil)
		return string(body)
	}
	tools := `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"get_issue"},{"name":"delete_repo"}]}}`
	alice := engineer().WithToken("alice-token")
	assert.Contains(t, list(alice, tools), "get_issue")
	assert.Equal(t, 2, a.policies.Load().decisions.len(), "one decision per item is cached")
	assert.Contains(t, list(alice, tools), "get_issue")

	// Another subject: alice's cached permit is not theirs.
	bob := &authn.TokenInfo{Issuer: alice.Issuer, Subject: "bob", Claims: map[string]any{"groups": []any{"sales"}}}
	assert.NotContains(t, list(bob.WithToken("bob-token"), tools), "get_issue")
	// Not even with alice's subject id under another token.
	mallory := *engineer()
	mallory.Claims = map[string]any{"groups": []any{"sales"}}
	assert.NotContains(t, list(mallory.WithToken("other-token"), tools), "get_issue")

	// After Reload, alice's decisions are made again.
	require.NoError(t, a.Reload(`@id("none") forbid (principal, action, resource == Tool::"get_issue");
@id("rest") permit (principal, action, resource);`))
	assert.NotContains(t, list(alice, tools), "get_issue")
	assert.Contains(t, list(alice, tools), "delete_repo")

	// A tool's hints changing invalidates decisions that may read them.
	require.NoError(t, a.Reload(`@id("ro") permit (principal, action == Action::"call_tool", resource == Tool::"search") when { resource has readOnlyHint && resource.readOnlyHint };`))
	ro := `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"search","annotations":{"readOnlyHint":true}}]}}`
	rw := `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"search","annotations":{"readOnlyHint":false}}]}}`
	assert.Contains(t, list(alice, ro), "search")
	assert.NotContains(t, list(alice, rw), "search")
	assert.Contains(t, list(alice, ro), "search")

	// The cache is bounded.
	ps := a.policies.Load()
	for i := range maxCachedDecisions + 5 {
		ps.decisions.put(decisionKey{name: fmt.Sprint(i)}, Decision{Allowed: true})
	}
	assert.LessOrEqual(t, ps.decisions.len(), maxCachedDecisions)
}

// TestCallDecisionCache (issue 13): a tools/call whose policies cannot read
// its arguments is decided once per caller and tool; one whose policies
// can (through the context or the resource) is always evaluated.
func TestCallDecisionCache(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, func(c *Config) {
		c.Policies = `@id("eng") permit (principal in THVGroup::"engineering", action == Action::"call_tool", resource == Tool::"get_issue");
@id("res-arg") permit (principal, action == Action::"call_tool", resource == Tool::"t") when { resource has arg_x && resource.arg_x == 1 };
@id("ctx-arg") permit (principal, action == Action::"call_tool", resource == Tool::"u") when { context has arg_x && context.arg_x == 1 };`
	})
	ctx := authn.NewContext(context.Background(), engineer().WithToken("alice-token"))
	decide := func(body string) Decision {
		t.Helper()
		d, err := a.Authorize(ctx, []byte(body))
		require.NoError(t, err)
		return d
	}
	d := decide(call("get_issue", `{"x":1}`))
	require.True(t, d.Allowed)
	d.Policies[0] = "tampered" // the caller's copy
	d = decide(call("get_issue", `{"x":2}`))
	assert.True(t, d.Allowed)
	assert.Equal(t, []cedar.PolicyID{"eng"}, d.Policies, "a cached decision names its policies")
	assert.Equal(t, 1, a.policies.Load().decisions.len(), "arguments no policy reads do not split the cache")

	for _, tool := range []string{"t", "u"} {
		assert.False(t, decide(call(tool, "")).Allowed, tool)             // cached: no arguments
		assert.True(t, decide(call(tool, `{"x":1}`)).Allowed, tool)       // evaluated
		assert.False(t, decide(call(tool, `{"x":2}`)).Allowed, tool)      // evaluated
		assert.True(t, decide(call(tool, `{"x":1,"y":0}`)).Allowed, tool) // evaluated
	}

	require.NoError(t, a.Reload(`@id("none") forbid (principal, action, resource == Tool::"get_issue");
@id("rest") permit (principal, action, resource);`))
	assert.False(t, decide(call("get_issue", `{"x":1}`)).Allowed, "no decision survives Reload")
	// An identity without a token has a subject of its own per request:
	// nothing is cached for it.
	before := a.policies.Load().decisions.len()
	noToken := authn.NewContext(context.Background(), engineer())
	for range 3 {
		_, err := a.Authorize(noToken, []byte(call("get_issue", "")))
		require.NoError(t, err)
	}
	assert.Equal(t, before, a.policies.Load().decisions.len())
	other := authn.NewContext(context.Background(), (&authn.TokenInfo{Issuer: "https://idp.example", Subject: "bob"}).WithToken("bob-token"))
	d, err := a.Authorize(other, []byte(call("delete_repo", "")))
	require.NoError(t, err)
	assert.True(t, d.Allowed)
}
