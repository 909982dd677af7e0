package jsonread

import (
	"math"
	"strconv"
	"unsafe"
)

// ParseObject decodes data, which must hold exactly one JSON object, into a
// map with encoding/json's value types: string, float64, bool, nil, []any
// and map[string]any. A number outside float64's range is ErrRange (as
// encoding/json refuses it). The result shares no memory with data.
func ParseObject(data []byte) (map[string]any, error) {
	if len(data) > math.MaxInt32 {
		return nil, ErrSyntax
	}
	// Copy data once into an immutable string: every string of the maps
	// can then share it without copying again.
	return ParseObjectString(string(data))
}

// ParseObjectString is ParseObject for a document held in a string: the
// maps' strings share s's memory (a string never changes), so nothing is
// copied.
//
// It decodes in one pass, straight into the maps, with the checks Parse
// makes (syntax, UTF-8, depth, duplicate and case-variant names); no tree
// is built.
func ParseObjectString(s string) (map[string]any, error) { return ParseObjectFunc(s, nil) }

// ParseObjectFunc is ParseObjectString that also calls root, when it is
// not nil, with each member of the root object in source order as it is
// decoded, so that a reader of a few members (a JWT's registered claims)
// need not look them up in the map. Names are unique (case-variants are
// refused) but a document may still turn out invalid after some calls:
// what root saw is only to be used when the error is nil.
func ParseObjectFunc(s string, root func(name string, value any)) (map[string]any, error) {
	if len(s) > math.MaxInt32 {
		return nil, ErrSyntax
	}
	d := decoder{parser: parser{data: unsafe.Slice(unsafe.StringData(s), len(s))}}
	d.ws()
	if d.pos >= len(d.data) || d.data[d.pos] != '{' {
		return nil, ErrNotObject
	}
	m, err := d.object(1, root)
	if err != nil {
		return nil, err
	}
	d.ws()
	if d.pos != len(d.data) {
		return nil, ErrSyntax
	}
	if d.outOfRange {
		return nil, ErrRange
	}
	return m, nil
}

// decoder decodes JSON straight into encoding/json's value types. It
// borrows the tree parser's scanners (ws, string) and checks names as
// object does.
type decoder struct {
	parser
	// strs, nums and lists hold the decoded strings, numbers and arrays
	// (their slice headers) that the returned values box (see box), and
	// elems the arrays' elements: one allocation for many values.
	strs  []string
	nums  []float64
	lists [][]any
	elems []any
	// outOfRange records a number outside float64's range. The decode
	// goes on, so that a syntax error later in the document is still
	// reported first, as the tree parser (which converts numbers only
	// after the whole document parsed) does.
	outOfRange bool
}

// member is one decoded member of an object being decoded.
type member struct {
	key string
	val any
}

func (d *decoder) value(depth int) (any, error) {
	if d.pos >= len(d.data) {
		return nil, ErrSyntax
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		m, err := d.object(depth+1, nil)
		if err != nil {
			return nil, err
		}
		return m, nil
	case c == '[':
		a, err := d.array(depth + 1)
		if err != nil {
			return nil, err
		}
		if len(d.lists) == cap(d.lists) {
			d.lists = make([][]any, 0, max(2*cap(d.lists), 2))
		}
		d.lists = append(d.lists, a)
		return box(listType, unsafe.Pointer(&d.lists[len(d.lists)-1])), nil
	case c == '"':
		s, err := d.string()
		if err != nil {
			return nil, err
		}
		if len(d.strs) == cap(d.strs) {
			d.strs = make([]string, 0, max(2*cap(d.strs), len(d.data)/32+4))
		}
		d.strs = append(d.strs, s)
		return box(stringType, unsafe.Pointer(&d.strs[len(d.strs)-1])), nil
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	default:
		return nil, ErrSyntax
	}
}

func (d *decoder) literal(s string) error {
	if len(d.data)-d.pos < len(s) || string(d.data[d.pos:d.pos+len(s)]) != s {
		return ErrSyntax
	}
	d.pos += len(s)
	return nil
}

