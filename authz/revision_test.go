package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/observe"
)

// TestUnknownMethods: a method authz does not know never reaches the
// handler and is answered by the revision the request names: 404 with
// JSON-RPC -32601 and the request's id from 2026-07-28 (its Streamable
// HTTP transport), 403 with -32601 before (where 404 tells a client holding
// a session to start a new one). From 2026-07-28 the methods that revision
// removed are unknown too, whatever the policies say; before, they are
// authorized as they were. Each refusal is audited and observed as a denial
// for "unknown method".
func TestUnknownMethods(t *testing.T) {
	t.Parallel()
	const unknown = `{"jsonrpc":"2.0","id":"u-1","method":"secrets/steal","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
	const notification = `{"jsonrpc":"2.0","method":"notifications/evil"}`
	subscribe := func(uri string) string {
		return `{"jsonrpc":"2.0","id":12,"method":"resources/subscribe","params":{"uri":"` + uri + `"}}`
	}
	const initialize = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`
	const ping = `{"jsonrpc":"2.0","id":5,"method":"ping"}`
	const none = "" // no MCP-Protocol-Version header

	cases := []struct {
		name, version, body string
		status, code        int // code 0: the handler answers
		id                  string
	}{
		// Unknown to every revision.
		{"unknown, 2026-07-28", "2026-07-28", unknown, 404, CodeMethodNotFound, `"u-1"`},
		{"unknown, later revision", "2027-03-01", unknown, 404, CodeMethodNotFound, `"u-1"`},
		{"unknown, not a revision date", "v999.0.0", unknown, 404, CodeMethodNotFound, `"u-1"`},
		{"unknown, 2025-11-25", "2025-11-25", unknown, 403, CodeMethodNotFound, `"u-1"`},
		{"unknown, 2025-06-18", "2025-06-18", unknown, 403, CodeMethodNotFound, `"u-1"`},
		{"unknown, 2025-03-26", "2025-03-26", unknown, 403, CodeMethodNotFound, `"u-1"`},
		{"unknown, no header", none, unknown, 403, CodeMethodNotFound, `"u-1"`},
		{"unknown notification, 2026-07-28", "2026-07-28", notification, 404, CodeMethodNotFound, "null"},
		{"unknown notification, 2025-11-25", "2025-11-25", notification, 403, CodeMethodNotFound, "null"},
		// Removed by 2026-07-28: unknown to it, even where a policy would allow.
		{"subscribe allowed, 2025-11-25", "2025-11-25", subscribe("file:///home/a"), 200, 0, ""},
		{"subscribe forbidden, 2025-11-25", "2025-11-25", subscribe("file:///etc/passwd"), 403, CodeForbidden, "12"},
		{"subscribe without uri, 2025-11-25", "2025-11-25", `{"jsonrpc":"2.0","id":12,"method":"resources/subscribe","params":{}}`, 400, CodeInvalidParams, "12"},
		{"subscribe allowed, 2026-07-28", "2026-07-28", subscribe("file:///home/a"), 404, CodeMethodNotFound, "12"},
		{"subscribe without uri, 2026-07-28", "2026-07-28", `{"jsonrpc":"2.0","id":12,"method":"resources/subscribe","params":{}}`, 404, CodeMethodNotFound, "12"},
		{"unsubscribe, 2026-07-28", "2026-07-28", strings.Replace(subscribe("file:///home/a"), "subscribe", "unsubscribe", 1), 404, CodeMethodNotFound, "12"},
		{"initialize, no header", none, initialize, 200, 0, ""},
		{"initialize, 2026-07-28", "2026-07-28", initialize, 404, CodeMethodNotFound, "0"},
		{"ping, 2025-11-25", "2025-11-25", ping, 200, 0, ""},
		{"ping, 2026-07-28", "2026-07-28", ping, 404, CodeMethodNotFound, "5"},
		{"server/discover, 2026-07-28", "2026-07-28", `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}`, 200, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			var mu sync.Mutex // the handler's goroutine reports, the test reads
			var events []observe.Decision
			a := newTestAuthorizer(t, func(c *Config) {
				c.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
				c.Observer = &observe.Observer{Decision: func(_ context.Context, e observe.Decision) {
					mu.Lock()
					defer mu.Unlock()
					events = append(events, e)
				}}
			})
			rec := &recorder{}
			srv := httptest.NewServer(withIdentity(stranger(), a.Middleware(rec.handler(nil))))
			defer srv.Close()
			hdr := map[string]string{}
			if tc.version != none {
				hdr["MCP-Protocol-Version"] = tc.version
			}
			resp, body := post(t, srv, tc.body, hdr)
			srv.Close() // the handler has returned
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, tc.status, resp.StatusCode, "body: %s", body)
			require.Len(t, events, 1)
			if tc.code == 0 {
				require.Len(t, rec.bodies, 1, "the handler answers")
				assert.Equal(t, observe.Allowed, events[0].Outcome)
				return
			}
			assert.Empty(t, rec.bodies, "the handler must never be reached")
			var e rpcErr
			require.NoError(t, json.Unmarshal(body, &e), "body: %s", body)
			assert.Equal(t, "2.0", e.JSONRPC)
			assert.Equal(t, tc.code, e.Error.Code)
			assert.Equal(t, tc.id, string(e.ID))
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.Empty(t, resp.Header.Get("WWW-Authenticate"))
			assert.Equal(t, observe.Denied, events[0].Outcome)
			if tc.code == CodeMethodNotFound {
				assert.Equal(t, "Method not found", e.Error.Message)
				assert.Contains(t, logs.String(), `"decision":"deny","reason":"unknown method"`)
				assert.Empty(t, events[0].Action, "no policy was evaluated")
				assert.NotContains(t, body, "steal", "nothing of the client's method is echoed")
			}
		})
	}
}

