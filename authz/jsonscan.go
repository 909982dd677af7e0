package authz

import (
	"errors"
	"math"
	"strings"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// This file holds a small JSON parser used for the JSON-RPC request body and
// for list responses. encoding/json cannot be used for the request body: it
// keeps the last of two duplicate members and matches struct fields
// case-insensitively, so a body such as {"name":"safe","Name":"delete_repo"}
// could be authorized as one tool and executed as another. The parser here
// rejects, in every object at every depth, two member names that are equal
// after Unicode simple case folding (which covers both exact duplicates and
// the case variants encoding/json would conflate). It keeps number literals
// as text (so integers and decimals are told apart exactly) and records the
// byte span of every value, which the list filter uses to rewrite a response
// while leaving every other byte as it was.

// maxJSONDepth bounds nesting in request bodies and list responses.
const maxJSONDepth = 64

// maxRequestValues bounds the JSON values (scalars and containers) of a
// request body. A parsed value costs about 72 bytes, plus the growth of the
// parse stacks, so without a bound a 1 MiB body of [0,0,…] (half a million
// values) cost some 300 MB of allocation; at this bound a body costs at most
// a few tens of MB, while a tool call carrying an array of 100 000 numbers
// still passes.
const maxRequestValues = 1 << 17

var (
	errJSONSyntax    = errors.New("authz: malformed JSON")
	errJSONDuplicate = errors.New("authz: duplicate or case-variant JSON member name")
	errJSONDepth     = errors.New("authz: JSON nested too deeply")
	errJSONValues    = errors.New("authz: too many JSON values")
)

type jkind uint8

const (
	jNull jkind = iota
	jFalse
	jTrue
	jNumber
	jString
	jArray
	jObject
)

// jvalue is one parsed JSON value. For strings, str is the decoded text; for
// numbers, the literal. kids holds the members of an object, or the elements
// of an array (with empty keys). start and end delimit the value in the
// source (which parseJSON limits to 2 GiB).
type jvalue struct {
	kind       jkind
	str        string
	kids       []jmember
	start, end int32
}

type jmember struct {
	key string
	val jvalue
}

// get returns the member named key (exact match) of an object.
func (v *jvalue) get(key string) (*jvalue, bool) {
	if v.kind != jObject {
		return nil, false
	}
	for i := range v.kids {
		if v.kids[i].key == key {
			return &v.kids[i].val, true
		}
	}
	return nil, false
}

// parseJSON parses exactly one JSON value from data, surrounded by optional
// whitespace. Invalid UTF-8 anywhere is a syntax error (RFC 8259 §8.1).
// Strings without escapes and number literals in the result share data's
// memory: data must not be modified while the result is in use.
func parseJSON(data []byte) (jvalue, error) { return parseJSONOpts(data, parseOpts{}) }

// parseOpts limits which containers get their children stored. Every
// container is still fully checked (syntax, UTF-8, duplicate names, depth);
// a container that is not kept has kids == nil but a valid span.
type parseOpts struct {
	keepDepth int  // keep children of containers nested at most this deep (root = 1); 0: all
	skipMeta  bool // do not keep "_meta" members of the root or of its members (params._meta)
	maxValues int  // reject a document with more values than this; 0: no limit
}

// parseJSONOpts is parseJSON with opts.
func parseJSONOpts(data []byte, opts parseOpts) (jvalue, error) {
	if len(data) > math.MaxInt32 {
		return jvalue{}, errJSONSyntax
	}
	p := parsers.Get().(*jparser)
	defer func() {
		clear(p.members[:p.hiMembers]) // drop references into data
		clear(p.elems[:p.hiElems])
		p.data, p.members, p.elems, p.hiMembers, p.hiElems, p.out = nil, p.members[:0], p.elems[:0], 0, 0, nil
		if cap(p.members) <= 1024 && cap(p.elems) <= 1024 {
			parsers.Put(p) // keep only small stacks around
		}
	}()
	p.data, p.pos, p.opts, p.values = data, 0, opts, 0
	p.out = make([]jmember, 0, min(len(data)/40+4, 1024))
	p.ws()
	v, err := p.value(0, true)
	if err != nil {
		return jvalue{}, err
	}
	p.ws()
	if p.pos != len(data) {
		return jvalue{}, errJSONSyntax
	}
	return v, nil
}

// parsers recycles the member and element stacks.
var parsers = sync.Pool{New: func() any {
	return &jparser{members: make([]jmember, 0, 32), elems: make([]jmember, 0, 32)}
}}

type jparser struct {
	data    []byte
	pos     int
	members []jmember // stack of the members of the objects being parsed
	elems   []jmember // stack of the elements of the arrays being parsed
	// out is the document's arena: finished containers' children are
	// appended here and their kids slice into it, so a document costs a few
	// allocations instead of one per container. When out grows, earlier
	// kids keep pointing into the previous array, which is never written again.
	out []jmember
	// high-water marks of the stacks, so a recycled parser clears only
	// what it used
	hiMembers, hiElems int
	opts               parseOpts
	values             int // values begun so far
}

// emit copies a finished container's children to the arena.
func (p *jparser) emit(kids []jmember) []jmember {
	if len(p.out)+len(kids) > cap(p.out) {
		if len(kids) >= cap(p.out) {
			// A container as large as the arena gets an array of its
			// own: growing the arena to fit it would allocate twice its
			// size again for the next small container.
			own := append([]jmember(nil), kids...)
			return own[:len(own):len(own)]
		}
		p.out = make([]jmember, 0, 2*cap(p.out))
	}
	i := len(p.out)
	p.out = append(p.out, kids...)
	return p.out[i:len(p.out):len(p.out)]
}

// keepChild reports whether a container nested at depth (its own depth), the
// value of member key ("" for array elements), keeps its children.
func (p *jparser) keepChild(depth int, key string) bool {
	if p.opts.keepDepth > 0 && depth > p.opts.keepDepth {
		return false
	}
	return !(p.opts.skipMeta && depth <= 3 && key == "_meta")
}

func (p *jparser) ws() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jparser) lit(s string, k jkind) (jvalue, error) {
	if !strings.HasPrefix(string(p.data[p.pos:min(len(p.data), p.pos+len(s))]), s) {
		return jvalue{}, errJSONSyntax
	}
	start := p.pos
	p.pos += len(s)
	return jvalue{kind: k, start: int32(start), end: int32(p.pos)}, nil
}

