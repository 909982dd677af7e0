// Package httpauth holds HTTP authentication syntax shared by the inbound
// (authn) and outbound (credentials) packages.
package httpauth

import "encoding/binary"

// IsToken68 reports whether s matches RFC 9110 §11.2 token68, which is
// RFC 6750 §2.1's b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
//
// Every bearer token is checked with it before verification, and a JWT is
// some 1 KB, so the characters are checked eight at a time (see
// token68Word); the tail and the padding byte by byte.
func IsToken68(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := binary.LittleEndian.Uint64([]byte(s[i : i+8])) // no copy: the compiler loads the string's bytes
		if w&high != 0 || token68Word(w) != high {
			break // not ASCII, or not token68 (maybe '=' padding): byte by byte from here
		}
	}
	for ; i < len(s) && token68Chars[s[i]]; i++ {
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

const (
	ones = 0x0101010101010101
	high = 0x8080808080808080 // the top bit of every byte
)

// token68Word returns the top bit of each of w's bytes set exactly when
// the byte is a token68 character other than '='. Every byte of w must be
// ASCII (below 0x80): then no term carries from one byte into the next, as
// each adds at most 0x7f to a byte of at most 0x7f.
func token68Word(w uint64) uint64 {
	// w+(0x80-lo) has its top bit set iff w >= lo, w+(0x7f-hi) iff w > hi,
	// and (w^c)+0x7f iff w != c.
	f := w | 0x20*ones                                         // letters folded to lower case
	letter := (f + (0x80-'a')*ones) &^ (f + (0x7f-'z')*ones)   // ALPHA
	digitEtc := (w + (0x80-'-')*ones) &^ (w + (0x7f-'9')*ones) // "-" / "." / "/" / DIGIT
	plus := ^((w ^ '+'*ones) + 0x7f*ones)                      // "+"
	underscore := ^((w ^ '_'*ones) + 0x7f*ones)                // "_"
	tilde := ^((w ^ '~'*ones) + 0x7f*ones)                     // "~"
	return (letter | digitEtc | plus | underscore | tilde) & high
}

// token68Chars is the token68 character set, without '='.
var token68Chars = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/") {
		t[c] = true
	}
	return t
}()
