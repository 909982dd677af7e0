package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"unsafe"
)

// MultiVerifier verifies tokens from several authorization servers, for a
// resource whose Protected Resource Metadata (RFC 9728) lists more than one
// in authorization_servers. It routes each compact JWS to the verifier of
// the issuer named by its iss claim, and every other token to an optional
// verifier for opaque tokens (typically a [Verifier] with introspection).
//
// Routing reads iss without verifying anything: it only picks which
// verifier runs, and that verifier still does the full verification,
// including its exact iss check, so a token that lies about its issuer is
// checked against the keys of the issuer it names and fails there. A token
// naming an issuer that is not configured is rejected without contacting
// anyone. It is safe for concurrent use.
type MultiVerifier struct {
	byIssuer map[string]TokenVerifier
	issuers  []string // the keys of byIssuer, sorted
	opaque   TokenVerifier
}

// NewMultiVerifier returns a MultiVerifier routing JWS tokens by iss to
// verifiers (issuer → verifier; the issuer must be the exact iss value, as in
// [Config.Issuer]) and other tokens to opaque. opaque may be nil, in which
// case tokens that are not JWS are invalid. verifiers may be empty only if
// opaque is set; a nil verifier or an empty issuer is an error. The map is
// copied.
func NewMultiVerifier(verifiers map[string]TokenVerifier, opaque TokenVerifier) (*MultiVerifier, error) {
	if len(verifiers) == 0 && opaque == nil {
		return nil, errors.New("authn: NewMultiVerifier needs at least one verifier")
	}
	m := &MultiVerifier{byIssuer: make(map[string]TokenVerifier, len(verifiers)), opaque: opaque}
	for iss, v := range verifiers {
		if iss == "" {
			return nil, errors.New("authn: NewMultiVerifier: empty issuer")
		}
		if v == nil {
			return nil, errors.New("authn: NewMultiVerifier: nil verifier for issuer " + iss)
		}
		m.byIssuer[iss] = v
		m.issuers = append(m.issuers, iss)
	}
	slices.Sort(m.issuers)
	return m, nil
}

// Issuers returns the issuers whose tokens m accepts, sorted: those it
// routes JWTs to, and the opaque verifier's when it reports its own (as a
// [Verifier] does with Issuer). middleware.Protect compares them with the
// Protected Resource Metadata's authorization_servers.
func (m *MultiVerifier) Issuers() []string {
	out := slices.Clone(m.issuers)
	if iv, ok := m.opaque.(interface{ Issuer() string }); ok && !slices.Contains(out, iv.Issuer()) {
		out = append(out, iv.Issuer())
		slices.Sort(out)
	}
	return out
}

// Ready calls Ready on each verifier m routes to that has one (as a
// [Verifier] does), and returns their failures joined: call it at start so
// that a mistyped issuer fails the deployment.
func (m *MultiVerifier) Ready(ctx context.Context) error {
	var errs []error
	for _, v := range m.Verifiers() {
		if r, ok := v.(interface{ Ready(context.Context) error }); ok {
			errs = append(errs, r.Ready(ctx))
		}
	}
	return errors.Join(errs...)
}

// Verifiers returns the verifiers m routes to, in the order of Issuers,
// followed by the opaque verifier if there is one.
func (m *MultiVerifier) Verifiers() []TokenVerifier {
	out := make([]TokenVerifier, 0, len(m.issuers)+1)
	for _, iss := range m.issuers {
		out = append(out, m.byIssuer[iss])
	}
	if m.opaque != nil {
		out = append(out, m.opaque)
	}
	return out
}

// Verify routes token to the verifier of its issuer (or to the opaque
// verifier) and returns that verifier's result. Errors match ErrNoToken,
// ErrInvalidToken (a malformed or oversized token, a JWS without iss or
// naming an unknown issuer) or whatever the chosen verifier returns.
func (m *MultiVerifier) Verify(ctx context.Context, token string) (*TokenInfo, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if len(token) > defaultMaxTokenSize { // the Verifier default, before any decoding
		return nil, invalid("token exceeds the size limit")
	}
	header, rest, ok := strings.Cut(token, ".")
	if !looksLikeJOSE(header) {
		return m.verifyOpaque(ctx, token)
	}
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		// A JOSE header without the other segments is a truncated JWS,
		// never an opaque token to introspect (see Verifier.Verify).
		if isJOSEHeader(header) {
			return nil, invalid("token is a JWS without all three segments")
		}
		return m.verifyOpaque(ctx, token)
	}
	if strings.Contains(sig, ".") {
		return nil, invalid("token is not a compact JWS (JWE and other serializations are not accepted)")
	}
	v, err := m.route(payload)
	if err != nil {
		return nil, err
	}
	return v.Verify(ctx, token)
}

func (m *MultiVerifier) verifyOpaque(ctx context.Context, token string) (*TokenInfo, error) {
	if m.opaque == nil {
		return nil, invalid("token is not a JWS and no opaque-token verifier is configured")
	}
	return m.opaque.Verify(ctx, token)
}

