package authz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth-go/mcpauth/authn"
)

func TestNumberValue(t *testing.T) {
	t.Parallel()
	dec := func(s string) cedar.Value {
		d, err := types.ParseDecimal(s)
		require.NoError(t, err)
		return d
	}
	cases := []struct {
		lit  string
		want cedar.Value // nil: unrepresentable
	}{
		{"0", cedar.Long(0)},
		{"-0", cedar.Long(0)},
		{"42", cedar.Long(42)},
		{"-7", cedar.Long(-7)},
		{"9223372036854775807", cedar.Long(9223372036854775807)},
		{"-9223372036854775808", cedar.Long(-9223372036854775808)},
		{"9223372036854775808", nil},
		{"1.5", dec("1.5")},
		{"2.0", cedar.Long(2)},
		{"1e0", cedar.Long(1)},
		{"10e-1", cedar.Long(1)},
		{"-3.000", cedar.Long(-3)},
		{"-0.0001", dec("-0.0001")},
		{"12.3400", dec("12.34")},
		{"1e2", cedar.Long(100)},
		{"1E-4", dec("0.0001")},
		{"0.00001", nil},
		{"1.23456", nil},
		{"1e400", nil},
		{"1e-400", nil},
		{"0e400", cedar.Long(0)},
		{"922337203685477.5807", dec("922337203685477.5807")},
		{"922337203685477.5808", nil},
		{"-922337203685477.5808", dec("-922337203685477.5808")},
	}
	for _, tc := range cases {
		t.Run(tc.lit, func(t *testing.T) {
			t.Parallel()
			got, ok := numberValue(tc.lit)
			if tc.want == nil {
				assert.False(t, ok, "got %v", got)
				return
			}
			require.True(t, ok)
			assert.True(t, tc.want.Equal(got), "want %v (%T), got %v (%T)", tc.want, tc.want, got, got)
		})
	}
}

func TestJSONToCedar(t *testing.T) {
	t.Parallel()
	v, err := parseJSON([]byte(`{"s":"x","b":true,"f":false,"n":3,"d":0.5,"z":null,"set":["a","a",1],"rec":{"k":[{"x":1}],"nil":null}}`))
	require.NoError(t, err)
	cv, err := jsonToCedar(&v)
	require.NoError(t, err)
	want := cedar.NewRecord(cedar.RecordMap{
		"s": cedar.String("x"), "b": cedar.True, "f": cedar.False, "n": cedar.Long(3),
		"d":   mustDecimal(t, "0.5"),
		"set": cedar.NewSet(cedar.String("a"), cedar.Long(1)),
		"rec": cedar.NewRecord(cedar.RecordMap{"k": cedar.NewSet(cedar.NewRecord(cedar.RecordMap{"x": cedar.Long(1)}))}),
	})
	assert.True(t, want.Equal(cv), "got %s", cv)

	for _, bad := range []string{`[null]`, `{"a":[1,null]}`, `{"a":1e999}`, `[0.123456]`} {
		v, err := parseJSON([]byte(bad))
		require.NoError(t, err)
		_, err = jsonToCedar(&v)
		assert.ErrorIs(t, err, errUnrepresentable, bad)
	}
}

func mustDecimal(t *testing.T, s string) cedar.Decimal {
	t.Helper()
	d, err := types.ParseDecimal(s)
	require.NoError(t, err)
	return d
}

func TestClaimValue(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   any
		want cedar.Value
	}{
		{"x", cedar.String("x")},
		{true, cedar.True},
		{float64(3), cedar.Long(3)},
		{2.5, mustDecimal(t, "2.5")},
		{json.Number("7"), cedar.Long(7)},
		{json.Number("7.25"), mustDecimal(t, "7.25")},
		{int64(9), cedar.Long(9)},
		{[]any{"a", float64(1)}, cedar.NewSet(cedar.String("a"), cedar.Long(1))},
		{[]string{"a"}, cedar.NewSet(cedar.String("a"))},
		{map[string]any{"r": "x", "n": nil}, cedar.NewRecord(cedar.RecordMap{"r": cedar.String("x")})},
		{0.123456, nil},
		{[]any{"a", 1e300}, nil},
		{struct{}{}, nil},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			got, ok := claimValue(tc.in, 0)
			if tc.want == nil {
				assert.False(t, ok)
				return
			}
			require.True(t, ok)
			assert.True(t, tc.want.Equal(got), "want %v got %v", tc.want, got)
		})
	}
}

