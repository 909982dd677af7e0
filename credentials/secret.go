package credentials

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
)

// redacted is what every printing, logging and marshalling path of a
// [Secret] writes instead of the value.
const redacted = "[REDACTED]"

// Secret holds a credential (API key, bearer token, password) that must not
// leak into logs, error strings, JSON documents or debug output.
//
// String, GoString, Format (every verb and flag: %v %+v %#v %s %q %x …),
// MarshalJSON, MarshalText and LogValue all write "[REDACTED]". The value
// is kept behind a pointer, so even when a Secret sits in an unexported
// struct field — where fmt prints fields by reflection without calling their
// methods — only an address is printed, never the value. The value is read
// only through [Secret.Reveal], whose name makes each use stand out in
// review.
//
// Secrets are not comparable with ==; use [Secret.Equal], which compares in
// constant time. The zero Secret is empty. A Secret is immutable and safe
// for concurrent use. Go strings cannot be wiped, so a Secret does not
// zero its memory; it guards against accidental disclosure, not against
// an attacker who can read the process memory.
//
// There is deliberately no UnmarshalJSON or UnmarshalText: decoding a
// configuration file into a Secret would make a redacted document
// round-trip into a secret whose value is "[REDACTED]". Load secrets
// through a [Source] instead.
type Secret struct {
	_ [0]func() // makes Secret incomparable: == would compare pointers, not values
	p *string
}

// NewSecret returns a Secret holding v.
func NewSecret(v string) Secret { return Secret{p: &v} }

// Reveal returns the secret value. Call it only where the value is written
// to the wire (a header, a child process environment); never pass the result
// to a logger, an error or fmt.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsZero reports whether s is empty (the zero Secret or NewSecret("")).
func (s Secret) IsZero() bool { return s.p == nil || *s.p == "" }

// Equal reports whether s and o hold the same value. The comparison takes
// time that depends on the lengths of the values only, not on their contents.
func (s Secret) Equal(o Secret) bool {
	return subtle.ConstantTimeCompare([]byte(s.Reveal()), []byte(o.Reveal())) == 1
}

// same reports whether s and o share their storage: a cheap identity check
// used to cache values derived from a Secret. Sources that return the same
// Secret until the value changes make derived caches hit.
func (s Secret) same(o Secret) bool { return s.p != nil && s.p == o.p }

// String returns "[REDACTED]".
func (s Secret) String() string { return redacted }

// GoString returns "credentials.Secret([REDACTED])", so %#v does not reveal
// the value either.
func (s Secret) GoString() string { return "credentials.Secret(" + redacted + ")" }

// Format implements [fmt.Formatter]: every verb prints "[REDACTED]" (%#v the
// GoString form, %q the quoted form), honouring width and alignment flags.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'v':
		if f.Flag('#') {
			_, _ = fmt.Fprint(f, s.GoString())
			return
		}
		_, _ = fmt.Fprintf(f, fmt.FormatString(f, 's'), redacted)
	case 'q':
		_, _ = fmt.Fprintf(f, fmt.FormatString(f, 'q'), redacted)
	default:
		// %s, %x, %X, %d, … : never let a verb reach the value; the
		// placeholder is printed as a string so %x cannot hex-dump anything.
		_, _ = fmt.Fprintf(f, fmt.FormatString(f, 's'), redacted)
	}
}

// MarshalJSON returns the JSON string "[REDACTED]".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[REDACTED]"; encoding/xml, map keys in encoding/json
// and other text encoders use it.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements [slog.LogValuer]: slog handlers of every kind log
// "[REDACTED]".
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

var (
	_ fmt.Stringer   = Secret{}
	_ fmt.GoStringer = Secret{}
	_ fmt.Formatter  = Secret{}
	_ slog.LogValuer = Secret{}
)