// route decodes a JWS payload segment just enough to read iss, and
// looks it up in byIssuer. Typical payloads are decoded into a stack buffer
// and scanned without allocating (see scanIssuer); anything unusual falls
// back to encoding/json with the same result.
func (m *MultiVerifier) route(payload string) (TokenVerifier, error) {
	src := unsafe.Slice(unsafe.StringData(payload), len(payload)) // read only
	var stack [1024]byte
	var dst []byte
	if n := base64.RawURLEncoding.DecodedLen(len(src)); n <= len(stack) {
		dst = stack[:n]
	} else {
		dst = make([]byte, n)
	}
	n, err := base64.RawURLEncoding.Decode(dst, src)
	if err != nil {
		return nil, invalid("JWS payload is not base64url")
	}
	b := dst[:n]
	iss, ok := scanIssuer(b)
	if !ok {
		// A copy, so that b (possibly on the stack) does not escape.
		s, err := decodeIssuer(append([]byte(nil), b...))
		if err != nil {
			return nil, err
		}
		iss = []byte(s)
	}
	if len(iss) == 0 {
		return nil, invalid("JWS payload has no iss")
	}
	v, found := m.byIssuer[string(iss)] // no allocation for the conversion
	if !found {
		// The unverified iss is attacker-controlled: it reaches the error
		// (and so the log) only truncated and escaped.
		return nil, invalid("iss " + quoteShort(string(iss)) + " is not among the trusted issuers " + quoteConfigured(m.issuers))
	}
	return v, nil
}

// decodeIssuer reads the top-level "iss" member (exact name; the last one
// wins, as in encoding/json) with encoding/json. It returns "" when there
// is none.
func decodeIssuer(b []byte) (string, error) {
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil || claims == nil {
		return "", invalid("JWS payload is not a JSON object")
	}
	v, present := claims["iss"]
	if !present {
		return "", nil
	}
	iss, ok := v.(string)
	if !ok {
		return "", invalid("JWS payload iss is not a string")
	}
	return iss, nil
}

// scanIssuer is the allocation-free fast path of decodeIssuer for the
// common shape of a JWT payload: a JSON object whose member names have no
// escapes and whose iss value is a plain ASCII string without escapes. It
// returns ok=false whenever it is unsure (escapes, non-ASCII, a non-string
// iss, anything malformed), and the caller then uses decodeIssuer. When it
// returns ok=true on valid JSON, the answer equals decodeIssuer's (this is
// fuzzed). A missing iss is (nil, true).
func scanIssuer(b []byte) (iss []byte, ok bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil, skipWS(b, i+1) == len(b)
	}
	for {
		// Member name.
		if i >= len(b) || b[i] != '"' {
			return nil, false
		}
		start := i + 1
		end, plain := scanString(b, start)
		if end < 0 || !plain {
			return nil, false
		}
		name := b[start:end]
		i = skipWS(b, end+1)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i = skipWS(b, i+1)
		if string(name) == "iss" {
			if i >= len(b) || b[i] != '"' {
				return nil, false // not a string: let decodeIssuer say so
			}
			vend, vplain := scanString(b, i+1)
			if vend < 0 || !vplain {
				return nil, false
			}
			iss = b[i+1 : vend]
			i = vend + 1
		} else if i = skipValue(b, i, 0); i < 0 {
			return nil, false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			if skipWS(b, i+1) != len(b) {
				return nil, false
			}
			return iss, true
		default:
			return nil, false
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString finds the closing quote of the JSON string starting after the
// opening quote at b[start-1]. plain reports that the string has no escape,
// control or non-ASCII byte, so its bytes are its value. end is -1 if the
// string is unterminated.
func scanString(b []byte, start int) (end int, plain bool) {
	plain = true
	for i := start; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i, plain
		case c == '\\':
			plain = false
			i++ // skip the escaped byte (enough to find the end)
		case c < 0x20 || c >= 0x80:
			plain = false
		}
	}
	return -1, false
}

// skipValue skips one JSON value starting at b[i] and returns the index
// after it, or -1. Nesting is bounded; literals and numbers are checked
// only loosely (the fast path's answer only has to match on valid JSON).
func skipValue(b []byte, i, depth int) int {
	if i >= len(b) || depth > 64 {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := scanString(b, i+1)
		if end < 0 {
			return -1
		}
		return end + 1
	case '{', '[':
		closer := byte('}')
		if b[i] == '[' {
			closer = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1
		}
		for {
			if closer == '}' {
				if i >= len(b) || b[i] != '"' {
					return -1
				}
				end, _ := scanString(b, i+1)
				if end < 0 {
					return -1
				}
				i = skipWS(b, end+1)
				if i >= len(b) || b[i] != ':' {
					return -1
				}
				i = skipWS(b, i+1)
			}
			if i = skipValue(b, i, depth+1); i < 0 {
				return -1
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return -1
			}
			if b[i] == closer {
				return i + 1
			}
			if b[i] != ',' {
				return -1
			}
			i = skipWS(b, i+1)
		}
	default:
		// Number or literal: run to the next delimiter.
		start := i
		for i < len(b) && strings.IndexByte(",}] \t\n\r", b[i]) < 0 {
			i++
		}
		if i == start {
			return -1
		}
		return i
	}
}
