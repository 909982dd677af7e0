package authn

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

// checkDecodeSegment asserts that decodeSegment agrees with encoding/base64's
// strict unpadded base64url decoder on seg, except that it also refuses
// the line breaks encoding/base64 skips.
func checkDecodeSegment(t *testing.T, seg string) {
	t.Helper()
	got, err := decodeSegment(nil, seg)
	want, werr := base64.RawURLEncoding.Strict().DecodeString(seg)
	if strings.ContainsAny(seg, "\r\n") {
		werr = base64.CorruptInputError(0) // refused on purpose: one token, one encoding
	}
	if (err == nil) != (werr == nil) {
		t.Fatalf("decodeSegment(%q): error %v, encoding/base64 %v", seg, err, werr)
	}
	if err == nil && !bytes.Equal(got, want) {
		t.Fatalf("decodeSegment(%q) = %x, want %x", seg, got, want)
	}
	// The same into a buffer that holds it.
	var buf [64]byte
	if got2, err := decodeSegment(buf[:0], seg); err == nil && !bytes.Equal(got2, want) {
		t.Fatalf("decodeSegment(%q) into a buffer = %x, want %x", seg, got2, want)
	}
}

// TestDecodeSegment compares decodeSegment with encoding/base64 on every
// string of up to three characters over the alphabet and its neighbours
// (padding, the standard alphabet's + and /, line breaks, non-ASCII), and
// on random strings around the 8-character steps of its fast loop, valid
// and with one bad or non-canonical character.
func TestDecodeSegment(t *testing.T) {
	t.Parallel()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	chars := alphabet + "=+/\n\r .\x00\xff"
	var b []byte
	var all func(n int)
	all = func(n int) {
		checkDecodeSegment(t, string(b))
		if n == 0 {
			return
		}
		for i := range len(chars) {
			b = append(b, chars[i])
			all(n - 1)
			b = b[:len(b)-1]
		}
	}
	all(3)

	r := rand.New(rand.NewPCG(1, 2))
	for n := range 80 {
		for range 200 {
			b = b[:0]
			for range n {
				b = append(b, alphabet[r.IntN(64)])
			}
			checkDecodeSegment(t, string(b)) // valid, or non-canonical in its last character
			if n > 0 {
				b[r.IntN(n)] = chars[64+r.IntN(len(chars)-64)]
				checkDecodeSegment(t, string(b))
			}
		}
	}
	// Every encoding of random bytes decodes back.
	for n := range 100 {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		got, err := decodeSegment(nil, base64.RawURLEncoding.EncodeToString(src))
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("round trip of %d bytes: %x, %v", n, got, err)
		}
	}
}

// FuzzDecodeSegment holds decodeSegment to encoding/base64's strict
// unpadded base64url on any input (padding, non-canonical trailing bits,
// lengths ≡ 1 mod 4, bytes ≥ 0x80, line breaks), decoding into nothing and
// into a buffer.
func FuzzDecodeSegment(f *testing.F) {
	for _, s := range []string{"", "A", "AA", "AB", "AAA", "AAB", "AAAA", "AA==", "QUJD\n", "QUJDREVGR0g", "QUJDREVGR0hJ", "-_-_-_-_", "\xff\xfe", "QUJDREVGR0hJSktM="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seg string) {
		checkDecodeSegment(t, seg)
	})
}
