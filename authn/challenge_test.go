package authn

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/internal/httpauth"
)

// edgeParam is one auth-param of a parsed challenge.
type edgeParam struct{ name, value string }

// edgeParseChallenge parses a single RFC 9110 §11.6.1 challenge whose
// parameters are all quoted-strings: scheme [ 1*SP auth-param *( OWS ","
// OWS auth-param ) ]. It is deliberately independent of challenge.go and
// strict: anything else is an error.
func edgeParseChallenge(s string) (scheme string, params []edgeParam, err error) {
	i := 0
	for i < len(s) && isTChar(s[i]) {
		i++
	}
	if i == 0 {
		return "", nil, errors.New("no scheme")
	}
	scheme, s = s[:i], s[i:]
	if s == "" {
		return scheme, nil, nil
	}
	if s[0] != ' ' {
		return "", nil, fmt.Errorf("junk after scheme: %q", s)
	}
	s = strings.TrimLeft(s, " ")
	for {
		j := 0
		for j < len(s) && isTChar(s[j]) {
			j++
		}
		if j == 0 {
			return "", nil, fmt.Errorf("no parameter name at %q", s)
		}
		name := s[:j]
		s = s[j:]
		if !strings.HasPrefix(s, `="`) {
			return "", nil, fmt.Errorf("parameter %s is not a quoted-string", name)
		}
		s = s[2:]
		var v strings.Builder
		closed := false
		for k := 0; k < len(s); k++ {
			c := s[k]
			switch {
			case c == '\\':
				if k+1 == len(s) {
					return "", nil, errors.New("dangling quoted-pair")
				}
				k++
				v.WriteByte(s[k])
			case c == '"':
				s = s[k+1:]
				closed = true
			case c == '\t' || c == ' ' || c >= 0x21 && c != 0x7f:
				v.WriteByte(c)
			default:
				return "", nil, fmt.Errorf("control byte %#x in quoted-string", c)
			}
			if closed {
				break
			}
		}
		if !closed {
			return "", nil, errors.New("unterminated quoted-string")
		}
		for _, p := range params {
			if strings.EqualFold(p.name, name) {
				return "", nil, fmt.Errorf("repeated parameter %s", name)
			}
		}
		params = append(params, edgeParam{name, v.String()})
		if s == "" {
			return scheme, params, nil
		}
		if !strings.HasPrefix(s, ", ") {
			return "", nil, fmt.Errorf("bad separator at %q", s)
		}
		s = s[2:]
	}
}

// edgeChallengeParams parses s and returns its parameters as a map, failing
// the test on any syntax error or a scheme other than Bearer.
func edgeChallengeParams(t testing.TB, s string) map[string]string {
	t.Helper()
	scheme, params, err := edgeParseChallenge(s)
	if err != nil {
		t.Fatalf("challenge %q does not parse: %v", s, err)
	}
	if scheme != "Bearer" {
		t.Fatalf("challenge %q: scheme %q, want Bearer", s, scheme)
	}
	m := make(map[string]string, len(params))
	for _, p := range params {
		m[p.name] = p.value
	}
	return m
}

func TestChallengeString(t *testing.T) {
	t.Parallel()
	const rm = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	tests := []struct {
		name string
		c    Challenge
		want string
	}{
		{"empty", Challenge{}, "Bearer"},
		{"resource metadata only", Challenge{ResourceMetadata: rm}, `Bearer resource_metadata="` + rm + `"`},
		{"no token with scopes", Challenge{Scopes: []string{"files:read", "files:write"}, ResourceMetadata: rm},
			`Bearer scope="files:read files:write", resource_metadata="` + rm + `"`},
		{"all, fixed order", Challenge{Realm: "mcp", Error: "insufficient_scope", ErrorDescription: "Need more.",
			Scopes: []string{"a"}, ResourceMetadata: rm},
			`Bearer realm="mcp", error="insufficient_scope", error_description="Need more.", scope="a", resource_metadata="` + rm + `"`},
		{"CRLF injection removed", Challenge{Error: "invalid_token\r\nSet-Cookie: x=1", ResourceMetadata: rm},
			`Bearer error="invalid_tokenSet-Cookie: x=1", resource_metadata="` + rm + `"`},
		{"quote breakout removed", Challenge{ErrorDescription: `a", error="none`, Error: "invalid_token"},
			`Bearer error="invalid_token", error_description="a, error=none"`},
		{"backslash and non-ASCII removed", Challenge{Realm: `r\é"`}, `Bearer realm="r"`},
		{"scope tokens lose spaces and controls, empties dropped", Challenge{Scopes: []string{"", "a b", "c\x00", `"`, "d"}},
			`Bearer scope="ab c d"`},
		{"value that sanitizes to empty is omitted", Challenge{Error: "\r\n", ResourceMetadata: rm},
			`Bearer resource_metadata="` + rm + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.c.String()
			if got != tt.want {
				t.Errorf("String() = %q\nwant       %q", got, tt.want)
			}
			edgeChallengeParams(t, got) // always parses back
		})
	}
}