func TestParseJSON(t *testing.T) {
	t.Parallel()
	// Whatever both accept, encoding/json and parseJSON agree on.
	valid := []string{
		`{}`, `[]`, `{"a":[1,-2.5e3,true,false,null,"x"]}`, ` {"a" : { "b" : [ ] } } `,
		`{"s":"\u00e9\ud83d\ude00\n\t\"\\\/"}`, `{"lone":"\ud800x","pair":"\ud800\u0041"}`,
		`"x"`, `0`, `-0.0e+1`,
	}
	for _, s := range valid {
		v, err := parseJSON([]byte(s))
		require.NoError(t, err, s)
		var std any
		require.NoError(t, json.Unmarshal([]byte(s), &std), s)
		assert.Equal(t, std, toAny(&v), s)
	}
	invalid := map[string]error{
		`{"a":1,}`: errJSONSyntax, `{"a":01}`: errJSONSyntax, `{"a":1.}`: errJSONSyntax, `[1 2]`: errJSONSyntax,
		`{"a":"\x"}`: errJSONSyntax, "{\"a\":\"\x01\"}": errJSONSyntax, `{"a":tru}`: errJSONSyntax, `{} {}`: errJSONSyntax,
		"{\"a\":\"\xff\"}": errJSONSyntax, `{"a":1,"a":2}`: errJSONDuplicate, `{"x":{"a":1,"A":2}}`: errJSONDuplicate,
		`[{"ſ":1,"S":2}]`: errJSONDuplicate, strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1): errJSONDepth,
		``: errJSONSyntax, `{"a":1`: errJSONSyntax,
	}
	for s, want := range invalid {
		_, err := parseJSON([]byte(s))
		assert.ErrorIs(t, err, want, "%q", s)
	}
	// Large objects switch to a map of folded names and still catch variants.
	var b strings.Builder
	b.WriteString("{")
	for i := range 100 {
		fmt.Fprintf(&b, `"key%d":%d,`, i, i)
	}
	ok := b.String() + `"last":1}`
	_, err := parseJSON([]byte(ok))
	require.NoError(t, err)
	for _, dup := range []string{`"KEY7":1}`, `"key99":1}`, `"\u212aey1":1}`} {
		_, err = parseJSON([]byte(b.String() + dup))
		assert.ErrorIs(t, err, errJSONDuplicate, dup)
	}
}

func TestParseJSONOpts(t *testing.T) {
	t.Parallel()
	body := []byte(`{"_meta":{"x":{"y":1}},"params":{"_meta":{"clientInfo":{"name":"c"}},"arguments":{"_meta":{"a":1}}}}`)
	v, err := parseJSONOpts(body, parseOpts{skipMeta: true})
	require.NoError(t, err)
	meta, _ := v.get("_meta")
	assert.Nil(t, meta.kids, "root _meta is checked, not kept")
	params, _ := v.get("params")
	pmeta, _ := params.get("_meta")
	assert.Nil(t, pmeta.kids)
	assert.Equal(t, `{"clientInfo":{"name":"c"}}`, string(body[pmeta.start:pmeta.end]))
	args, _ := params.get("arguments")
	ameta, _ := args.get("_meta")
	assert.Len(t, ameta.kids, 1, "an argument named _meta is kept")

	// What is not kept is still checked.
	for _, bad := range []string{`{"_meta":{"a":1,"A":2}}`, `{"params":{"_meta":{"x":[1,}}}`} {
		_, err := parseJSONOpts([]byte(bad), parseOpts{skipMeta: true})
		assert.Error(t, err, bad)
	}
	_, err = parseJSONOpts([]byte(`{"r":{"l":[{"n":"a","s":{"d":{"x":1,"X":2}}}]}}`), parseOpts{keepDepth: 4})
	assert.ErrorIs(t, err, errJSONDuplicate)
	v, err = parseJSONOpts([]byte(`{"r":{"l":[{"n":"a","s":{"d":1}}]}}`), parseOpts{keepDepth: 4})
	require.NoError(t, err)
	r, _ := v.get("r")
	l, _ := r.get("l")
	n, _ := l.kids[0].val.get("n")
	assert.Equal(t, "a", n.str)
	sch, _ := l.kids[0].val.get("s")
	assert.Nil(t, sch.kids)
}

