// Package jsonread is mcpauth's one JSON reader (RFC 8259). It parses a
// document into a tree of [Value]s that keeps, for every value, its byte
// span in the source and, for numbers, the literal text, and it refuses what
// makes JSON ambiguous between two decoders:
//
//   - two member names in one object, at any depth, that are equal or equal
//     under Unicode simple case folding ({"name":…,"Name":…}): encoding/json
//     keeps the last duplicate and matches struct fields case-insensitively,
//     case-sensitive decoders do not, so a request could be checked as one
//     thing and executed as another ([ErrDuplicate]);
//   - invalid UTF-8 anywhere (RFC 8259 §8.1) and any syntax error
//     ([ErrSyntax]);
//   - nesting deeper than [MaxDepth] ([ErrDepth]) and, when asked, more
//     values than Options.MaxValues ([ErrTooManyValues]).
//
// Whatever it accepts, encoding/json accepts too and decodes to the same
// value (a differential test and the FuzzParseJSON target keep it so).
//
// Two ways to read a document:
//
//   - [Parse] / [ParseWith] return the tree. Strings without escapes and
//     number literals share the source's memory (no copy): the source must
//     not be modified while the tree is in use. Walk it with [Value.Get] and
//     the Kids slices; a value's source text is data[v.Start:v.End]. This is
//     what authz uses (JSON-RPC requests, list responses rewritten in place)
//     and what a reader that needs one member uses: Options.KeepDepth 1 keeps
//     only the root's members (MultiVerifier's unverified "iss" peek is
//     ParseWith(payload, Options{KeepDepth: 1}) then Get("iss")).
//   - [ParseObject] decodes one JSON object into map[string]any with
//     encoding/json's value types (string, float64, bool, nil, []any,
//     map[string]any) for code that wants maps, such as a JWT's header and
//     claims. It decodes in one pass straight into the maps, with the same
//     checks and no tree; it copies the source once and lets every string
//     share that copy ([ParseObjectString] takes a string and copies
//     nothing; [ParseObjectFunc] also hands each root member to a
//     function), so the maps share no memory with data. [Value.Any] converts
//     a subtree of a tree the same way. A [Parser] reuses its memory from
//     one document to the next (no allocation once warm).
package jsonread

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// MaxDepth is the deepest nesting accepted: the root container counts as
// one level.
const MaxDepth = 64

// Errors. Every error Parse, ParseWith and ParseObject return is one of
// these (use errors.Is).
var (
	ErrSyntax        = errors.New("jsonread: malformed JSON")
	ErrDuplicate     = errors.New("jsonread: duplicate or case-variant member name")
	ErrDepth         = errors.New("jsonread: JSON nested too deeply")
	ErrTooManyValues = errors.New("jsonread: too many JSON values")
	ErrNotObject     = errors.New("jsonread: not a JSON object")
	ErrRange         = errors.New("jsonread: number out of float64 range")
)

// Kind is the JSON type of a Value.
type Kind uint8

// The JSON types.
const (
	Null Kind = iota
	False
	True
	Number
	String
	Array
	Object
)

// Value is one parsed JSON value.
type Value struct {
	// Kind is its JSON type.
	Kind Kind
	// Text is the decoded text of a String and the literal of a Number
	// (exactly as written, e.g. "1.50e3"); empty for other kinds.
	Text string
	// Kids holds the members of an Object in source order, or the elements
	// of an Array (with empty keys). It is nil for an empty container and
	// for a container that Options did not keep (its Start/End still hold).
	Kids []Member
	// Start and End delimit the value in the source: data[Start:End].
	Start, End int32
}

// Member is one member of an object (or, with an empty Key, one element of
// an array).
type Member struct {
	Key string
	Val Value
}

// Get returns the member named key (exact match) of an object; ok is false
// when v is not an object or has no such member.
func (v *Value) Get(key string) (*Value, bool) {
	if v.Kind != Object {
		return nil, false
	}
	for i := range v.Kids {
		if v.Kids[i].Key == key {
			return &v.Kids[i].Val, true
		}
	}
	return nil, false
}

