package authz

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/internal/jsonread"
	"github.com/mcpauth-go/mcpauth/observe"
)

// FuzzListMemo holds the list memo to the full parse: a list message is
// filtered twice (so that it is remembered), then again with its id
// replaced by any bytes, as JSON and in an event stream of three events;
// an Authorizer whose memo is emptied before every message, fed the same
// messages (so that its tool annotations are the same), is the oracle. Output, error
// and the kept and removed counts must agree.
func FuzzListMemo(f *testing.F) {
	for _, s := range [][2]string{
		{`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"get_issue"},{"name":"delete_repo"},{"name":"search","annotations":{"readOnlyHint":true}},{}]}}`, `2`},
		{`{"jsonrpc":"2.0","id":"a","result":{"cacheScope":"public","tools":[{"name":"delete_repo"}]}}`, `"b\"c"`},
		{`{"result":{"tools":[{"name":"get_issue"}],"cacheScope":"shared"},"id":null}`, `1,"result":{"tools":[]}`},
		{`{"id":1,"result":{"prompts":[{"name":"get_issue"}]}}`, ` 1 `},
		{`{"id":1 ,"result":{"tools":[{"name":"deploy"},{"name":"get_issue"}]}}`, `1e999`},
		{`{"id":1,"result":{"tools":[{"name":"get_issue"}]}}`, "\ufeff1"},
		{`{"id":1,"result":{"tools":[{"name":"get_issue"}]}}`, "\"\xff\""},
		{`{"id":1,"result":{"tools":[{"name":"get_issue"}]}}`, `"\ud800"`},
	} {
		f.Add(s[0], s[1], false)
		f.Add(s[0], s[1], true)
	}
	newAuthorizer := func() *Authorizer {
		a, err := New(Config{Policies: testPolicies + `
@id("ro") permit (principal, action == Action::"call_tool", resource) when { resource has readOnlyHint && resource.readOnlyHint };`,
			ResourceMetadataURL: "https://mcp.example/.well-known/oauth-protected-resource/mcp"})
		if err != nil {
			f.Fatal(err)
		}
		return a
	}
	memo, oracle := newAuthorizer(), newAuthorizer()
	alice := engineer().WithToken("alice-token")
	bob := (&authn.TokenInfo{Issuer: alice.Issuer, Subject: "bob", Claims: map[string]any{"groups": []any{"sales"}}}).WithToken("bob-token")
	f.Fuzz(func(t *testing.T, msg, id string, sse bool) {
		var p jsonread.Parser
		root, err := p.Parse([]byte(msg), jsonread.Options{KeepDepth: 1})
		if err != nil || root.Kind != jsonread.Object {
			return
		}
		v, ok := root.Get("id")
		if !ok {
			return
		}
		msg2 := msg[:v.Start] + id + msg[v.End:]
		for _, m := range []string{"tools/list", "prompts/list"} {
			for _, info := range []*authn.TokenInfo{alice, bob} {
				for _, body := range []string{msg, msg, msg2} {
					filter := func(a *Authorizer, reset bool) (string, error, int, int) {
						ps := a.policies.Load()
						if reset {
							ps.lists = listMemo{}
						}
						fl := listFilter{a: a, ps: ps, sub: a.subjectFor(info), m: mcpMethods[m]}
						ct, b := "application/json", body
						if sse {
							ct, b = "text/event-stream", "event: message\ndata: "+body+"\n\nid: 7\ndata: "+msg+"\r\n\r\ndata: "+msg2+"\n\n"
						}
						out, err := fl.filterBody(ct, []byte(b))
						return string(bytes.Clone(out)), err, fl.kept, fl.removed
					}
					got, gerr, gk, gr := filter(memo, false)
					want, werr, wk, wr := filter(oracle, true)
					if got != want || (gerr == nil) != (werr == nil) || gk != wk || gr != wr {
						t.Fatalf("%s %q for %s:\nmemo   %q %v kept %d removed %d\noracle %q %v kept %d removed %d",
							m, body, info.Subject, got, gerr, gk, gr, want, werr, wk, wr)
					}
				}
			}
		}
	})
}