func (p *jparser) value(depth int, keep bool) (jvalue, error) {
	if p.pos >= len(p.data) {
		return jvalue{}, errJSONSyntax
	}
	if p.values++; p.opts.maxValues > 0 && p.values > p.opts.maxValues {
		return jvalue{}, errJSONValues
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth+1, keep)
	case c == '[':
		return p.array(depth+1, keep)
	case c == '"':
		start := p.pos
		s, err := p.string()
		return jvalue{kind: jString, str: s, start: int32(start), end: int32(p.pos)}, err
	case c == 't':
		return p.lit("true", jTrue)
	case c == 'f':
		return p.lit("false", jFalse)
	case c == 'n':
		return p.lit("null", jNull)
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return jvalue{}, errJSONSyntax
	}
}

func (p *jparser) object(depth int, keep bool) (jvalue, error) {
	if depth > maxJSONDepth {
		return jvalue{}, errJSONDepth
	}
	v := jvalue{kind: jObject, start: int32(p.pos)}
	var seen map[string]struct{} // folded names, once the object is large
	p.pos++                      // '{'
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		v.end = int32(p.pos)
		return v, nil
	}
	// Members collect on p.members and are copied out once, at their exact
	// count, when the object ends.
	base := len(p.members)
	defer func() { p.members = p.members[:base] }()
	for {
		p.ws()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return jvalue{}, errJSONSyntax
		}
		key, err := p.string()
		if err != nil {
			return jvalue{}, err
		}
		if seen != nil {
			fk := foldKey(key)
			if _, dup := seen[fk]; dup {
				return jvalue{}, errJSONDuplicate
			}
			seen[fk] = struct{}{}
		} else {
			cur := p.members[base:]
			for i := range cur {
				if sameName(cur[i].key, key) {
					return jvalue{}, errJSONDuplicate
				}
			}
			if len(cur) == smallObject {
				// Switch to a map so large objects stay linear.
				seen = make(map[string]struct{}, 2*smallObject)
				for i := range cur {
					seen[foldKey(cur[i].key)] = struct{}{}
				}
				fk := foldKey(key)
				if _, dup := seen[fk]; dup {
					return jvalue{}, errJSONDuplicate
				}
				seen[fk] = struct{}{}
			}
		}
		p.ws()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return jvalue{}, errJSONSyntax
		}
		p.pos++
		p.ws()
		val, err := p.value(depth, keep && p.keepChild(depth+1, key))
		if err != nil {
			return jvalue{}, err
		}
		p.members = append(grow(p.members), jmember{key: key, val: val})
		p.hiMembers = max(p.hiMembers, len(p.members))
		p.ws()
		if p.pos >= len(p.data) {
			return jvalue{}, errJSONSyntax
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			v.end = int32(p.pos)
			if keep {
				v.kids = p.emit(p.members[base:])
			}
			return v, nil
		default:
			return jvalue{}, errJSONSyntax
		}
	}
}