// CaseVariant reports whether object v has a member whose name is not one
// of names but equals one of them under Unicode simple case folding. A
// reader that looks members up by exact name (Get) uses it to refuse a
// member that a case-insensitive decoder (encoding/json's struct matching)
// would take for one it reads.
func (v *Value) CaseVariant(names []string) bool {
	for i := range v.Kids {
		k := v.Kids[i].Key
		for _, n := range names {
			if k != "" && n != "" && k[0]|n[0] < utf8.RuneSelf && lowerASCII(k[0]) != lowerASCII(n[0]) {
				continue // ASCII initials that differ ignoring case (as in sameName)
			}
			if k != n && sameName(k, n) {
				return true
			}
		}
	}
	return false
}

// Options limits what a parse keeps and accepts. The zero value keeps every
// container and sets no bound on the number of values.
type Options struct {
	// KeepDepth keeps the children of containers nested at most this deep
	// (the root is 1). Deeper containers are fully checked (syntax, UTF-8,
	// duplicate names, depth) but get Kids == nil. If zero, all are kept.
	KeepDepth int
	// SkipMeta does not keep the children of "_meta" members of the root
	// or of its members (MCP's params._meta); they are still checked.
	SkipMeta bool
	// MaxValues rejects a document with more values (scalars and
	// containers) than this with ErrTooManyValues. If zero, no limit.
	MaxValues int
}

// Parse parses exactly one JSON value from data, surrounded by optional
// whitespace, keeping every container. See the package documentation for
// what it refuses and for the memory the result shares with data.
func Parse(data []byte) (Value, error) { return ParseWith(data, Options{}) }

// ParseWith is Parse with opts. data is limited to 2 GiB.
func ParseWith(data []byte, opts Options) (Value, error) {
	if len(data) > math.MaxInt32 {
		return Value{}, ErrSyntax
	}
	p := parsers.Get().(*parser)
	defer p.release()
	p.out = make([]Member, 0, min(len(data)/40+4, 1024))
	return p.parse(data, opts)
}

// A Parser parses documents reusing its memory from one parse to the next,
// for callers that parse many documents and drop each tree before the
// next: a tree it returned is valid only until its next Parse (after that,
// its Kids slices may hold another document's values). The zero value is
// ready to use. A Parser is not safe for concurrent use; keep one per
// goroutine or in a sync.Pool.
type Parser struct {
	arena []Member
	// q is the parser's state and stacks, kept from one parse to the next
	// (a sync.Pool round trip per parse cost more than the parse of a
	// small document's skeleton).
	q parser
}

// Parse is ParseWith, with the tree in p's memory.
func (p *Parser) Parse(data []byte, opts Options) (Value, error) {
	if len(data) > math.MaxInt32 {
		return Value{}, ErrSyntax
	}
	clear(p.arena) // drop the previous document's references
	if cap(p.arena) == 0 {
		p.arena = make([]Member, 0, min(len(data)/40+4, 1024))
	}
	q := &p.q
	q.out = p.arena[:0]
	v, err := q.parse(data, opts)
	p.arena = q.out // the grown arena, when it grew
	q.reset()
	return v, err
}

// Release drops p's references to the last document parsed (so that it
// can be collected) and any memory a large document made p keep, leaving
// p ready for reuse, e.g. before it goes back to a sync.Pool.
func (p *Parser) Release() {
	clear(p.arena)
	p.arena = p.arena[:0]
	if cap(p.arena) > 1<<14 {
		p.arena = nil
	}
	p.q.reset()
}