func TestChallengeSanitizeDoesNotAllocateWhenClean(t *testing.T) {
	s := "https://mcp.example.com/x"
	if n := testing.AllocsPerRun(100, func() { _ = sanitizeChallenge(s, true) }); n != 0 {
		t.Errorf("sanitize of a clean value allocates %v times", n)
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers []string
		query   string
		want    string
		wantErr error
	}{
		{"bearer", []string{"Bearer abc.def-ghi_~+/=="}, "", "abc.def-ghi_~+/==", nil},
		{"scheme case-insensitive", []string{"bEaReR tok"}, "", "tok", nil},
		{"lower case", []string{"bearer tok"}, "", "tok", nil},
		{"several spaces", []string{"Bearer    tok"}, "", "tok", nil},
		{"trailing space", []string{"Bearer tok "}, "", "tok", nil},
		{"no header", nil, "", "", ErrNoToken},
		{"empty header", []string{""}, "", "", ErrNoToken},
		{"other scheme", []string{"Basic dXNlcjpwYXNz"}, "", "", ErrNoToken},
		{"scheme prefix of another", []string{"Bearerx tok"}, "", "", ErrNoToken},
		{"bearer without token", []string{"Bearer"}, "", "", ErrNoToken},
		{"bearer with only spaces", []string{"Bearer   "}, "", "", ErrNoToken},
		{"two header lines", []string{"Bearer a", "Bearer b"}, "", "", ErrInvalidRequest},
		{"two header lines, other scheme", []string{"Basic x", "Bearer b"}, "", "", ErrInvalidRequest},
		{"comma-combined bearer", []string{"Bearer a, Bearer b"}, "", "", ErrInvalidRequest},
		{"comma-combined after other scheme", []string{"Basic x, bearer b"}, "", "", ErrInvalidRequest},
		{"token with space", []string{"Bearer a b"}, "", "", ErrInvalidToken},
		{"token with comma", []string{"Bearer a,b"}, "", "", ErrInvalidRequest},
		{"auth-param instead of token68", []string{`Bearer token="x"`}, "", "", ErrInvalidToken},
		{"padding in the middle", []string{"Bearer a=b"}, "", "", ErrInvalidToken},
		{"only padding", []string{"Bearer ==="}, "", "", ErrInvalidToken},
		{"tab separator", []string{"Bearer\ttok"}, "", "", ErrInvalidToken},
		{"non-ASCII", []string{"Bearer tök"}, "", "", ErrInvalidToken},
		{"question mark", []string{"Bearer abc?def"}, "", "", ErrInvalidToken},
		{"asterisk", []string{"Bearer abc*def"}, "", "", ErrInvalidToken},
		{"NUL", []string{"Bearer abc\x00def"}, "", "", ErrInvalidToken},
		{"percent", []string{"Bearer abc%2Edef"}, "", "", ErrInvalidToken},
		{"JWS JSON serialization", []string{`Bearer {"payload":"eyJzdWIiOiJ4In0","signatures":[{"protected":"eyJhbGciOiJFUzI1NiJ9","signature":"c2ln"}]}`}, "", "", ErrInvalidToken},
		{"JWS JSON serialization with spaces", []string{`Bearer {"payload": "eyJ9", "signatures": [{"protected": "eyJ9", "signature": "c2ln"}]}`}, "", "", ErrInvalidToken},
		{"bare JSON", []string{`Bearer {"sub":"alice","aud":"x"}`}, "", "", ErrInvalidToken},
		{"bearer then comma-combined credential", []string{"Bearer, Basic x"}, "", "", ErrInvalidRequest},
		{"malformed token then second credential", []string{"Bearer a?b, Basic x"}, "", "", ErrInvalidRequest},
		{"query token alone", nil, "access_token=abc", "", ErrInvalidRequest},
		{"query token with header", []string{"Bearer abc"}, "x=1&access_token=abc", "", ErrInvalidRequest},
		{"empty query token", []string{"Bearer abc"}, "access_token", "", ErrInvalidRequest},
		{"percent-encoded query name", []string{"Bearer abc"}, "access%5Ftoken=abc", "", ErrInvalidRequest},
		{"semicolon-separated query name", []string{"Bearer abc"}, "a=1;access_token=abc", "", ErrInvalidRequest},
		{"other query parameters are fine", []string{"Bearer abc"}, "token=1&access_token_x=2", "abc", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "http://mcp.example/mcp", nil)
			r.URL.RawQuery = tt.query
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			got, err := BearerToken(r)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("BearerToken() error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("BearerToken() = %q, want %q", got, tt.want)
			}
			if err != nil && got != "" {
				t.Errorf("BearerToken() returned a token with an error")
			}
		})
	}
}

func TestIsToken68(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"a", "A-._~+/9", "abc==", "x="} {
		if !httpauth.IsToken68(s) {
			t.Errorf("httpauth.IsToken68(%q) = false", s)
		}
	}
	for _, s := range []string{"", "=", "a b", "a=b", "a\"", "a,", "a;", "ä"} {
		if httpauth.IsToken68(s) {
			t.Errorf("httpauth.IsToken68(%q) = true", s)
		}
	}
}

// A Challenge renders the WWW-Authenticate value of an RFC 6750 error
// response; values that could break the header are filtered out.
func ExampleChallenge_String() {
	c := Challenge{
		Error:            "insufficient_scope",
		ErrorDescription: "The access token does not grant every scope this request requires.",
		Scopes:           []string{"files:read", "files:write"},
		ResourceMetadata: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
	}
	fmt.Println(c.String())
	fmt.Println(Challenge{Realm: "evil\"\r\nX-Injected: 1"}.String())
	// Output:
	// Bearer error="insufficient_scope", error_description="The access token does not grant every scope this request requires.", scope="files:read files:write", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	// Bearer realm="evilX-Injected: 1"
}

// BearerToken reads the token only from a single Authorization header.
func ExampleBearerToken() {
	r := httptest.NewRequest("GET", "/mcp", nil)
	r.Header.Set("Authorization", "bearer mF_9.B5f-4.1JqM")
	fmt.Println(BearerToken(r))

	r = httptest.NewRequest("GET", "/mcp?access_token=mF_9.B5f-4.1JqM", nil)
	_, err := BearerToken(r)
	fmt.Println(errors.Is(err, ErrInvalidRequest))
	// Output:
	// mF_9.B5f-4.1JqM <nil>
	// true
}
