package authz

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/mcpauth-go/mcpauth/internal/jsonread"
)

// This file converts JSON arguments and token claims to Cedar values.

// errUnrepresentable marks a request argument that has no faithful Cedar
// value (a number that is neither a 64-bit integer nor an exact decimal with
// at most four fractional digits, or a null inside an array). Such requests
// are denied rather than evaluated without the value: leaving it out would
// let `context has arg_x && …` forbids be skipped for exactly the values an
// attacker can pick.
var errUnrepresentable = errors.New("authz: argument has no exact Cedar value")

// numberValue converts a JSON number literal: an integer literal (no fraction,
// no exponent) that fits in 64 bits is a Long, and so is any other literal
// with an integral value in decimal's range (1.0, 1e2); any other literal
// whose value is exact with at most four fractional digits and fits Cedar's
// range is a decimal; anything else is unrepresentable.
func numberValue(lit string) (cedar.Value, bool) {
	if !strings.ContainsAny(lit, ".eE") {
		n, err := strconv.ParseInt(lit, 10, 64)
		if err != nil || !floatExact(n) {
			return nil, false
		}
		return cedar.Long(n), true
	}
	scaled, ok := decimalScaled(lit)
	if !ok || !decimalFloatExact(lit, scaled) {
		return nil, false
	}
	if scaled%10000 == 0 {
		// An integral value is a Long however it is spelt (1.0, 1e0, 10e-1):
		// a handler decoding the argument sees the number 1 either way, so a
		// policy testing `== 1` must see it too.
		return cedar.Long(scaled / 10000), true
	}
	d, err := cedar.NewDecimal(scaled, -4)
	if err != nil {
		return nil, false
	}
	return d, true
}

// numberRepresentable reports whether numberValue would accept lit, without
// allocating.
func numberRepresentable(lit string) bool {
	if !strings.ContainsAny(lit, ".eE") {
		n, err := strconv.ParseInt(lit, 10, 64)
		return err == nil && floatExact(n)
	}
	scaled, ok := decimalScaled(lit)
	return ok && decimalFloatExact(lit, scaled)
}

// floatExact reports whether a float64 holds n exactly. Every JavaScript
// MCP SDK, and Go code decoding into any, reads a JSON number as a float64:
// 9007199254740993 reaches such a handler as 9007199254740992, so a policy
// deciding on the exact Long could forbid the value the handler does not
// see. Every integer up to 2^53 in magnitude passes, and larger ones only
// when a float64 holds them (1e18 does, 2^53+1 does not).
func floatExact(n int64) bool {
	const limit = 1 << 53
	if n >= -limit && n <= limit {
		return true
	}
	f := float64(n)
	// float64(n) rounds to at most 2^63, which int64 cannot hold.
	return f < 1<<63 && int64(f) == n
}

// decimalFloatExact reports whether the float64 nearest to lit has the
// value scaled/10^4, that is whether a handler that reads lit as a float64
// (and prints it back) sees the same number as the policy
// (922337203685477.5807 has no float64 and reads as …477.6).
func decimalFloatExact(lit string, scaled int64) bool {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return false
	}
	var buf [32]byte
	back, ok := decimalScaled(string(strconv.AppendFloat(buf[:0], f, 'e', -1, 64)))
	return ok && back == scaled
}

// decimalScaled returns the value of the JSON number literal lit multiplied by
// 10^4, when that product is an integer that fits in an int64.
func decimalScaled(lit string) (int64, bool) {
	neg := false
	if lit[0] == '-' {
		neg = true
		lit = lit[1:]
	}
	mant, exp := lit, 0
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		e, err := strconv.Atoi(lit[i+1:])
		if err != nil || e > 1000 || e < -1000 {
			return 0, false
		}
		mant, exp = lit[:i], e
	}
	var digits string
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		digits = mant[:i] + mant[i+1:]
		exp -= len(mant) - i - 1
	} else {
		digits = mant
	}
	digits = strings.TrimLeft(digits, "0")
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	if digits == "" {
		return 0, true
	}
	shift := exp + 4 // value*10^4 = digits * 10^shift
	if shift < 0 || len(digits)+shift > 19 {
		return 0, false
	}
	s := digits + strings.Repeat("0", shift)
	if neg {
		s = "-" + s
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// jsonToCedar converts a parsed JSON value: strings, booleans, numbers (see
// numberValue), arrays as sets and objects as records. Members whose value is
// null are left out of records (a JSON null member decodes like an absent
// one in Go); a null anywhere else, or an unrepresentable number anywhere, is
// an error.
func jsonToCedar(v *jsonread.Value) (cedar.Value, error) {
	switch v.Kind {
	case jsonread.String:
		return cedar.String(v.Text), nil
	case jsonread.True:
		return cedar.True, nil
	case jsonread.False:
		return cedar.False, nil
	case jsonread.Number:
		if cv, ok := numberValue(v.Text); ok {
			return cv, nil
		}
		return nil, errUnrepresentable
	case jsonread.Array:
		vals := make([]cedar.Value, 0, len(v.Kids))
		for i := range v.Kids {
			if v.Kids[i].Val.Kind == jsonread.Null {
				return nil, errUnrepresentable
			}
			cv, err := jsonToCedar(&v.Kids[i].Val)
			if err != nil {
				return nil, err
			}
			vals = append(vals, cv)
		}
		return cedar.NewSet(vals...), nil
	case jsonread.Object:
		m := make(cedar.RecordMap, len(v.Kids))
		for i := range v.Kids {
			if v.Kids[i].Val.Kind == jsonread.Null {
				continue
			}
			cv, err := jsonToCedar(&v.Kids[i].Val)
			if err != nil {
				return nil, err
			}
			m[cedar.String(v.Kids[i].Key)] = cv
		}
		return cedar.NewRecord(m), nil
	}
	return nil, errUnrepresentable
}

// claimValue converts a token claim as decoded by authn (encoding/json value
// types, or json.Number) to a Cedar value. Claims come from the verified
// token, not from the caller, so a claim without an exact Cedar value is left
// out (reported as ok == false) instead of failing the request; policies that
// depend on it then error, which denies.
func claimValue(v any, depth int) (cedar.Value, bool) {
	if depth > jsonread.MaxDepth {
		return nil, false
	}
	switch x := v.(type) {
	case string:
		return cedar.String(x), true
	case bool:
		return cedar.Boolean(x), true
	case json.Number:
		return numberValue(string(x))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, false
		}
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return cedar.Long(int64(x)), true
		}
		return numberValue(strconv.FormatFloat(x, 'f', -1, 64))
	case int:
		return cedar.Long(x), true
	case int64:
		return cedar.Long(x), true
	case []string:
		vals := make([]cedar.Value, len(x))
		for i, s := range x {
			vals[i] = cedar.String(s)
		}
		return cedar.NewSet(vals...), true
	case []any:
		vals := make([]cedar.Value, 0, len(x))
		for _, e := range x {
			cv, ok := claimValue(e, depth+1)
			if !ok {
				return nil, false
			}
			vals = append(vals, cv)
		}
		return cedar.NewSet(vals...), true
	case map[string]any:
		m := make(cedar.RecordMap, len(x))
		for k, e := range x {
			if e == nil {
				continue
			}
			cv, ok := claimValue(e, depth+1)
			if !ok {
				return nil, false
			}
			m[cedar.String(k)] = cv
		}
		return cedar.NewRecord(m), true
	}
	return nil, false
}