// Any converts v to encoding/json's value types (see ParseObject). Strings
// share the parse's source memory, as the tree does. A number outside
// float64's range is ErrRange; a container that was not kept converts as
// empty.
func (v *Value) Any() (any, error) {
	switch v.Kind {
	case Null:
		return nil, nil
	case True:
		return true, nil
	case False:
		return false, nil
	case String:
		return v.Text, nil
	case Number:
		f, err := strconv.ParseFloat(v.Text, 64)
		if err != nil {
			return nil, ErrRange
		}
		return f, nil
	case Array:
		out := make([]any, len(v.Kids))
		for i := range v.Kids {
			e, err := v.Kids[i].Val.Any()
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	}
	return v.object()
}

func (v *Value) object() (map[string]any, error) {
	m := make(map[string]any, len(v.Kids))
	for i := range v.Kids {
		e, err := v.Kids[i].Val.Any()
		if err != nil {
			return nil, err
		}
		m[v.Kids[i].Key] = e
	}
	return m, nil
}

// parse runs one parse on a recycled parser whose out is set.
func (p *parser) parse(data []byte, opts Options) (Value, error) {
	p.data, p.pos, p.opts, p.values = data, 0, opts, 0
	p.ws()
	var v Value
	if err := p.value(&v, 0, true); err != nil {
		return Value{}, err
	}
	p.ws()
	if p.pos != len(data) {
		return Value{}, ErrSyntax
	}
	return v, nil
}

// release resets p and returns it to the pool when its stacks are small.
func (p *parser) release() {
	if p.reset() {
		parsers.Put(p)
	}
}

// reset clears what a parse left in p, dropping its stacks when they grew
// large; small reports whether they are small (kept).
func (p *parser) reset() (small bool) {
	clear(p.members[:p.hiMembers]) // drop references into data
	clear(p.elems[:p.hiElems])
	clear(p.names[:p.hiNames])
	p.data, p.members, p.elems, p.names, p.out = nil, p.members[:0], p.elems[:0], p.names[:0], nil
	p.hiMembers, p.hiElems, p.hiNames = 0, 0, 0
	if cap(p.members) > 1024 || cap(p.elems) > 1024 || cap(p.names) > 1024 {
		p.members, p.elems, p.names = nil, nil, nil // a zero parser grows them again
		return false
	}
	return true
}

// parsers recycles the member and element stacks.
var parsers = sync.Pool{New: func() any {
	return &parser{members: make([]Member, 0, 32), elems: make([]Member, 0, 32), names: make([]string, 0, 32)}
}}

type parser struct {
	data    []byte
	pos     int
	members []Member // stack of the members of the objects being parsed
	elems   []Member // stack of the elements of the arrays being parsed
	names   []string // stack of the member names of skipped objects
	// out is the document's arena: finished containers' children are
	// appended here and their kids slice into it, so a document costs a few
	// allocations instead of one per container. When out grows, earlier
	// kids keep pointing into the previous array, which is never written again.
	out []Member
	// high-water marks of the stacks, so a recycled parser clears only
	// what it used
	hiMembers, hiElems, hiNames int
	opts                        Options
	values                      int // values begun so far
}

// emit copies a finished container's children to the arena.
func (p *parser) emit(kids []Member) []Member {
	if len(p.out)+len(kids) > cap(p.out) {
		if len(kids) >= cap(p.out) {
			// A container as large as the arena gets an array of its
			// own: growing the arena to fit it would allocate twice its
			// size again for the next small container.
			own := append([]Member(nil), kids...)
			return own[:len(own):len(own)]
		}
		p.out = make([]Member, 0, 2*cap(p.out))
	}
	i := len(p.out)
	p.out = append(p.out, kids...)
	return p.out[i:len(p.out):len(p.out)]
}

// keepChild reports whether a container nested at depth (its own depth), the
// value of member key ("" for array elements), keeps its children.
func (p *parser) keepChild(depth int, key string) bool {
	if p.opts.KeepDepth > 0 && depth > p.opts.KeepDepth {
		return false
	}
	return !(p.opts.SkipMeta && depth <= 3 && key == "_meta")
}

func (p *parser) ws() {
	i, d := p.pos, p.data
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	p.pos = i
}

func (p *parser) lit(dst *Value, s string, k Kind) error {
	if !strings.HasPrefix(string(p.data[p.pos:min(len(p.data), p.pos+len(s))]), s) {
		return ErrSyntax
	}
	start := p.pos
	p.pos += len(s)
	*dst = Value{Kind: k, Start: int32(start), End: int32(p.pos)}
	return nil
}

// value parses one value into *dst (which must be zero, or be overwritten
// whole on success).
func (p *parser) value(dst *Value, depth int, keep bool) error {
	if p.pos >= len(p.data) {
		return ErrSyntax
	}
	if p.values++; p.opts.MaxValues > 0 && p.values > p.opts.MaxValues {
		return ErrTooManyValues
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		if !keep && depth < MaxDepth {
			return p.skipObject(dst, depth+1) // without object's larger frame
		}
		return p.object(dst, depth+1, keep)
	case c == '[':
		if !keep && depth < MaxDepth {
			return p.skipArray(dst, depth+1)
		}
		return p.array(dst, depth+1, keep)
	case c == '"':
		start := p.pos
		s, err := p.string()
		*dst = Value{Kind: String, Text: s, Start: int32(start), End: int32(p.pos)}
		return err
	case c == 't':
		return p.lit(dst, "true", True)
	case c == 'f':
		return p.lit(dst, "false", False)
	case c == 'n':
		return p.lit(dst, "null", Null)
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(dst)
	default:
		return ErrSyntax
	}
}

func (p *parser) object(dst *Value, depth int, keep bool) error {
	if depth > MaxDepth {
		return ErrDepth
	}
	if !keep {
		return p.skipObject(dst, depth)
	}
	start := p.pos
	var seen map[string]struct{} // folded names, once the object is large
	p.pos++                      // '{'
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		*dst = Value{Kind: Object, Start: int32(start), End: int32(p.pos)}
		return nil
	}
	// Members collect in a small array on the goroutine's stack (writing
	// there costs no GC write barrier) and, past its size, on p.members;
	// they are copied out once, at their exact count, when the object ends.
	var local [stackKids]Member
	cur := local[:0]
	base := -1 // where the members start in p.members, once they moved there
	defer func() {
		if base >= 0 {
			p.members = p.members[:base]
		}
	}()
	for {
		p.ws()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return ErrSyntax
		}
		key, err := p.string()
		if err != nil {
			return err
		}
		if seen != nil {
			fk := foldKey(key)
			if _, dup := seen[fk]; dup {
				return ErrDuplicate
			}
			seen[fk] = struct{}{}
		} else {
			for i := range cur {
				if sameName(cur[i].Key, key) {
					return ErrDuplicate
				}
			}
			if len(cur) == smallObject {
				// Switch to a map so large objects stay linear.
				seen = make(map[string]struct{}, 2*smallObject)
				for i := range cur {
					seen[foldKey(cur[i].Key)] = struct{}{}
				}
				fk := foldKey(key)
				if _, dup := seen[fk]; dup {
					return ErrDuplicate
				}
				seen[fk] = struct{}{}
			}
		}
		p.ws()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return ErrSyntax
		}
		p.pos++
		p.ws()
		kk := keep && p.keepChild(depth+1, key)
		if base < 0 && len(cur) < cap(cur) {
			// Parse straight into the stack array, which does not move.
			cur = cur[:len(cur)+1]
			m := &cur[len(cur)-1]
			m.Key = key
			if err := p.value(&m.Val, depth, kk); err != nil {
				return err
			}
		} else {
			// The kids are on p.members (moved there first), so the
			// stack array is free: parse into its first slot (a pointer
			// to a plain local would make the compiler put it on the heap).
			cur = p.moveKids(&p.members, &base, cur)
			slot := local[:1]
			slot[0] = Member{Key: key}
			if err := p.value(&slot[0].Val, depth, kk); err != nil {
				return err
			}
			p.members = append(grow(p.members), slot[0])
			cur = p.members[base:]
			p.hiMembers = max(p.hiMembers, len(p.members))
		}
		p.ws()
		if p.pos >= len(p.data) {
			return ErrSyntax
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			*dst = Value{Kind: Object, Start: int32(start), End: int32(p.pos)}
			if keep {
				dst.Kids = p.emit(cur)
			}
			return nil
		default:
			return ErrSyntax
		}
	}
}