// stranger has no group: only policies for every principal apply.
func stranger() *authn.TokenInfo {
	return &authn.TokenInfo{Issuer: "https://idp.example", Subject: "mallory", Claims: map[string]any{"groups": []any{"sales"}}}
}

// Authorize has no HTTP request, hence no protocol version: it decides
// removed methods as an earlier revision does, and unknown ones as unknown.
func TestAuthorizeUnknownMethods(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	ctx := authn.NewContext(context.Background(), stranger())
	d, err := a.Authorize(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"secrets/steal"}`))
	require.NoError(t, err)
	assert.False(t, d.Allowed)
	assert.Equal(t, reasonUnknownMethod, d.Reason)
	d, err = a.Authorize(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"file:///home/a"}}`))
	require.NoError(t, err)
	assert.True(t, d.Allowed, "%+v", d)
}

func TestCurrentRevision(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{
		"": false, "2024-11-05": false, "2025-03-26": false, "2025-06-18": false, "2025-11-25": false,
		"2026-07-27": false, "2026-07-28": true, "2026-12-01": true, "2030-01-01": true,
		"DRAFT-2026-v1": true, "v999.0.0": true, "2026-7-28": true, "2026_07_28": true,
	} {
		h := http.Header{}
		if v != "" {
			h.Set("MCP-Protocol-Version", v)
		}
		if got := currentRevision(h); got != want {
			t.Errorf("currentRevision(%q) = %v, want %v", v, got, want)
		}
	}
	if currentRevision(nil) {
		t.Error("no header is the current revision")
	}
}

// TestRevisionHeaderTricks: no spelling of MCP-Protocol-Version (several
// values in either order, blanks, a lower-case name, an impossible date,
// a header that disagrees with the body's _meta) lets a request the
// policies deny, or a method authz does not know, reach the handler.
func TestRevisionHeaderTricks(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	rec := &recorder{}
	srv := httptest.NewServer(withIdentity(stranger(), a.Middleware(rec.handler(nil))))
	defer srv.Close()
	meta := func(v string) string { return `"_meta":{"io.modelcontextprotocol/protocolVersion":"` + v + `"}` }
	bodies := []string{
		`{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"file:///etc/passwd",` + meta("2025-11-25") + `}}`,
		`{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"file:///etc/passwd",` + meta("2026-07-28") + `}}`,
		`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///etc/passwd",` + meta("2025-11-25") + `}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo","arguments":{},` + meta("2026-07-28") + `}}`,
		`{"jsonrpc":"2.0","id":1,"method":"secrets/steal","params":{` + meta("2025-11-25") + `}}`,
		`{"jsonrpc":"2.0","method":"notifications/evil"}`,
	}
	headers := [][][2]string{
		nil,
		{{"MCP-Protocol-Version", "2025-11-25"}, {"MCP-Protocol-Version", "2026-07-28"}},
		{{"MCP-Protocol-Version", "2026-07-28"}, {"MCP-Protocol-Version", "2025-11-25"}},
		{{"mcp-protocol-version", "2025-11-25"}},
		{{"MCP-Protocol-Version", " 2026-07-28 "}},
		{{"MCP-Protocol-Version", "2025-11-25, 2026-07-28"}},
		{{"MCP-Protocol-Version", "9999-99-99"}},
		{{"MCP-Protocol-Version", "0000-00-00"}},
		{{"MCP-Protocol-Version", ""}},
	}
	for _, body := range bodies {
		for _, hs := range headers {
			req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			for _, h := range hs {
				req.Header[h[0]] = append(req.Header[h[0]], h[1])
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Contains(t, []int{http.StatusForbidden, http.StatusNotFound}, resp.StatusCode, "%s with %q", body, hs)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Empty(t, rec.bodies, "the handler must never be reached")
}
