package jsonlite

import (
	"encoding/json"
	"reflect"
	"testing"
)

var seeds = []string{
	`{}`,
	`{"iss":"https://a","aud":["x","y"],"exp":1893456000,"n":-1.5e3,"b":true,"z":null,"o":{"a":[1,{"b":"c"}]}}`,
	`{"s":"\u00e9\ud83d\ude00\n\t\"\\\/","bad":"\ud800x","hi":"\ud800\u0041"}`,
	` { "a" : [ ] , "b" : { } } `,
	`{"a":1,"a":2}`,
	`{"A":1,"a":2}`,
	`{"a":01}`,
	`{"a":1.}`,
	`{"a":"x"`,
	`[1]`,
	`{"a":1e999}`,
	`{"a":"` + "\xff" + `"}`,
	`{"a":tru}`,
	`{"a":1}x`,
}

func TestMatchesEncodingJSON(t *testing.T) {
	for _, s := range seeds {
		compare(t, []byte(s))
	}
}

func TestRejectsDuplicates(t *testing.T) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"o":{"k":1,"k":1}}`, `{"l":[{"k":1,"k":2}]}`} {
		if _, err := ParseObject([]byte(s)); !ErrDuplicate(err) {
			t.Errorf("%s: err = %v, want duplicate", s, err)
		}
	}
	// Names differing only in case are distinct members, as in JSON itself.
	if _, err := ParseObject([]byte(`{"A":1,"a":2}`)); err != nil {
		t.Errorf("case-variant names: %v", err)
	}
}

func TestDepthLimit(t *testing.T) {
	deep := make([]byte, 0, 2*MaxDepth+10)
	deep = append(deep, '{', '"', 'a', '"', ':')
	for range MaxDepth + 1 {
		deep = append(deep, '[')
	}
	for range MaxDepth + 1 {
		deep = append(deep, ']')
	}
	deep = append(deep, '}')
	if _, err := ParseObject(deep); err == nil {
		t.Fatal("accepted nesting deeper than MaxDepth")
	}
}

// compare asserts ParseObject agrees with encoding/json: same value when both
// accept; ParseObject may additionally reject only duplicates or depth.
func compare(t *testing.T, data []byte) {
	t.Helper()
	got, err := ParseObject(data)
	var want map[string]any
	werr := json.Unmarshal(data, &want)
	if werr != nil || want == nil {
		if err == nil {
			t.Fatalf("ParseObject accepted %q that encoding/json rejects (%v)", data, werr)
		}
		return
	}
	if err != nil {
		if err == errDuplicate || err == errDepth {
			return
		}
		t.Fatalf("ParseObject(%q) = %v; encoding/json accepts it", data, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseObject(%q)\n got %#v\nwant %#v", data, got, want)
	}
}

func FuzzParseObject(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { compare(t, data) })
}

var payload = []byte(`{"iss":"https://auth.example.com/tenant1","sub":"user-1234567890","aud":["https://mcp.example.com/mcp"],"exp":1893456000,"iat":1893452400,"nbf":1893452400,"jti":"b6a9c2d4-6f1e-4c3a-9b8e-1f2e3d4c5b6a","client_id":"mcp-client-abc","scope":"openid profile tools:read tools:write","groups":["engineering","admins"],"email":"user@example.com","name":"Example User"}`)

// BenchmarkParseObject compares, in one run, a token payload decoded by
// ParseObject and by encoding/json into the same map[string]any.
func BenchmarkParseObject(b *testing.B) {
	b.Run("jsonlite", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseObject(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(payload, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