func (p *jparser) array(depth int, keep bool) (jvalue, error) {
	if depth > maxJSONDepth {
		return jvalue{}, errJSONDepth
	}
	v := jvalue{kind: jArray, start: int32(p.pos)}
	p.pos++ // '['
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		v.end = int32(p.pos)
		return v, nil
	}
	base := len(p.elems)
	defer func() { p.elems = p.elems[:base] }()
	for {
		p.ws()
		el, err := p.value(depth, keep && p.keepChild(depth+1, ""))
		if err != nil {
			return jvalue{}, err
		}
		p.elems = append(grow(p.elems), jmember{val: el})
		p.hiElems = max(p.hiElems, len(p.elems))
		p.ws()
		if p.pos >= len(p.data) {
			return jvalue{}, errJSONSyntax
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			v.end = int32(p.pos)
			if keep {
				v.kids = p.emit(p.elems[base:])
			}
			return v, nil
		default:
			return jvalue{}, errJSONSyntax
		}
	}
}

// grow doubles a full stack: append grows large slices by a quarter, which
// for an array of many small values allocates five times its final size.
func grow(s []jmember) []jmember {
	if len(s) < cap(s) {
		return s
	}
	g := make([]jmember, len(s), max(2*cap(s), 32))
	copy(g, s)
	return g
}

// number scans a JSON number (RFC 8259 §6) and keeps its literal.
func (p *jparser) number() (jvalue, error) {
	start := p.pos
	d := p.data
	if p.pos < len(d) && d[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(d) && d[p.pos] == '0':
		p.pos++
	case p.pos < len(d) && d[p.pos] >= '1' && d[p.pos] <= '9':
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
	default:
		return jvalue{}, errJSONSyntax
	}
	if p.pos < len(d) && d[p.pos] == '.' {
		p.pos++
		n := p.pos
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == n {
			return jvalue{}, errJSONSyntax
		}
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		n := p.pos
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == n {
			return jvalue{}, errJSONSyntax
		}
	}
	return jvalue{kind: jNumber, str: unsafe.String(&d[start], p.pos-start), start: int32(start), end: int32(p.pos)}, nil
}

// string scans a JSON string starting at the opening quote and returns its
// decoded value. Lone surrogate escapes decode to U+FFFD, as encoding/json does.
func (p *jparser) string() (string, error) {
	d := p.data
	p.pos++ // opening quote
	start := p.pos
	// Fast path: no escapes, ASCII only.
	for p.pos < len(d) {
		c := d[p.pos]
		if c == '"' {
			var s string
			if p.pos > start {
				// Zero-copy: the parsed tree lives no longer than the
				// request, and nothing writes to data while it is alive
				// (the handler reads a copy through a bytes.Reader).
				s = unsafe.String(&d[start], p.pos-start)
			}
			p.pos++
			return s, nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		p.pos++
	}
	var b strings.Builder
	b.Write(d[start:p.pos])
	for p.pos < len(d) {
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			return b.String(), nil
		case c < 0x20:
			return "", errJSONSyntax
		case c == '\\':
			if p.pos+1 >= len(d) {
				return "", errJSONSyntax
			}
			e := d[p.pos+1]
			p.pos += 2
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", errJSONSyntax
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if p.pos+1 < len(d) && d[p.pos] == '\\' && d[p.pos+1] == 'u' {
						save := p.pos
						p.pos += 2
						var ok2 bool
						r2, ok2 = p.hex4()
						if !ok2 {
							return "", errJSONSyntax
						}
						if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
							b.WriteRune(dec)
							continue
						}
						p.pos = save
					}
					r = unicode.ReplacementChar
				}
				b.WriteRune(r)
			default:
				return "", errJSONSyntax
			}
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(d[p.pos:])
			if r == utf8.RuneError && size <= 1 {
				return "", errJSONSyntax
			}
			b.Write(d[p.pos : p.pos+size])
			p.pos += size
		}
	}
	return "", errJSONSyntax
}

func (p *jparser) hex4() (rune, bool) {
	if p.pos+4 > len(p.data) {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}

// sameName reports whether two member names would be treated as the same
// field by a case-insensitive decoder (Unicode simple folding, which is what
// strings.EqualFold implements and what encoding/json's field matching
// approximates, including the Kelvin sign and long s).
func sameName(a, b string) bool {
	return a == b || strings.EqualFold(a, b)
}

// smallObject is the member count up to which duplicate names are found by
// pairwise comparison; larger objects use a map of folded names.
const smallObject = 16

// foldKey maps s to a canonical form such that foldKey(a) == foldKey(b)
// exactly when strings.EqualFold(a, b): every rune is replaced by the
// smallest rune of its simple case-folding orbit.
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToUpper(s) // for ASCII, the smallest rune of each orbit is the upper case
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < m {
				m = f
			}
		}
		b.WriteRune(m)
	}
	return b.String()
}
