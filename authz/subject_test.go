package authz

import (
	"context"
	"fmt"
	"sync"
	"testing"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth-go/mcpauth/authn"
)

// TestSubjectCache: the subject is cached per bearer token (keyed hash,
// whole token compared), never by the identity of a claims map.
func TestSubjectCache(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	claims := map[string]any{"groups": []any{"engineering"}}
	base := &authn.TokenInfo{Subject: "alice", Claims: claims}
	s1 := a.subjectFor(base.WithToken("t1"))
	assert.Same(t, s1, a.subjectFor(base.WithToken("t1")), "copies of one token share the subject")

	// Another token with the same claims map: its own subject.
	assert.NotSame(t, s1, a.subjectFor(base.WithToken("t2")))

	// The same token string with other claims (a custom verifier) is not
	// served the cached subject when anything it carries differs.
	mallory := *base.WithToken("t1")
	mallory.Subject = "mallory"
	assert.Equal(t, cedar.String("mallory"), a.subjectFor(&mallory).uid.ID)
	scoped := *base.WithToken("t1")
	scoped.Scopes = []string{"admin"}
	assert.Equal(t, []string{"admin"}, a.subjectFor(&scoped).scopes)

	// Without a token nothing is cached.
	assert.NotSame(t, a.subjectFor(base), a.subjectFor(base))

	// The cache is bounded.
	for i := range maxSubjects + 10 {
		a.subjectFor(base.WithToken(fmt.Sprint("tok", i)))
	}
	assert.LessOrEqual(t, a.subjects.Len(), maxSubjects)
}

// TestPrincipalsNamespacedByIssuer (issue 7 item 1): a sub is unique only
// within its issuer. With several issuers trusted, user "u1" of issuer B
// gets neither issuer A's "u1" static groups nor A's "u1" permits.
func TestPrincipalsNamespacedByIssuer(t *testing.T) {
	t.Parallel()
	const issA, issB = "https://idp-a.example", "https://idp-b.example"
	policies := `
@id("a-u1") permit (principal == Client::"https://idp-a.example#u1", action == Action::"call_tool", resource == Tool::"mine");
@id("admins") permit (principal in THVGroup::"admins", action == Action::"call_tool", resource == Tool::"admin_tool");`
	entities := []byte(`[{"uid":{"type":"Client","id":"https://idp-a.example#u1"},"parents":[{"type":"THVGroup","id":"admins"}],"attrs":{}}]`)
	a, err := New(Config{Policies: policies, Entities: entities, Issuers: []string{issA, issB}})
	require.NoError(t, err)

	tok := func(iss, sub string) context.Context {
		info := &authn.TokenInfo{Issuer: iss, Subject: sub, Claims: map[string]any{"iss": iss, "sub": sub}}
		return authn.NewContext(context.Background(), info.WithToken(iss+sub))
	}
	decide := func(ctx context.Context, tool string) Decision {
		t.Helper()
		d, err := a.Authorize(ctx, []byte(call(tool, "")))
		require.NoError(t, err)
		return d
	}
	for _, tool := range []string{"mine", "admin_tool"} {
		assert.True(t, decide(tok(issA, "u1"), tool).Allowed, "A's u1: %s", tool)
		assert.False(t, decide(tok(issB, "u1"), tool).Allowed, "B's u1 must not be A's u1: %s", tool)
		d := decide(tok("https://idp-c.example", "u1"), tool)
		assert.False(t, d.Allowed, "an issuer not listed: %s", tool)
		assert.Equal(t, reasonIssuer, d.Reason)
	}
	assert.Equal(t, cedar.String(issB+"#u1"), a.subjectFor(&authn.TokenInfo{Issuer: issB, Subject: "u1"}).uid.ID)

	// With several issuers, a principal named without its issuer, or with
	// one not listed, matches nobody: an error at load.
	for _, bad := range []string{
		`permit (principal == Client::"u1", action, resource);`,
		`permit (principal, action, resource) when { principal == Client::"https://idp-c.example#u1" };`,
	} {
		_, err := New(Config{Policies: bad, Issuers: []string{issA, issB}})
		assert.ErrorContains(t, err, "issuer", bad)
	}
	_, err = New(Config{Policies: policies, Issuers: []string{issA, issB},
		Entities: []byte(`[{"uid":{"type":"Client","id":"u1"},"parents":[{"type":"THVGroup","id":"admins"}],"attrs":{}}]`)})
	assert.ErrorContains(t, err, "issuer")
	for _, bad := range [][]string{{""}, {"https://a#x"}, {issA, issA}} {
		_, err := New(Config{Policies: policies, Issuers: bad})
		assert.Error(t, err, "%q", bad)
	}

	// One issuer keeps ToolHive's ids; a token from another is denied.
	one, err := New(Config{Issuers: []string{issA}, Policies: `permit (principal == Client::"u1", action == Action::"call_tool", resource);`})
	require.NoError(t, err)
	d, err := one.Authorize(tok(issA, "u1"), []byte(call("x", "")))
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	d, err = one.Authorize(tok(issB, "u1"), []byte(call("x", "")))
	require.NoError(t, err)
	assert.False(t, d.Allowed)

	// No Issuers: the first issuer seen is the only one.
	pinned, err := New(Config{Policies: `permit (principal == Client::"u1", action == Action::"call_tool", resource);`})
	require.NoError(t, err)
	d, err = pinned.Authorize(tok(issA, "u1"), []byte(call("x", "")))
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	d, err = pinned.Authorize(tok(issB, "u1"), []byte(call("x", "")))
	require.NoError(t, err)
	assert.False(t, d.Allowed, "a second issuer is not trusted without Config.Issuers")
	assert.Equal(t, reasonIssuer, d.Reason)
}

