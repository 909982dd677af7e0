package jsonread

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seeds are documents both accepted and refused, shared by the tests and
// the fuzz target.
var seeds = []string{
	`{}`, `[]`, `{"a":[1,-2.5e3,true,false,null,"x"]}`, ` {"a" : { "b" : [ ] } } `,
	`{"s":"\u00e9\ud83d\ude00\n\t\"\\\/"}`, `{"lone":"\ud800x","pair":"\ud800\u0041"}`,
	`"x"`, `0`, `-0.0e+1`,
	`{"iss":"https://a","aud":["x","y"],"exp":1893456000,"n":-1.5e3,"b":true,"z":null,"o":{"a":[1,{"b":"c"}]}}`,
	`{"a":1,"a":2}`, `{"A":1,"a":2}`, `{"a":01}`, `{"a":1.}`, `{"a":"x"`, `[1]`, `{"a":1e999}`,
	"{\"a\":\"\xff\"}", `{"a":tru}`, `{"a":1}x`, `[{"k":"\u212a"},{"K":1}]`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`,
}

func TestParse(t *testing.T) {
	t.Parallel()
	// Whatever both accept, encoding/json and Parse agree on.
	valid := []string{
		`{}`, `[]`, `{"a":[1,-2.5e3,true,false,null,"x"]}`, ` {"a" : { "b" : [ ] } } `,
		`{"s":"\u00e9\ud83d\ude00\n\t\"\\\/"}`, `{"lone":"\ud800x","pair":"\ud800\u0041"}`,
		`"x"`, `0`, `-0.0e+1`,
	}
	for _, s := range valid {
		v, err := Parse([]byte(s))
		require.NoError(t, err, s)
		var std any
		require.NoError(t, json.Unmarshal([]byte(s), &std), s)
		got, err := v.Any()
		require.NoError(t, err, s)
		assert.Equal(t, std, got, s)
	}
	invalid := map[string]error{
		`{"a":1,}`: ErrSyntax, `{"a":01}`: ErrSyntax, `{"a":1.}`: ErrSyntax, `[1 2]`: ErrSyntax,
		`{"a":"\x"}`: ErrSyntax, "{\"a\":\"\x01\"}": ErrSyntax, `{"a":tru}`: ErrSyntax, `{} {}`: ErrSyntax,
		"{\"a\":\"\xff\"}": ErrSyntax, `{"a":1,"a":2}`: ErrDuplicate, `{"x":{"a":1,"A":2}}`: ErrDuplicate,
		`[{"ſ":1,"S":2}]`: ErrDuplicate, strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1): ErrDepth,
		``: ErrSyntax, `{"a":1`: ErrSyntax,
	}
	for s, want := range invalid {
		_, err := Parse([]byte(s))
		assert.ErrorIs(t, err, want, "%q", s)
	}
	_, err := Parse([]byte(strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)))
	assert.NoError(t, err, "MaxDepth levels are accepted")

	// Large objects switch to a map of folded names and still catch variants.
	var b strings.Builder
	b.WriteString("{")
	for i := range 100 {
		fmt.Fprintf(&b, `"key%d":%d,`, i, i)
	}
	ok := b.String() + `"last":1}`
	_, err = Parse([]byte(ok))
	require.NoError(t, err)
	for _, dup := range []string{`"KEY7":1}`, `"key99":1}`, `"\u212aey1":1}`} {
		_, err = Parse([]byte(b.String() + dup))
		assert.ErrorIs(t, err, ErrDuplicate, dup)
	}
}

func TestSpansAndLiterals(t *testing.T) {
	t.Parallel()
	data := []byte(` {"n": 1.50e3 , "s":"a\nb", "o":{"k":[1, 2]}} `)
	v, err := Parse(data)
	require.NoError(t, err)
	n, ok := v.Get("n")
	require.True(t, ok)
	assert.Equal(t, Number, n.Kind)
	assert.Equal(t, "1.50e3", n.Text, "a number keeps its literal")
	s, _ := v.Get("s")
	assert.Equal(t, "a\nb", s.Text)
	assert.Equal(t, `"a\nb"`, string(data[s.Start:s.End]))
	o, _ := v.Get("o")
	assert.Equal(t, `{"k":[1, 2]}`, string(data[o.Start:o.End]))
	_, ok = v.Get("N")
	assert.False(t, ok, "Get matches exactly")
	assert.True(t, v.CaseVariant([]string{"S"}))
	assert.False(t, v.CaseVariant([]string{"s", "n", "o"}))
}

func TestOptions(t *testing.T) {
	t.Parallel()
	body := []byte(`{"_meta":{"x":{"y":1}},"params":{"_meta":{"clientInfo":{"name":"c"}},"arguments":{"_meta":{"a":1}}}}`)
	v, err := ParseWith(body, Options{SkipMeta: true})
	require.NoError(t, err)
	meta, _ := v.Get("_meta")
	assert.Nil(t, meta.Kids, "root _meta is checked, not kept")
	params, _ := v.Get("params")
	pmeta, _ := params.Get("_meta")
	assert.Nil(t, pmeta.Kids)
	assert.Equal(t, `{"clientInfo":{"name":"c"}}`, string(body[pmeta.Start:pmeta.End]))
	args, _ := params.Get("arguments")
	ameta, _ := args.Get("_meta")
	assert.Len(t, ameta.Kids, 1, "an argument named _meta is kept")

	// What is not kept is still checked.
	for _, bad := range []string{`{"_meta":{"a":1,"A":2}}`, `{"params":{"_meta":{"x":[1,}}}`} {
		_, err := ParseWith([]byte(bad), Options{SkipMeta: true})
		assert.Error(t, err, bad)
	}
	_, err = ParseWith([]byte(`{"r":{"l":[{"n":"a","s":{"d":{"x":1,"X":2}}}]}}`), Options{KeepDepth: 4})
	assert.ErrorIs(t, err, ErrDuplicate)
	v, err = ParseWith([]byte(`{"r":{"l":[{"n":"a","s":{"d":1}}]}}`), Options{KeepDepth: 4})
	require.NoError(t, err)
	r, _ := v.Get("r")
	l, _ := r.Get("l")
	n, _ := l.Kids[0].Val.Get("n")
	assert.Equal(t, "a", n.Text)
	sch, _ := l.Kids[0].Val.Get("s")
	assert.Nil(t, sch.Kids)

	// An issuer peek keeps the root's members only.
	v, err = ParseWith([]byte(`{"iss":"https://a","o":{"x":1}}`), Options{KeepDepth: 1})
	require.NoError(t, err)
	iss, _ := v.Get("iss")
	assert.Equal(t, "https://a", iss.Text)

	// MaxValues counts scalars and containers.
	_, err = ParseWith([]byte(`[1,2,3]`), Options{MaxValues: 4})
	assert.NoError(t, err)
	_, err = ParseWith([]byte(`[1,2,3,4]`), Options{MaxValues: 4})
	assert.ErrorIs(t, err, ErrTooManyValues)
}

func TestParseObject(t *testing.T) {
	t.Parallel()
	for _, s := range seeds {
		compareObject(t, []byte(s))
		compareDecoders(t, []byte(s))
	}
	for _, s := range []string{`{"a":1,"a":2}`, `{"o":{"k":1,"k":1}}`, `{"l":[{"k":1,"k":2}]}`, `{"A":1,"a":2}`,
		`{"\u212aey":1,"x":0,"key":2}`, `{"key":1,"x":0,"\u212aey":2}`, `{"\u017fub":1,"SUB":2}`, `{"":1,"x":0,"":2}`} {
		_, err := ParseObject([]byte(s))
		assert.ErrorIs(t, err, ErrDuplicate, s)
	}
	for _, s := range []string{`[1]`, `"x"`, ``, `  `, `null`} {
		_, err := ParseObject([]byte(s))
		assert.ErrorIs(t, err, ErrNotObject, s)
	}
	_, err := ParseObject([]byte(`{"a":1e999}`))
	assert.ErrorIs(t, err, ErrRange)

	// The maps share no memory with the input.
	data := []byte(`{"sub":"abc","l":["xyz"]}`)
	m, err := ParseObject(data)
	require.NoError(t, err)
	copy(data, bytes.Repeat([]byte("#"), len(data)))
	assert.Equal(t, map[string]any{"sub": "abc", "l": []any{"xyz"}}, m)
}

// compareObject asserts ParseObject agrees with encoding/json: the same
// value when both accept; ParseObject may additionally reject only
// duplicate or case-variant names, nesting past MaxDepth and invalid
// UTF-8 (which encoding/json replaces by U+FFFD).
func compareObject(t *testing.T, data []byte) {
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
		if errors.Is(err, ErrDuplicate) || errors.Is(err, ErrDepth) || !utf8.Valid(data) {
			return // refused on purpose: ambiguous names, depth, invalid UTF-8
		}
		t.Fatalf("ParseObject(%q) = %v; encoding/json accepts it", data, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseObject(%q)\n got %#v\nwant %#v", data, got, want)
	}
}

// compareDecoders asserts that ParseObject, which decodes in one pass,
// and Parse then Value.Any (the tree) give the same map or the same error.
func compareDecoders(t *testing.T, data []byte) {
	t.Helper()
	got, err := ParseObject(data)
	var want any
	v, werr := Parse(data)
	if werr == nil && v.Kind != Object {
		werr = ErrNotObject
	}
	if werr == nil {
		want, werr = v.Any()
	}
	if err != nil || werr != nil {
		if !errors.Is(err, werr) && !(errors.Is(err, ErrNotObject) && werr != nil) {
			t.Fatalf("%q: ParseObject error %v, tree %v", data, err, werr)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: ParseObject\n got %#v\nwant %#v", data, got, want)
	}
}

// TestParseObjectShared decodes documents with more strings, numbers and
// arrays than the decoder's first shared arrays hold, collects garbage,
// and checks every value against encoding/json: values boxed into shared
// arrays keep their arrays alive and never alias one another.
func TestParseObjectShared(t *testing.T) {
	t.Parallel()
	var docs []string
	for _, n := range []int{1, 3, 17, 100, 700} {
		var b strings.Builder
		b.WriteString(`{"empty":"","zero":0,"neg0":-0,"big":123456789012345,"bigger":1234567890123456,"l":[]`)
		for i := range n {
			fmt.Fprintf(&b, `,"s%d":"v%d","n%d":%d.5,"i%d":%d,"a%d":["x%d",%d,[%d,"y"],{"k":"z%d"}]`, i, i, i, i, i, -i, i, i, i, i, i)
		}
		b.WriteString(`,"o":{"deep":[[[["w"]]]]}}`)
		docs = append(docs, b.String())
	}
	maps := make([]map[string]any, len(docs))
	for i, d := range docs {
		m, err := ParseObjectString(d)
		require.NoError(t, err)
		maps[i] = m
		compareDecoders(t, []byte(d))
	}
	runtime.GC()
	for i, d := range docs {
		var want map[string]any
		require.NoError(t, json.Unmarshal([]byte(d), &want))
		require.Equal(t, want, maps[i])
		assert.True(t, math.Signbit(maps[i]["neg0"].(float64)), "-0 keeps its sign")
	}
}

// TestParseObjectFunc: root sees each member of the root object, in
// order, with the value the map holds, and no nested member.
func TestParseObjectFunc(t *testing.T) {
	t.Parallel()
	var names []string
	var values []any
	see := func(name string, v any) { names, values = append(names, name), append(values, v) }
	m, err := ParseObjectFunc(`{"iss":"x","o":{"iss":"nested","l":[{"a":1}]},"exp":1.5,"n":null,"l":["a"]}`, see)
	require.NoError(t, err)
	assert.Equal(t, []string{"iss", "o", "exp", "n", "l"}, names)
	for i, n := range names {
		assert.Equal(t, m[n], values[i], n)
	}
	_, err = ParseObjectFunc(`{"a":1,"A":2}`, func(string, any) {})
	assert.ErrorIs(t, err, ErrDuplicate)
}

// FuzzParseJSON is the differential test against encoding/json: whatever
// Parse accepts, encoding/json accepts too and decodes to the same value
// (numbers compared as literals); Parse never accepts two member names
// equal under case folding; and ParseObject agrees with json.Unmarshal into
// a map.
func FuzzParseJSON(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		compareObject(t, data)
		compareDecoders(t, data)
		// Containers that are not kept are checked alike: same verdict,
		// same value count, same span.
		for _, max := range []int{0, 5} {
			full, ferr := ParseWith(data, Options{MaxValues: max})
			for _, o := range []Options{{KeepDepth: 1, MaxValues: max}, {KeepDepth: 2, MaxValues: max}, {SkipMeta: true, MaxValues: max}} {
				part, perr := ParseWith(data, o)
				if (ferr == nil) != (perr == nil) || (ferr != nil && !errors.Is(perr, ferr)) {
					t.Fatalf("%q: %+v: error %v, full parse %v", data, o, perr, ferr)
				}
				if ferr == nil && (part.Kind != full.Kind || part.Start != full.Start || part.End != full.End) {
					t.Fatalf("%q: %+v: root %v, full parse %v", data, o, part, full)
				}
			}
		}
		v, err := Parse(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("Parse accepted what encoding/json rejects: %q", data)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var std any
		if err := dec.Decode(&std); err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		if got := toAnyNumber(&v); !reflect.DeepEqual(std, got) {
			t.Fatalf("%q: encoding/json %#v, Parse %#v", data, std, got)
		}
		var check func(v *Value)
		check = func(v *Value) {
			for i := range v.Kids {
				if v.Kind == Object {
					for j := range i {
						if strings.EqualFold(v.Kids[i].Key, v.Kids[j].Key) {
							t.Fatalf("%q: accepted names %q and %q", data, v.Kids[j].Key, v.Kids[i].Key)
						}
					}
				}
				check(&v.Kids[i].Val)
			}
		}
		check(&v)
	})
}

// toAnyNumber converts v with numbers as json.Number literals.
func toAnyNumber(v *Value) any {
	switch v.Kind {
	case Number:
		return json.Number(v.Text)
	case Array:
		out := []any{}
		for i := range v.Kids {
			out = append(out, toAnyNumber(&v.Kids[i].Val))
		}
		return out
	case Object:
		out := map[string]any{}
		for i := range v.Kids {
			out[v.Kids[i].Key] = toAnyNumber(&v.Kids[i].Val)
		}
		return out
	case String:
		return v.Text
	case True:
		return true
	case False:
		return false
	}
	return nil
}

var payload = []byte(`{"iss":"https://auth.example.com/tenant1","sub":"user-1234567890","aud":["https://mcp.example.com/mcp"],"exp":1893456000,"iat":1893452400,"nbf":1893452400,"jti":"b6a9c2d4-6f1e-4c3a-9b8e-1f2e3d4c5b6a","client_id":"mcp-client-abc","scope":"openid profile tools:read tools:write","groups":["engineering","admins"],"email":"user@example.com","name":"Example User"}`)

// BenchmarkParseObject compares, in one run, a token payload decoded by
// ParseObject, by encoding/json into the same map[string]any, and walked as
// a tree (Parse), plus the issuer peek.
func BenchmarkParseObject(b *testing.B) {
	b.Run("jsonread", func(b *testing.B) {
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
	b.Run("tree", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Parse(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tree-reused", func(b *testing.B) {
		var p Parser
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Parse(payload, Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("iss-peek", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, err := ParseWith(payload, Options{KeepDepth: 1})
			if err != nil {
				b.Fatal(err)
			}
			if iss, ok := v.Get("iss"); !ok || iss.Kind != String {
				b.Fatal("no iss")
			}
		}
	})
}

func TestParserReuse(t *testing.T) {
	t.Parallel()
	var p Parser
	for _, doc := range []string{`{"a":[1,2,{"b":"c"}],"d":{"e":true}}`, `[{"x":1},{"y":[null]}]`, `{}`, `{"a":[1,2,{"b":"c"}],"d":{"e":true}}`} {
		v, err := p.Parse([]byte(doc), Options{})
		require.NoError(t, err)
		got, err := v.Any()
		require.NoError(t, err)
		var want any
		require.NoError(t, json.Unmarshal([]byte(doc), &want))
		assert.Equal(t, want, got, doc)
	}
	_, err := p.Parse([]byte(`{"a":1,"A":2}`), Options{})
	assert.ErrorIs(t, err, ErrDuplicate)
}

// TestSameName checks the first- and last-letter shortcuts against
// strings.EqualFold on every pair of runes a name can start or end with
// that folds specially.
func TestSameName(t *testing.T) {
	t.Parallel()
	starts := []string{"", "a", "A", "k", "K", "\u212a", "s", "S", "\u017f", "[", "{", "@", "`", "é", "É", "1"}
	for _, x := range starts {
		for _, y := range starts {
			for _, rest := range []string{"", "ey", "EY"} {
				a, b := x+"ey", y+rest
				assert.Equal(t, strings.EqualFold(a, b), sameName(a, b), "%q %q", a, b)
				a, b = "ey"+x, rest+y
				assert.Equal(t, strings.EqualFold(a, b), sameName(a, b), "%q %q", a, b)
				a, b = x, y
				assert.Equal(t, strings.EqualFold(a, b), sameName(a, b), "%q %q", a, b)
			}
		}
	}
}

