package authz

import (
	"encoding/json"
	"fmt"
	"testing"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpauth-go/mcpauth/internal/jsonread"
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
		{"9223372036854775807", nil}, // no float64 holds it
		{"-9223372036854775808", cedar.Long(-9223372036854775808)},
		{"9223372036854775808", nil},
		// Issue 7 item 5: an integer a float64 cannot hold is rounded by
		// every JS SDK and by Go's any decoding: unrepresentable.
		{"9007199254740992", cedar.Long(9007199254740992)},
		{"9007199254740993", nil},
		{"-9007199254740993", nil},
		{"9007199254740994", cedar.Long(9007199254740994)},
		{"1000000000000000000", cedar.Long(1000000000000000000)},
		{"9007199254740993.0", nil},
		{"1234567890123.4567", nil}, // a float64 reads …123.4568
		{"100000000000.0001", dec("100000000000.0001")},
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
		{"922337203685477.5807", nil}, // a float64 reads …477.6
		{"922337203685477.5808", nil},
		{"-922337203685477.5808", nil},
		{"92233720368547.75", dec("92233720368547.75")},
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
	v, err := jsonread.Parse([]byte(`{"s":"x","b":true,"f":false,"n":3,"d":0.5,"z":null,"set":["a","a",1],"rec":{"k":[{"x":1}],"nil":null}}`))
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
		v, err := jsonread.Parse([]byte(bad))
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
		doc, err := policyJSON(pl[0])
		require.NoError(t, err)
		keys, all := contextUse(doc)
		assert.Equal(t, tc.all, all, tc.policy)
		if !tc.all {
			assert.ElementsMatch(t, tc.keys, keys, tc.policy)
		}
	}
}