// stackKids is how many members or elements of one container are
// collected on the stack before they move to the parser's heap stacks.
// The array is in every level's frame: at 4 (the members of a JSON-RPC
// request's envelope, params and typical arguments), object's frame is
// 816 bytes, and a tools/call served by net/http through authz's
// middleware stays within an 8 KB goroutine stack (at 8 it did not, and
// every garbage collection shrank the connection's stack for the next
// request to grow it again by copying).
const stackKids = 4

// moveKids moves a container's kids from its stack array (cur) to *stack
// (the parser's member or element stack) the first time (*base records
// where they start there) and returns them there.
func (p *parser) moveKids(stack *[]Member, base *int, cur []Member) []Member {
	if *base < 0 {
		// Nested containers have given back what they took, so the
		// stack ends where this container's kids go.
		*base = len(*stack)
		for _, k := range cur {
			*stack = append(grow(*stack), k)
		}
	}
	return (*stack)[*base:]
}

func (p *parser) array(dst *Value, depth int, keep bool) error {
	if depth > MaxDepth {
		return ErrDepth
	}
	if !keep {
		return p.skipArray(dst, depth)
	}
	start := p.pos
	p.pos++ // '['
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		*dst = Value{Kind: Array, Start: int32(start), End: int32(p.pos)}
		return nil
	}
	var local [stackKids]Member // as in object
	cur := local[:0]
	base := -1
	defer func() {
		if base >= 0 {
			p.elems = p.elems[:base]
		}
	}()
	for {
		p.ws()
		kk := keep && p.keepChild(depth+1, "")
		if base < 0 && len(cur) < cap(cur) {
			cur = cur[:len(cur)+1] // as in object
			if err := p.value(&cur[len(cur)-1].Val, depth, kk); err != nil {
				return err
			}
		} else {
			cur = p.moveKids(&p.elems, &base, cur) // as in object
			slot := local[:1]
			slot[0] = Member{}
			if err := p.value(&slot[0].Val, depth, kk); err != nil {
				return err
			}
			p.elems = append(grow(p.elems), slot[0])
			cur = p.elems[base:]
			p.hiElems = max(p.hiElems, len(p.elems))
		}
		p.ws()
		if p.pos >= len(p.data) {
			return ErrSyntax
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			*dst = Value{Kind: Array, Start: int32(start), End: int32(p.pos)}
			if keep {
				dst.Kids = p.emit(cur)
			}
			return nil
		default:
			return ErrSyntax
		}
	}
}