// TestContainerSizes covers containers around the sizes where kids move
// from the stack to the parser's stacks (stackKids) and duplicate checks
// switch to a map (smallObject), nested inside each other, with a
// duplicate name placed on either side of each switch.
func TestContainerSizes(t *testing.T) {
	t.Parallel()
	obj := func(n int, inner string, at int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"k%d":`, i)
			if i == at {
				b.WriteString(inner)
			} else {
				fmt.Fprintf(&b, "[%d,%q]", i, strings.Repeat("x", i))
			}
		}
		return b.String() + "}"
	}
	arr := func(n int, inner string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprint(i)
		}
		if n > 0 {
			parts[n/2] = inner
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	sizes := []int{1, stackKids - 1, stackKids, stackKids + 1, smallObject, smallObject + 1, 3 * smallObject}
	var p Parser
	for _, outer := range sizes {
		for _, inner := range sizes {
			for _, doc := range []string{
				obj(outer, obj(inner, arr(inner, `{"a":1}`), inner/2), outer/2),
				arr(outer, obj(inner, arr(outer, "true"), 0)),
				obj(outer, arr(inner, obj(inner, "null", inner-1)), outer-1),
			} {
				var want any
				require.NoError(t, json.Unmarshal([]byte(doc), &want))
				v, err := p.Parse([]byte(doc), Options{})
				require.NoError(t, err, doc)
				got, err := v.Any()
				require.NoError(t, err)
				require.Equal(t, want, got, doc)
			}
			// A duplicate of the first name, as the last member.
			dup := obj(outer, obj(inner, "0", 0), 0)
			dup = dup[:len(dup)-1] + `,"K0":1}`
			_, err := p.Parse([]byte(dup), Options{})
			assert.ErrorIs(t, err, ErrDuplicate, "%d/%d", outer, inner)
		}
	}
}

// BenchmarkParserRequest parses a 2026-07-28 tools/call as authz does: with
// a warm Parser, _meta checked but not kept.
func BenchmarkParserRequest(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"tool5",` +
		`"arguments":{"n":5,"path":"/tmp/x","verbose":true},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
		`"io.modelcontextprotocol/clientInfo":{"name":"ExampleClient","version":"1.0.0"},` +
		`"io.modelcontextprotocol/clientCapabilities":{"elicitation":{},"sampling":{}}}}}`)
	var p Parser
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Parse(body, Options{SkipMeta: true, MaxValues: 1 << 17}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParserWarmAllocs: a warm Parser parses without allocating, with
// containers past the stack array's size (stackKids) kept and skipped.
func TestParserWarmAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not asserted under the race detector (sync.Pool drops items at random)")
	}
	var b strings.Builder
	b.WriteString(`{"a":[`)
	for i := range 40 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"n":%d,"s":"x","o":[1,2,3,4,5,6,7,8,9,10]}`, i)
	}
	b.WriteString(`],"_meta":{`)
	for i := range smallObject {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":[1,2,3,4,5,6,7,8,9,10,{"x":1}]`, i)
	}
	b.WriteString(`}}`)
	doc := []byte(b.String())
	var p Parser
	for _, o := range []Options{{}, {SkipMeta: true}, {KeepDepth: 2}} {
		_, err := p.Parse(doc, o)
		require.NoError(t, err)
		allocs := testing.AllocsPerRun(50, func() {
			if _, err := p.Parse(doc, o); err != nil {
				t.Fatal(err)
			}
		})
		assert.Zero(t, allocs, "%+v", o)
	}
}

// TestPlainRun holds the eight-byte string scan to plainASCII: every byte
// value at every position, after plain bytes and before random ones.
func TestPlainRun(t *testing.T) {
	t.Parallel()
	want := func(b []byte) int {
		for i, c := range b {
			if !plainASCII[c] {
				return i
			}
		}
		return 8
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for pos := range 8 {
		for c := range 256 {
			for range 4 {
				var b [8]byte
				for i := range b {
					switch {
					case i < pos:
						b[i] = byte(0x20 + rng.IntN(0x5f))
						if !plainASCII[b[i]] {
							b[i] = 'a'
						}
					case i == pos:
						b[i] = byte(c)
					default:
						b[i] = byte(rng.IntN(256))
					}
				}
				if got := plainRun(binary.LittleEndian.Uint64(b[:])); got != want(b[:]) {
					t.Fatalf("plainRun(%q) = %d, want %d", b, got, want(b[:]))
				}
			}
		}
	}
}