func toAny(v *jvalue) any {
	switch v.kind {
	case jNull:
		return nil
	case jTrue:
		return true
	case jFalse:
		return false
	case jString:
		return v.str
	case jNumber:
		var f float64
		_ = json.Unmarshal([]byte(v.str), &f)
		return f
	case jArray:
		out := []any{}
		for i := range v.kids {
			out = append(out, toAny(&v.kids[i].val))
		}
		return out
	}
	out := map[string]any{}
	for i := range v.kids {
		out[v.kids[i].key] = toAny(&v.kids[i].val)
	}
	return out
}

func TestContextUse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		policy string
		keys   []string
		all    bool
	}{
		{`permit(principal, action, resource);`, nil, false},
		{`permit(principal, action, resource) when { context.arg_n > 1 && context has arg_x && context["claim_a:b"] == 1 };`, []string{"arg_n", "arg_x", "claim_a:b"}, false},
		{`permit(principal, action, resource) when { context.arg_o.k == 1 && context has arg_o.k };`, []string{"arg_o"}, false},
		{`permit(principal, action, resource) unless { context == {} };`, nil, true},
		{`permit(principal, action, resource) when { principal.claim_x == context };`, nil, true},
	}
	for _, tc := range cases {
		pl, err := cedar.NewPolicyListFromBytes("", []byte(tc.policy))
		require.NoError(t, err)
		keys, all := contextUse(pl[0])
		assert.Equal(t, tc.all, all, tc.policy)
		if !tc.all {
			assert.ElementsMatch(t, tc.keys, keys, tc.policy)
		}
	}
}

func TestSubjectCache(t *testing.T) {
	t.Parallel()
	a := newTestAuthorizer(t, nil)
	base := &authn.TokenInfo{Subject: "alice", Claims: map[string]any{"groups": []any{"engineering"}}}
	s1 := a.subjectFor(base.WithToken("t1"))
	s2 := a.subjectFor(base.WithToken("t2"))
	assert.Same(t, s1, s2, "copies of one cached token share the subject")

	// Same subject, different claims map: a different token, rebuilt.
	other := &authn.TokenInfo{Subject: "alice", Claims: map[string]any{"groups": []any{"sales"}}}
	s3 := a.subjectFor(other)
	assert.NotSame(t, s1, s3)
	assert.False(t, s3.principal.Parents.Contains(cedar.NewEntityUID("THVGroup", "engineering")))

	// Same claims map but another subject or other scopes: rebuilt.
	mallory := *base
	mallory.Subject = "mallory"
	assert.Equal(t, cedar.String("mallory"), a.subjectFor(&mallory).uid.ID)
	scoped := *base
	scoped.Scopes = []string{"admin"}
	assert.Equal(t, []string{"admin"}, a.subjectFor(&scoped).scopes)
	assert.Empty(t, a.subjectFor(base).scopes)
}

// FuzzParseJSON checks that whatever parseJSON accepts, encoding/json
// accepts too and decodes to the same value, and that parseJSON never
// accepts duplicate or case-variant member names.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":[1,{"b":"c"}],"n":-1.5e3}`, `{"a":1,"A":2}`, `{"s":"\ud800\udc00\u00e9"}`,
		`[{"k":"\u212a"},{"K":1}]`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parseJSON(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("parseJSON accepted what encoding/json rejects: %q", data)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var std any
		if err := dec.Decode(&std); err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		if got := toAnyNumber(&v); !assert.ObjectsAreEqual(std, got) {
			t.Fatalf("%q: encoding/json %#v, parseJSON %#v", data, std, got)
		}
		var check func(v *jvalue)
		check = func(v *jvalue) {
			for i := range v.kids {
				if v.kind == jObject {
					for j := range i {
						if strings.EqualFold(v.kids[i].key, v.kids[j].key) {
							t.Fatalf("%q: accepted names %q and %q", data, v.kids[j].key, v.kids[i].key)
						}
					}
				}
				check(&v.kids[i].val)
			}
		}
		check(&v)
	})
}

// toAnyNumber is toAny with numbers as json.Number literals.
func toAnyNumber(v *jvalue) any {
	switch v.kind {
	case jNumber:
		return json.Number(v.str)
	case jArray:
		out := []any{}
		for i := range v.kids {
			out = append(out, toAnyNumber(&v.kids[i].val))
		}
		return out
	case jObject:
		out := map[string]any{}
		for i := range v.kids {
			out[v.kids[i].key] = toAnyNumber(&v.kids[i].val)
		}
		return out
	}
	return toAny(v)
}
