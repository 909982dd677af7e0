package authz

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth-go/mcpauth/authn"
)

// listOnce serves resp to a tools/list by info through a's middleware and
// returns the status and body the client gets.
func listOnce(t *testing.T, a *Authorizer, info *authn.TokenInfo, resp string) (int, string) {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, resp)
	})
	srv := httptest.NewServer(withIdentity(info, a.Middleware(h)))
	defer srv.Close()
	r, body := post(t, srv, listRequest("tools/list"), nil)
	return r.StatusCode, string(body)
}

// memoHolds reports whether a's list memo remembers a message with the
// given id literal.
func memoHolds(a *Authorizer, id string) bool {
	ps := a.policies.Load()
	for i := range ps.lists.slots {
		if sh := ps.lists.slots[i].Load(); sh != nil && sh.idStart >= 0 && string(sh.msg[sh.idStart:sh.idEnd]) == id {
			return true
		}
	}
	return false
}

// TestListMemo (issue 13): a list message equal to one already filtered
// but for its id is filtered from the remembered shape, with exactly the
// result a full parse gives (checked against an Authorizer that has seen
// nothing), for ids of every kind and length, before or after the result;
// anything else in place of the id is parsed in full.
func TestListMemo(t *testing.T) {
	t.Parallel()
	cfg := func(c *Config) {
		c.Policies = `@id("eng") permit (principal in THVGroup::"engineering", action == Action::"call_tool", resource == Tool::"get_issue");
@id("ro") permit (principal, action == Action::"call_tool", resource) when { resource has readOnlyHint && resource.readOnlyHint };`
	}
	a := newTestAuthorizer(t, cfg)
	alice := engineer().WithToken("alice-token")
	msg := func(id string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"result":{"tools":[{"name":"get_issue","description":"d"},` +
			`{"name":"delete_repo"},{"name":"search","annotations":{"readOnlyHint":true}},{"description":"no name"}],"nextCursor":"c"}}`
	}
	fresh := func(info *authn.TokenInfo, resp string) (int, string) {
		t.Helper()
		return listOnce(t, newTestAuthorizer(t, cfg), info, resp)
	}
	_, first := listOnce(t, a, alice, msg("3"))
	assert.False(t, memoHolds(a, "3"), "a message is remembered on its second sighting only")
	_, second := listOnce(t, a, alice, msg("3"))
	assert.Equal(t, first, second)
	assert.Equal(t, `{"jsonrpc":"2.0","id":3,"result":{"cacheScope":"private","tools":[{"name":"get_issue","description":"d"},`+
		`{"name":"search","annotations":{"readOnlyHint":true}}],"nextCursor":"c"}}`, first)
	require.True(t, memoHolds(a, "3"), "the shape is remembered")

	for _, id := range []string{"3", "4", "1234567890123", `"abc"`, `"a\",\"result\":{}"`, "null", "-1.5e3", ` 7 `, `"\u00e9"`} {
		code, got := listOnce(t, a, alice, msg(id))
		wantCode, want := fresh(alice, msg(id))
		assert.Equal(t, wantCode, code, id)
		assert.Equal(t, want, got, "id %s", id)
		assert.Contains(t, got, `"id":`+id+`,`)
	}
	// The id after the result.
	after := func(id string) string {
		return `{"jsonrpc":"2.0","result":{"tools":[{"name":"delete_repo"},{"name":"get_issue"}]},"id":` + id + `}`
	}
	listOnce(t, a, alice, after("1"))
	listOnce(t, a, alice, after("1"))
	require.True(t, memoHolds(a, "1"))
	for _, id := range []string{"1", "22", `"x"`} {
		_, got := listOnce(t, a, alice, after(id))
		_, want := fresh(alice, after(id))
		assert.Equal(t, want, got, "id %s", id)
	}

	// Not a scalar where the id was: parsed in full, as without the memo.
	for _, id := range []string{
		`{"a":1}`, `[1]`, `1 2`, `1,"x":2`, `"unterminated`, ``,
		// A second result spliced in through the id: the full parse refuses
		// the duplicate member, the memo must not hand out the list.
		`1,"result":{"tools":[{"name":"delete_repo"}]},"x":1`,
	} {
		code, got := listOnce(t, a, alice, msg(id))
		wantCode, want := fresh(alice, msg(id))
		assert.Equal(t, wantCode, code, "id %s", id)
		assert.Equal(t, want, got, "id %s", id)
		assert.NotContains(t, got, "delete_repo", "id %s", id)
	}

	// Other callers get their own verdicts on the remembered shape.
	bob := (&authn.TokenInfo{Issuer: alice.Issuer, Subject: "bob", Claims: map[string]any{"groups": []any{"sales"}}}).WithToken("bob-token")
	mallory := *engineer()
	mallory.Claims = map[string]any{"groups": []any{"sales"}}
	for _, info := range []*authn.TokenInfo{bob, mallory.WithToken("other-token"), &mallory} {
		_, got := listOnce(t, a, info, msg("9"))
		assert.NotContains(t, got, "get_issue", info.Subject)
		assert.Contains(t, got, `"search"`, info.Subject)
	}
	_, got := listOnce(t, a, alice, msg("9"))
	assert.Contains(t, got, "get_issue", "alice's verdicts are still hers")

	// After Reload, the shapes and verdicts are gone with the old set.
	require.NoError(t, a.Reload(`@id("none") forbid (principal, action, resource == Tool::"get_issue");
@id("rest") permit (principal, action, resource);`))
	assert.False(t, memoHolds(a, "3"))
	_, got = listOnce(t, a, alice, msg("3"))
	assert.NotContains(t, got, "get_issue")
	assert.Contains(t, got, "delete_repo")
}