// TestConcurrentDecisionsIsolated: requests decided at once, with pooled
// memory and the caches shared, each get the decision a fresh Authorizer
// gives them alone.
func TestConcurrentDecisionsIsolated(t *testing.T) {
	t.Parallel()
	shared := newTestAuthorizer(t, nil)
	type job struct {
		ctx  context.Context
		body string
	}
	var jobs []job
	for i, info := range []*authn.TokenInfo{engineer(), {Issuer: "https://idp.example", Subject: "bob", Claims: map[string]any{"roles": []any{"admins"}}}, {Issuer: "https://idp.example", Subject: "carol"}} {
		ctx := authn.NewContext(context.Background(), info.WithToken(fmt.Sprint("token-", i)))
		for _, body := range []string{
			call("get_issue", ""), call("delete_repo", `{"force":true}`), call("weather", `{"city":"London"}`),
			call("weather", `{"city":"Berlin"}`), call("transfer", `{"amount":50}`), call("transfer", `{"amount":500}`),
			`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///etc/passwd"}}`,
		} {
			jobs = append(jobs, job{ctx, body})
		}
	}
	want := make([]bool, len(jobs))
	for i, j := range jobs {
		d, err := newTestAuthorizer(t, nil).Authorize(j.ctx, []byte(j.body))
		require.NoError(t, err)
		want[i] = d.Allowed
	}
	errs := make(chan string, 8*len(jobs))
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 50 {
				i := (w*7 + r) % len(jobs)
				d, err := shared.Authorize(jobs[i].ctx, []byte(jobs[i].body))
				if err != nil || d.Allowed != want[i] {
					errs <- fmt.Sprintf("job %d (%s): allowed %v, want %v (%v)", i, jobs[i].body, d.Allowed, want[i], err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestScopeMatches: a cached subject's evaluation leaves out exactly the
// policies whose principal scope cannot hold for it (`==`, `in` through
// its token's groups and the static hierarchy, `is`, `is … in`), computed
// again after a Reload; and decides every call as an uncached subject of
// the same identity, which evaluates them all.
func TestScopeMatches(t *testing.T) {
	t.Parallel()
	policies := `
@id("eq") permit (principal == Client::"alice", action == Action::"call_tool", resource == Tool::"t1");
@id("eq-other") permit (principal == Client::"bob", action == Action::"call_tool", resource == Tool::"t2");
@id("in-direct") permit (principal in THVGroup::"eng", action == Action::"call_tool", resource == Tool::"t3");
@id("in-nested") permit (principal in THVGroup::"staff", action == Action::"call_tool", resource == Tool::"t4");
@id("in-static") permit (principal in THVGroup::"oncall", action == Action::"call_tool", resource == Tool::"t5");
@id("in-other") permit (principal in THVGroup::"admins", action == Action::"call_tool", resource == Tool::"t6");
@id("in-self") permit (principal in Client::"alice", action == Action::"call_tool", resource == Tool::"t7");
@id("is") permit (principal is Client, action == Action::"call_tool", resource == Tool::"t8");
@id("is-other") permit (principal is THVGroup, action == Action::"call_tool", resource == Tool::"t9");
@id("is-in") permit (principal is Client in THVGroup::"staff", action == Action::"call_tool", resource == Tool::"t10");
@id("is-in-other") permit (principal is Client in THVGroup::"admins", action == Action::"call_tool", resource == Tool::"t11");
@id("all") forbid (principal, action == Action::"call_tool", resource == Tool::"t12") when { context.arg_x == 1 };
@id("in-other-errs") permit (principal in THVGroup::"admins", action == Action::"call_tool", resource == Tool::"t13") when { context.missing == 1 };`
	// eng is in staff; alice is in oncall by a static entity.
	entities := []byte(`[
{"uid":{"type":"THVGroup","id":"eng"},"parents":[{"type":"THVGroup","id":"staff"}],"attrs":{}},
{"uid":{"type":"THVGroup","id":"staff"},"parents":[],"attrs":{}},
{"uid":{"type":"Client","id":"alice"},"parents":[{"type":"THVGroup","id":"oncall"}],"attrs":{}}]`)
	a, err := New(Config{Policies: policies, Entities: entities})
	require.NoError(t, err)
	info := &authn.TokenInfo{Subject: "alice", Claims: map[string]any{"groups": []any{"eng"}}}
	cached := a.subjectFor(info.WithToken("tok"))
	plain := a.newSubject(info, "")

	ps := a.policies.Load()
	ok := cached.scopeMatches(a, ps)
	got := map[string]bool{}
	for _, e := range ps.entries {
		got[string(e.id)] = ok[e.pos]
	}
	assert.Equal(t, map[string]bool{
		"eq": true, "eq-other": false, "in-direct": true, "in-nested": true, "in-static": true, "in-other": false,
		"in-self": true, "is": true, "is-other": false, "is-in": true, "is-in-other": false, "all": true, "in-other-errs": false,
	}, got)

	for i := 1; i <= 13; i++ {
		req, err := parseRPC([]byte(call(fmt.Sprint("t", i), `{"x":1}`)))
		require.NoError(t, err)
		dc, err := a.decide(ps, cached, req, new(scratch))
		require.NoError(t, err)
		dp, err := a.decide(ps, plain, req, nil)
		require.NoError(t, err)
		assert.Equal(t, dp, dc, "t%d", i)
	}

	require.NoError(t, a.Reload(`@id("in-other") permit (principal in THVGroup::"admins", action, resource);
@id("in-nested") permit (principal in THVGroup::"staff", action, resource);`))
	ps2 := a.policies.Load()
	ok = cached.scopeMatches(a, ps2)
	require.Len(t, ok, 2)
	assert.Equal(t, []bool{false, true}, ok, "computed again for the reloaded set")
}