// TestListMemoConcurrent (run with -race): two callers filter the same
// list with changing ids at once while another list flips a tool hint and
// the policies are reloaded; every answer is the caller's own, carries
// its own id and is private.
func TestListMemoConcurrent(t *testing.T) {
	t.Parallel()
	extra := `
@id("ro") permit (principal, action == Action::"call_tool", resource) when { resource has readOnlyHint && resource.readOnlyHint };`
	a := newTestAuthorizer(t, func(c *Config) { c.Policies = testPolicies + extra })
	alice := a.subjectFor(engineer().WithToken("alice-token"))
	bob := a.subjectFor((&authn.TokenInfo{Issuer: "https://idp.example", Subject: "bob", Claims: map[string]any{"groups": []any{"sales"}}}).WithToken("bob-token"))
	msg := func(id int) []byte {
		return []byte(`{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"result":{"tools":[{"name":"get_issue"},{"name":"delete_repo"},{"name":"search","annotations":{"readOnlyHint":true}}]}}`)
	}
	flip := [2][]byte{
		[]byte(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search","annotations":{"readOnlyHint":true}}]}}`),
		[]byte(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search","annotations":{"readOnlyHint":false}}]}}`),
	}
	filter := func(sub *subject, body []byte) string {
		f := listFilter{a: a, ps: a.policies.Load(), sub: sub, m: mcpMethods["tools/list"]}
		out, err := f.filterBody("application/json", body)
		if err != nil {
			t.Error(err)
		}
		return string(out)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range maxMemoVerdicts {
				id := w*1000 + i
				got := filter(alice, msg(id))
				if !strings.Contains(got, `"id":`+strconv.Itoa(id)+`,`) || !strings.Contains(got, "get_issue") || strings.Contains(got, "delete_repo") || !strings.Contains(got, `"cacheScope":"private"`) {
					t.Errorf("alice, id %d: %s", id, got)
					return
				}
				got = filter(bob, msg(id))
				if !strings.Contains(got, `"id":`+strconv.Itoa(id)+`,`) || strings.Contains(got, "get_issue") || strings.Contains(got, "delete_repo") {
					t.Errorf("bob, id %d: %s", id, got)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range maxMemoVerdicts {
			filter(alice, flip[i%2])
			if i%50 == 0 {
				if err := a.Reload(testPolicies + extra + fmt.Sprintf("\n@id(\"n%d\") forbid (principal, action, resource == Tool::\"none\");", i)); err != nil {
					t.Error(err)
				}
			}
		}
	})
	wg.Wait()
}

// TestListMemoVerdictMemory: the verdicts a remembered message keeps are
// bounded in bytes, not only in callers. A list of ~87,000 tiny items
// (within maxMemoMessage) filtered for maxMemoVerdicts callers kept a byte per
// item per caller, some 22 MB per remembered message and
// 90 MB for the memo's four.
func TestListMemoVerdictMemory(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{}`)
	for b.Len() < maxMemoMessage-100 {
		b.WriteString(`,{}`)
	}
	b.WriteString(`]}}`)
	msg := []byte(b.String())
	ps := a.policies.Load()
	for i := range maxMemoVerdicts {
		info := engineer()
		info.Subject = "user-" + strconv.Itoa(i)
		f := listFilter{a: a, ps: ps, sub: a.subjectFor(info.WithToken(info.Subject)), m: mcpMethods["tools/list"]}
		_, err := f.filterBody("application/json", msg)
		require.NoError(t, err)
	}
	total, remembered := 0, false
	for i := range ps.lists.slots {
		if sh := ps.lists.slots[i].Load(); sh != nil {
			remembered = true
			sh.mu.Lock()
			for _, v := range sh.verdicts {
				total += len(v)
			}
			sh.mu.Unlock()
		}
	}
	require.True(t, remembered)
	assert.LessOrEqual(t, total, 1<<20, "bytes of verdicts kept for one message")
}

// TestListMemoHTTP: through the middleware, a list filtered from its
// remembered shape is still marked private (cacheScope and Cache-Control,
// whatever the handler said) and still reported to the Observer with its
// counts, exactly as when it was parsed.
func TestListMemoHTTP(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var events []observe.ListFilter
	a := newTestAuthorizer(t, func(c *Config) {
		c.Observer = &observe.Observer{ListFilter: func(_ context.Context, e observe.ListFilter) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e)
		}}
	})
	id := 0
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id++
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=60, s-maxage=600")
		_, _ = fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%d,"result":{"cacheScope":"public","tools":[{"name":"get_issue"},{"name":"delete_repo"},{"name":"get_x"}]}}`, id)
	})
	srv := httptest.NewServer(withIdentity(engineer().WithToken("alice-token"), a.Middleware(h)))
	defer srv.Close()
	for i := range 4 {
		resp, body := post(t, srv, listRequest("tools/list"), nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "private, max-age=60", resp.Header.Get("Cache-Control"), "request %d", i)
		assert.Equal(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":{"cacheScope":"private","tools":[{"name":"get_issue"},{"name":"get_x"}]}}`, i+1), string(body))
	}
	require.True(t, memoHolds(a, "2"), "the last requests were filtered from the remembered shape")
	srv.Close()
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, events, 4)
	for _, e := range events {
		assert.Equal(t, "tools/list", e.Method)
		assert.Equal(t, 2, e.Kept)
		assert.Equal(t, 1, e.Removed)
	}
}