// TestListMemoAnnotations: a remembered tools list is used only while the
// tool annotations are those it left. When another list changed a hint,
// the remembered message is parsed again and its hints recorded again, as
// the latest list's hints are the ones that count.
func TestListMemoAnnotations(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, func(c *Config) {
		c.Policies = `@id("ro") permit (principal, action == Action::"call_tool", resource) when { resource has readOnlyHint && resource.readOnlyHint };`
	})
	alice := engineer().WithToken("alice-token")
	ctx := authn.NewContext(context.Background(), alice)
	callAllowed := func() bool {
		t.Helper()
		d, err := a.Authorize(ctx, []byte(call("search", "")))
		require.NoError(t, err)
		return d.Allowed
	}
	ro := `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search","annotations":{"readOnlyHint":true}}]}}`
	rw := `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search","annotations":{"readOnlyHint":false}}]}}`
	for range 2 {
		_, got := listOnce(t, a, alice, ro)
		assert.Contains(t, got, "search")
		assert.True(t, callAllowed())
		_, got = listOnce(t, a, alice, rw)
		assert.NotContains(t, got, "search")
		assert.False(t, callAllowed(), "the read-write list's hint counts")
	}
	_, got := listOnce(t, a, alice, strings.Replace(ro, `"id":1`, `"id":2`, 1))
	assert.Contains(t, got, "search")
	assert.True(t, callAllowed(), "the read-only list, seen again, counts again")
}

// TestListMemoBounded: messages over maxMemoMessage are not remembered,
// and one message keeps the verdicts of at most maxMemoVerdicts callers.
func TestListMemoBounded(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	big := `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"get_issue","description":"` + strings.Repeat("x", maxMemoMessage) + `"}]}}`
	for range 2 {
		code, _ := listOnce(t, a, engineer(), big)
		require.Equal(t, http.StatusOK, code)
	}
	assert.False(t, memoHolds(a, "1"))

	small := `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"get_issue"}]}}`
	listOnce(t, a, engineer(), small)
	listOnce(t, a, engineer(), small)
	require.True(t, memoHolds(a, "1"))
	for i := range maxMemoVerdicts + 3 {
		info := engineer()
		info.Subject = strings.Repeat("u", i+1)
		listOnce(t, a, info.WithToken(info.Subject), small)
	}
	ps := a.policies.Load()
	for i := range ps.lists.slots {
		if sh := ps.lists.slots[i].Load(); sh != nil {
			sh.mu.Lock()
			assert.LessOrEqual(t, len(sh.verdicts), maxMemoVerdicts)
			sh.mu.Unlock()
		}
	}
}
