package httpauth

import (
	"strings"
	"testing"
)

func TestIsToken68(t *testing.T) {
	for s, want := range map[string]bool{
		"abc": true, "a-b.c_d~e+f/g": true, "YWJj==": true, "eyJ.x.y": true,
		"": false, "=": false, "a=b": false, "a b": false, "a,b": false, "a\"b": false, "é": false, "a:b": false,
		"abcdefgh": true, "abcdefghij==": true, "abcdefgh=": true, "abcdefg=h": false, "abcdefghijklmnop=q": false,
	} {
		if got := IsToken68(s); got != want {
			t.Errorf("IsToken68(%q) = %v, want %v", s, got, want)
		}
	}
}

// isToken68Bytewise is the definition, one byte at a time (the check
// IsToken68 replaced): RFC 6750 b64token / RFC 9110 token68,
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68Bytewise(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			continue
		}
		break
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

// TestIsToken68Definition puts every byte value at every position of the
// eight-byte words and of the tail, between valid characters and before
// padding, and compares with the byte-by-byte definition.
func TestIsToken68Definition(t *testing.T) {
	t.Parallel()
	const valid = "aZ09-._~+/QqzA"
	for c := range 256 {
		for n := range 20 {
			for _, tail := range []string{"", "=", "==", "x", "x=", "=x"} {
				pre := strings.Repeat(valid, 2)[:n]
				for _, s := range []string{pre + string(byte(c)) + tail, pre + string(byte(c)) + "abcdefghijklmnop" + tail} {
					if got, want := IsToken68(s), isToken68Bytewise(s); got != want {
						t.Fatalf("IsToken68(%q) = %v, definition %v", s, got, want)
					}
				}
			}
		}
	}
	// Each word of a long token: one bad byte anywhere is found.
	tok := strings.Repeat("eyJhbGciOiJSUzI1NiJ9", 60)
	for i := range len(tok) {
		for _, c := range []byte{'=', ',', ' ', 0, 0x80, 0xff, '@', '[', '`', '{', '\x7f', '*'} {
			s := tok[:i] + string(c) + tok[i+1:]
			if got, want := IsToken68(s), isToken68Bytewise(s); got != want {
				t.Fatalf("byte %q at %d: IsToken68 = %v, definition %v", c, i, got, want)
			}
		}
	}
}

func FuzzIsToken68(f *testing.F) {
	for _, s := range []string{"", "abc", "YWJj==", "abcdefgh=", "eyJ.x.y", "a b", "é", "abcdefghijklmnop~+/=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := IsToken68(s), isToken68Bytewise(s); got != want {
			t.Fatalf("IsToken68(%q) = %v, definition %v", s, got, want)
		}
	})
}

// BenchmarkIsToken68 checks a 1 KB JWT-shaped token, as authn does for
// every request, beside the byte-by-byte definition.
func BenchmarkIsToken68(b *testing.B) {
	tok := "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0." + strings.Repeat("eyJzdWIiOiJ1c2VyLTEyMzQifQ", 24) + "." + strings.Repeat("c2lnbmF0dXJl", 29)
	for _, c := range []struct {
		name string
		f    func(string) bool
	}{{"IsToken68", IsToken68}, {"bytewise", isToken68Bytewise}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(tok)))
			for b.Loop() {
				if !c.f(tok) {
					b.Fatal("not token68")
				}
			}
		})
	}
}