// object decodes the object at d.pos, nested at depth, and calls root,
// unless nil, with each member. Its members collect on the goroutine's
// stack, checked against each other as they come, and go into a map of
// their exact count at the end.
func (d *decoder) object(depth int, root func(string, any)) (map[string]any, error) {
	if depth > MaxDepth {
		return nil, ErrDepth
	}
	d.pos++ // '{'
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return map[string]any{}, nil
	}
	var local [smallObject]member
	var firsts [smallObject]byte
	members := local[:0]
	var seen map[string]struct{} // folded names, once the object is large
	for {
		d.ws()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, ErrSyntax
		}
		key, err := d.string()
		if err != nil {
			return nil, err
		}
		if seen == nil && len(members) < smallObject {
			// Only names whose first bytes fold alike can be the same
			// name (initial keeps that byte per member, 0 for a name
			// that is empty or starts with a non-ASCII rune, which is
			// compared with every name).
			c := initial(key)
			for i := range members {
				if (firsts[i] == c || firsts[i] == 0 || c == 0) && sameName(members[i].key, key) {
					return nil, ErrDuplicate
				}
			}
			firsts[len(members)] = c
		} else {
			if seen == nil {
				// Switch to a map so large objects stay linear.
				seen = make(map[string]struct{}, 2*smallObject)
				for i := range members {
					seen[foldKey(members[i].key)] = struct{}{}
				}
			}
			fk := foldKey(key)
			if _, dup := seen[fk]; dup {
				return nil, ErrDuplicate
			}
			seen[fk] = struct{}{}
		}
		d.ws()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, ErrSyntax
		}
		d.pos++
		d.ws()
		val, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		members = append(members, member{key, val})
		if root != nil {
			root(key, val)
		}
		d.ws()
		if d.pos >= len(d.data) {
			return nil, ErrSyntax
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			m := make(map[string]any, len(members))
			for i := range members {
				m[members[i].key] = members[i].val
			}
			return m, nil
		default:
			return nil, ErrSyntax
		}
	}
}

// initial returns the lower-case first byte of an ASCII name, or 0 for an
// empty name or one starting with a non-ASCII rune: the Kelvin sign and
// the long s fold with ASCII letters.
func initial(name string) byte {
	if name == "" || name[0] >= 0x80 {
		return 0
	}
	return lowerASCII(name[0]) | 0x80 // never 0, even for a NUL
}

// array decodes the array at d.pos, nested at depth, into a slice of its
// exact length.
func (d *decoder) array(depth int) ([]any, error) {
	if depth > MaxDepth {
		return nil, ErrDepth
	}
	d.pos++ // '['
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return []any{}, nil
	}
	var local [smallObject]any
	elems := local[:0]
	for {
		d.ws()
		val, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		elems = append(elems, val)
		d.ws()
		if d.pos >= len(d.data) {
			return nil, ErrSyntax
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			n := len(elems)
			if len(d.elems)+n > cap(d.elems) {
				if n > 64 {
					return append(make([]any, 0, n), elems...), nil
				}
				d.elems = make([]any, 0, max(2*cap(d.elems), n+6))
			}
			d.elems = append(d.elems, elems...)
			return d.elems[len(d.elems)-n : len(d.elems) : len(d.elems)], nil
		default:
			return nil, ErrSyntax
		}
	}
}

// number decodes a JSON number (RFC 8259 §6) to float64 as
// strconv.ParseFloat does.
func (d *decoder) number() (any, error) {
	var v Value
	if err := d.parser.number(&v); err != nil {
		return nil, err
	}
	f, ok := smallInt(v.Text)
	if !ok {
		var err error
		if f, err = strconv.ParseFloat(v.Text, 64); err != nil {
			d.outOfRange = true
		}
	}
	if len(d.nums) == cap(d.nums) {
		d.nums = make([]float64, 0, max(2*cap(d.nums), len(d.data)/128+2))
	}
	d.nums = append(d.nums, f)
	return box(float64Type, unsafe.Pointer(&d.nums[len(d.nums)-1])), nil
}

// smallInt converts a JSON number literal that is an integer of at most
// 15 digits, such as a NumericDate, exactly as strconv.ParseFloat does
// (such an integer is exactly a float64), only faster; ok is false for
// any other literal.
func smallInt(lit string) (f float64, ok bool) {
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	if len(lit) > 15 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = 10*n + int64(c-'0')
	}
	f = float64(n)
	if neg {
		f = -f // -0 too, as ParseFloat gives
	}
	return f, true
}

// eface is the layout of a value of type any: its dynamic type and a
// pointer to its value (for every type that is not pointer-shaped, such as
// string and float64).
type eface struct {
	typ, data unsafe.Pointer
}

// The dynamic types of a string, a float64 and a []any in an any.
var (
	stringType  = typeOf("")
	float64Type = typeOf(0.0)
	listType    = typeOf([]any(nil))
)

func typeOf(x any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&x)).typ }

// box returns the any of type typ whose value is at data, which must hold
// a value of that type and never change. It is what any(v) does, except
// that any(v) allocates a copy of v for each value: box lets the decoded
// strings and numbers share a few arrays (decoder.strs, nums), which live
// as long as any value pointing into them. A value in an any is never
// written through, so sharing is safe.
func box(typ, data unsafe.Pointer) (x any) {
	e := (*eface)(unsafe.Pointer(&x))
	e.typ, e.data = typ, data
	return x
}
