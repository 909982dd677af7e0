package jsonread

import (
	"encoding/json"
	"reflect"
	"testing"
)

// mutate writes into every array and map reachable from v, innermost
// first (each element replaced, a member added, an element appended to
// the value held), the same for any decoder's output.
func mutate(v any) any {
	switch x := v.(type) {
	case []any:
		for i := range x {
			x[i] = mutate(x[i])
		}
		return append(x, "appended")
	case map[string]any:
		for k, e := range x {
			x[k] = mutate(e)
		}
		x["added"] = true
		return x
	case string:
		return x + "!"
	case float64:
		return x + 1
	}
	return v
}

// FuzzParseObjectJSON: a document ParseObject accepts is one encoding/json
// decodes to the same map, and writing into any of ParseObject's arrays or
// maps (the way a caller might treat a claim) changes no other value: the
// same writes into encoding/json's map give the same result.
func FuzzParseObjectJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,2,[3,"x"],{"b":["y"]}],"c":["z"],"d":{"e":[]},"f":[],"g":{}}`,
		`{"n":-0,"m":1e308,"o":0.1,"p":123456789012345678901234567890,"q":-1234567890123456}`,
		`{"s":"\ud83d\ude00\u00e9\"\\\/\b\f\n\r\t","t":"\u0000","aud":["a","b"],"aud2":["c"]}`,
		`{"deep":[[[[[[[[[["w"]]]]]]]]]],"x":[{"y":[{"z":1}]}]}`,
		`{"k":1,"K":2}`, `{"a":1,"a":2}`, `{"\u212a":1,"k":2}`, "{\"a\":\"\xff\"}", `{"a":"\ud800"}`, `{"a":1e400}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseObjectString(s)
		if err != nil {
			return
		}
		var want map[string]any
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatalf("%q: ParseObject accepts, encoding/json: %v", s, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %#v\nwant %#v", s, got, want)
		}
		if !exactCaps(got) {
			t.Fatalf("%q: an array has spare capacity: an append would write into shared memory", s)
		}
		for k := range got {
			got[k] = mutate(got[k])
			want[k] = mutate(want[k])
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: after writing into %q:\n got %#v\nwant %#v", s, k, got, want)
			}
		}
	})
}

// exactCaps reports whether every array reachable from v has cap == len.
func exactCaps(v any) bool {
	switch x := v.(type) {
	case []any:
		if cap(x) != len(x) {
			return false
		}
		for _, e := range x {
			if !exactCaps(e) {
				return false
			}
		}
	case map[string]any:
		for _, e := range x {
			if !exactCaps(e) {
				return false
			}
		}
	}
	return true
}
