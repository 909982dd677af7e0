// Package jsonlite decodes one JSON object into map[string]any in a single
// pass, with the same value types as encoding/json (string, float64, bool,
// nil, []any, map[string]any), but rejecting duplicate member names at every
// level, and bounding nesting depth. It exists because access-token payloads
// are decoded on the hot path of every request: a reflective decode costs
// more than the signature check it follows. Differential tests and a fuzz
// target keep it equal to encoding/json on every input both accept.
package jsonlite

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting accepted.
const MaxDepth = 64

var (
	errSyntax    = errors.New("jsonlite: invalid JSON")
	errDuplicate = errors.New("jsonlite: duplicate member name")
	errDepth     = errors.New("jsonlite: nesting too deep")
	errNotObject = errors.New("jsonlite: not a JSON object")
)

// ErrDuplicate reports whether err is a duplicate-name error.
func ErrDuplicate(err error) bool { return err == errDuplicate }

// ParseObject decodes data, which must hold exactly one JSON object.
func ParseObject(data []byte) (map[string]any, error) {
	p := parser{b: data}
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return nil, errNotObject
	}
	m, err := p.object(0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i != len(p.b) {
		return nil, errSyntax
	}
	return m, nil
}

type parser struct {
	b []byte
	i int
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (any, error) {
	p.ws()
	if p.i >= len(p.b) {
		return nil, errSyntax
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		return p.str()
	case c == 't':
		return true, p.lit("true")
	case c == 'f':
		return false, p.lit("false")
	case c == 'n':
		return nil, p.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return nil, errSyntax
}

func (p *parser) lit(s string) error {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return errSyntax
	}
	p.i += len(s)
	return nil
}

func (p *parser) object(depth int) (map[string]any, error) {
	if depth > MaxDepth {
		return nil, errDepth
	}
	p.i++ // '{'
	m := make(map[string]any, 8)
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return m, nil
	}
	for {
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, errSyntax
		}
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, errDuplicate
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, errSyntax
		}
		p.i++
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		m[k] = v
		p.ws()
		if p.i >= len(p.b) {
			return nil, errSyntax
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return m, nil
		default:
			return nil, errSyntax
		}
	}
}

func (p *parser) array(depth int) ([]any, error) {
	if depth > MaxDepth {
		return nil, errDepth
	}
	p.i++ // '['
	a := make([]any, 0, 4)
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return a, nil
	}
	for {
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.ws()
		if p.i >= len(p.b) {
			return nil, errSyntax
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return a, nil
		default:
			return nil, errSyntax
		}
	}
}

func (p *parser) number() (float64, error) {
	start := p.i
	if p.b[p.i] == '-' {
		p.i++
	}
	if p.i >= len(p.b) {
		return 0, errSyntax
	}
	if p.b[p.i] == '0' {
		p.i++
	} else if p.b[p.i] >= '1' && p.b[p.i] <= '9' {
		for p.i < len(p.b) && isDigit(p.b[p.i]) {
			p.i++
		}
	} else {
		return 0, errSyntax
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if p.i >= len(p.b) || !isDigit(p.b[p.i]) {
			return 0, errSyntax
		}
		for p.i < len(p.b) && isDigit(p.b[p.i]) {
			p.i++
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if p.i >= len(p.b) || !isDigit(p.b[p.i]) {
			return 0, errSyntax
		}
		for p.i < len(p.b) && isDigit(p.b[p.i]) {
			p.i++
		}
	}
	f, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
	if err != nil {
		return 0, errSyntax // out of range, as encoding/json refuses it
	}
	return f, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// key decodes a member name. Names that token payloads and headers use all
// the time come back as constants, without allocating.
func (p *parser) key() (string, error) {
	end := p.i + 1
	for end < len(p.b) && end-p.i <= 16 {
		c := p.b[end]
		if c == '"' {
			if k, ok := commonKey(p.b[p.i+1 : end]); ok {
				p.i = end + 1
				return k, nil
			}
			break
		}
		if c == '\\' || c < 0x20 {
			break
		}
		end++
	}
	return p.str()
}

func commonKey(b []byte) (string, bool) {
	switch string(b) { // no allocation: the compiler compares in place
	case "iss":
		return "iss", true
	case "sub":
		return "sub", true
	case "aud":
		return "aud", true
	case "exp":
		return "exp", true
	case "nbf":
		return "nbf", true
	case "iat":
		return "iat", true
	case "jti":
		return "jti", true
	case "scope":
		return "scope", true
	case "scp":
		return "scp", true
	case "client_id":
		return "client_id", true
	case "azp":
		return "azp", true
	case "groups":
		return "groups", true
	case "roles":
		return "roles", true
	case "email":
		return "email", true
	case "name":
		return "name", true
	case "alg":
		return "alg", true
	case "kid":
		return "kid", true
	case "typ":
		return "typ", true
	case "act":
		return "act", true
	case "cnf":
		return "cnf", true
	case "auth_time":
		return "auth_time", true
	case "sid":
		return "sid", true
	case "tid":
		return "tid", true
	case "oid":
		return "oid", true
	}
	return "", false
}

// str decodes a string starting at the opening quote.
func (p *parser) str() (string, error) {
	p.i++ // opening quote
	start := p.i
	// Fast path: no escapes, plain ASCII or valid UTF-8.
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			s := p.b[start:p.i]
			p.i++
			if !utf8.Valid(s) {
				return string(fixUTF8(s)), nil
			}
			return string(s), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", errSyntax
		}
		p.i++
	}
	if p.i >= len(p.b) {
		return "", errSyntax
	}
	buf := make([]byte, 0, p.i-start+16)
	buf = append(buf, p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(fixUTF8(buf)), nil
		case c < 0x20:
			return "", errSyntax
		case c == '\\':
			p.i++
			if p.i >= len(p.b) {
				return "", errSyntax
			}
			e := p.b[p.i]
			p.i++
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", errSyntax
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
						save := p.i
						p.i += 2
						var ok2 bool
						r2, ok2 = p.hex4()
						if !ok2 {
							return "", errSyntax
						}
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							buf = utf8.AppendRune(buf, dec)
							continue
						}
						p.i = save // lone surrogate followed by another escape
					}
					r = utf8.RuneError
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return "", errSyntax
			}
		default:
			buf = append(buf, c)
			p.i++
		}
	}
	return "", errSyntax
}

func (p *parser) hex4() (rune, bool) {
	if len(p.b)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	p.i += 4
	return r, true
}

// fixUTF8 replaces invalid UTF-8 with U+FFFD, as encoding/json does.
func fixUTF8(s []byte) []byte {
	if utf8.Valid(s) {
		return s
	}
	out := make([]byte, 0, len(s)+8)
	for len(s) > 0 {
		r, n := utf8.DecodeRune(s)
		if r == utf8.RuneError && n == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, s[:n]...)
		}
		s = s[n:]
	}
	return out
}