// skipObject parses an object whose members are not kept: it checks
// what object checks (syntax, UTF-8, depth, duplicate and case-variant
// names, the value count) but keeps only the member names, on p.names up
// to smallObject of them (not in an array on the goroutine's stack, so
// that a nested _meta costs a small frame per level) and then as folded
// names in a map, and gives dst no kids.
func (p *parser) skipObject(dst *Value, depth int) error {
	start := p.pos
	p.pos++ // '{'
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		*dst = Value{Kind: Object, Start: int32(start), End: int32(p.pos)}
		return nil
	}
	base := len(p.names) // this object's names are p.names[base:]
	var seen map[string]struct{}
	var scratch Value // what the members parse into, then drop
	for {
		p.ws()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return ErrSyntax
		}
		key, err := p.string()
		if err != nil {
			return err
		}
		if seen == nil {
			names := p.names[base:]
			for _, n := range names {
				if sameName(n, key) {
					return ErrDuplicate
				}
			}
			if len(names) < smallObject {
				p.names = append(p.names, key)
				p.hiNames = max(p.hiNames, len(p.names))
			} else {
				seen = make(map[string]struct{}, 2*smallObject)
				for _, n := range names {
					seen[foldKey(n)] = struct{}{}
				}
			}
		}
		if seen != nil {
			fk := foldKey(key)
			if _, dup := seen[fk]; dup {
				return ErrDuplicate
			}
			seen[fk] = struct{}{}
		}
		p.ws()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return ErrSyntax
		}
		p.pos++
		p.ws()
		if err := p.value(&scratch, depth, false); err != nil {
			return err
		}
		p.ws()
		if p.pos >= len(p.data) {
			return ErrSyntax
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			p.names = p.names[:base]
			*dst = Value{Kind: Object, Start: int32(start), End: int32(p.pos)}
			return nil
		default:
			return ErrSyntax
		}
	}
}

// skipArray is skipObject for an array.
func (p *parser) skipArray(dst *Value, depth int) error {
	start := p.pos
	p.pos++ // '['
	var scratch Value
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		*dst = Value{Kind: Array, Start: int32(start), End: int32(p.pos)}
		return nil
	}
	for {
		p.ws()
		if err := p.value(&scratch, depth, false); err != nil {
			return err
		}
		p.ws()
		if p.pos >= len(p.data) {
			return ErrSyntax
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			*dst = Value{Kind: Array, Start: int32(start), End: int32(p.pos)}
			return nil
		default:
			return ErrSyntax
		}
	}
}

// grow doubles a full stack: append grows large slices by a quarter, which
// for an array of many small values allocates five times its final size.
func grow(s []Member) []Member {
	if len(s) < cap(s) {
		return s
	}
	g := make([]Member, len(s), max(2*cap(s), 32))
	copy(g, s)
	return g
}

// number scans a JSON number (RFC 8259 §6) and keeps its literal.
func (p *parser) number(dst *Value) error {
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
		return ErrSyntax
	}
	if p.pos < len(d) && d[p.pos] == '.' {
		p.pos++
		n := p.pos
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == n {
			return ErrSyntax
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
			return ErrSyntax
		}
	}
	*dst = Value{Kind: Number, Text: unsafe.String(&d[start], p.pos-start), Start: int32(start), End: int32(p.pos)}
	return nil
}

// string scans a JSON string starting at the opening quote and returns its
// decoded value. Lone surrogate escapes decode to U+FFFD, as encoding/json does.
func (p *parser) string() (string, error) {
	d := p.data
	p.pos++ // opening quote
	start := p.pos
	// Fast path: no escapes, ASCII only.
	i := p.pos // a local, so that the loop keeps it in a register
	// Eight bytes at a time (plainRun) while all are plain, then byte by
	// byte to the first that is not (near the end of data, or at once).
	for i+8 <= len(d) {
		if k := plainRun(binary.LittleEndian.Uint64(d[i:])); k < 8 {
			i += k
			break
		}
		i += 8
	}
	for i < len(d) && plainASCII[d[i]] {
		i++
	}
	p.pos = i
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
			return "", ErrSyntax
		case c == '\\':
			if p.pos+1 >= len(d) {
				return "", ErrSyntax
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
					return "", ErrSyntax
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if p.pos+1 < len(d) && d[p.pos] == '\\' && d[p.pos+1] == 'u' {
						save := p.pos
						p.pos += 2
						var ok2 bool
						r2, ok2 = p.hex4()
						if !ok2 {
							return "", ErrSyntax
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
				return "", ErrSyntax
			}
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(d[p.pos:])
			if r == utf8.RuneError && size <= 1 {
				return "", ErrSyntax
			}
			b.Write(d[p.pos : p.pos+size])
			p.pos += size
		}
	}
	return "", ErrSyntax
}

// plainRun returns how many of the eight bytes of x (little-endian) are
// plain (plainASCII) before the first that is not, 8 when all are: a byte
// of 0x80 or more, a control character, '"' or '\\'. Each test sets the
// high bit of the bytes it finds (the borrow of a found byte may also
// mark bytes above it, never below), so the lowest set bit is exact.
func plainRun(x uint64) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	ctl := (x - 0x20*ones) &^ x // a byte below 0x20 (or 0x80 and above)
	q := x ^ '"'*ones           // a zero byte where x has a quote
	bs := x ^ '\\'*ones         // … a backslash
	m := (x | ctl | (q-ones)&^q | (bs-ones)&^bs) & highs
	return bits.TrailingZeros64(m) / 8
}

// plainASCII marks the bytes the string fast path steps over: printable
// ASCII other than the quote and the backslash.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (p *parser) hex4() (rune, bool) {
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
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	if a[0] < utf8.RuneSelf && b[0] < utf8.RuneSelf && lowerASCII(a[0]) != lowerASCII(b[0]) {
		// Two ASCII first letters that differ ignoring case: the first
		// runes do not fold together (an ASCII letter's other fold
		// partners, the Kelvin sign and long s, are not ASCII).
		return false
	}
	if x, y := a[len(a)-1], b[len(b)-1]; x < utf8.RuneSelf && y < utf8.RuneSelf && lowerASCII(x) != lowerASCII(y) {
		// The same for the last runes (an ASCII byte is a whole rune
		// wherever it is in UTF-8).
		return false
	}
	return a == b || strings.EqualFold(a, b)
}

// lowerASCII maps an ASCII upper-case letter to lower case.
func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
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
