package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

// multiRecorder is a fake TokenVerifier that records the tokens it saw.
type multiRecorder struct {
	name string
	err  error
	mu   sync.Mutex
	seen []string
}

func (r *multiRecorder) Verify(_ context.Context, tok string) (*TokenInfo, error) {
	r.mu.Lock()
	r.seen = append(r.seen, tok)
	r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	return &TokenInfo{Issuer: r.name}, nil
}

func (r *multiRecorder) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// multiJWS builds an unsigned compact JWS-shaped token with the given
// payload JSON.
func multiJWS(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256","kid":"k"}`)) + "." + enc([]byte(payload)) + ".c2lnbmF0dXJl"
}

func TestNewMultiVerifierValidates(t *testing.T) {
	t.Parallel()
	v := &multiRecorder{}
	for name, tc := range map[string]struct {
		vs     map[string]TokenVerifier
		opaque TokenVerifier
	}{
		"nothing":        {nil, nil},
		"empty issuer":   {map[string]TokenVerifier{"": v}, nil},
		"nil verifier":   {map[string]TokenVerifier{"https://a": nil}, nil},
		"nil among many": {map[string]TokenVerifier{"https://a": v, "https://b": nil}, v},
	} {
		if _, err := NewMultiVerifier(tc.vs, tc.opaque); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewMultiVerifier(nil, v); err != nil {
		t.Errorf("opaque only: %v", err)
	}
}

func TestMultiVerifierRouting(t *testing.T) {
	t.Parallel()
	const issA, issB = "https://a.example.com", "https://b.example.com/tenant"
	tests := []struct {
		name      string
		token     string
		noOpaque  bool
		wantRoute string // "a", "b", "opaque" or "" for none
		wantErr   error
	}{
		{"issuer a", multiJWS(`{"iss":"` + issA + `","sub":"x"}`), false, "a", nil},
		{"issuer b", multiJWS(`{"sub":"x","iss":"` + issB + `"}`), false, "b", nil},
		{"issuer is matched exactly", multiJWS(`{"iss":"` + issA + `/"}`), false, "", ErrInvalidToken},
		{"unknown issuer", multiJWS(`{"iss":"https://evil.example.com"}`), false, "", ErrInvalidToken},
		{"no iss", multiJWS(`{"sub":"x"}`), false, "", ErrInvalidToken},
		{"empty iss", multiJWS(`{"iss":""}`), false, "", ErrInvalidToken},
		{"null iss", multiJWS(`{"iss":null}`), false, "", ErrInvalidToken},
		{"numeric iss", multiJWS(`{"iss":42}`), false, "", ErrInvalidToken},
		{"payload not JSON", multiJWS(`not json`), false, "", ErrInvalidToken},
		{"payload an array", multiJWS(`["iss"]`), false, "", ErrInvalidToken},
		{"payload not base64url", "eyJhbGciOiJFUzI1NiJ9.***.c2ln", false, "", ErrInvalidToken},
		{"payload padded", "eyJhbGciOiJFUzI1NiJ9." + base64.URLEncoding.EncodeToString([]byte(`{"iss":"`+issA+`"}`)) + ".c2ln", false, "", ErrInvalidToken},
		{"JWE-shaped", "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", false, "", ErrInvalidToken},
		{"JWS without its signature segment", multiJWS(`{"iss":"` + issA + `"}`)[:strings.LastIndexByte(multiJWS(`{"iss":"`+issA+`"}`), '.')], false, "", ErrInvalidToken},
		{"JOSE header alone", "eyJhbGciOiJFUzI1NiJ9", false, "", ErrInvalidToken},
		{"oversized", multiJWS(`{"iss":"` + issA + `","pad":"` + strings.Repeat("x", 16<<10) + `"}`), false, "", ErrInvalidToken},
		{"escaped iss (slow path)", multiJWS(`{"iss":"https:\/\/a.example.com"}`), false, "a", nil},
		{"escaped member name (slow path)", multiJWS(`{"\u0069ss":"` + issB + `"}`), false, "b", nil},
		{"whitespace everywhere", multiJWS(" {\n\t\"sub\" : [1, {\"iss\":\"x\"}] ,\r\"iss\" :\"" + issA + "\" } "), false, "a", nil},
		{"nested iss does not count", multiJWS(`{"act":{"iss":"` + issA + `"}}`), false, "", ErrInvalidToken},
		{"duplicate iss", multiJWS(`{"iss":"https://evil.example.com","iss":"` + issB + `"}`), false, "", ErrInvalidToken},
		{"case-variant iss", multiJWS(`{"ISS":"https://evil.example.com","iss":"` + issB + `"}`), false, "", ErrInvalidToken},
		{"member names are case-sensitive", multiJWS(`{"ISS":"` + issA + `"}`), false, "", ErrInvalidToken},
		{"large payload (heap buffer)", multiJWS(`{"pad":"` + strings.Repeat("y", 4000) + `","iss":"` + issB + `"}`), false, "b", nil},
		{"trailing garbage", multiJWS(`{"iss":"` + issA + `"}x`), false, "", ErrInvalidToken},
		{"opaque", "2YotnFZFEjr1zCsicMWpAA", false, "opaque", nil},
		{"dotted opaque", "tok.abc.def", false, "opaque", nil},
		{"opaque without an opaque verifier", "2YotnFZFEjr1zCsicMWpAA", true, "", ErrInvalidToken},
		{"empty", "", false, "", ErrNoToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b, op := &multiRecorder{name: "a"}, &multiRecorder{name: "b"}, &multiRecorder{name: "opaque"}
			var opaque TokenVerifier = op
			if tt.noOpaque {
				opaque = nil
			}
			m, err := NewMultiVerifier(map[string]TokenVerifier{issA: a, issB: b}, opaque)
			if err != nil {
				t.Fatal(err)
			}
			info, err := m.Verify(context.Background(), tt.token)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if tt.token != "" && strings.Contains(err.Error(), tt.token) {
					t.Errorf("token in error")
				}
				if strings.Contains(err.Error(), "evil") && !strings.Contains(err.Error(), `iss "https://evil.example.com" is not among the trusted issuers ["`+issA+`" "`+issB+`"]`) {
					t.Errorf("error %q does not name the unverified iss quoted beside the trusted ones", err)
				}
			} else if err != nil || info.Issuer != tt.wantRoute {
				t.Fatalf("routed to %v (err %v), want %s", info, err, tt.wantRoute)
			}
			total := a.calls() + b.calls() + op.calls()
			if tt.wantRoute == "" && total != 0 {
				t.Errorf("a verifier was contacted %d times", total)
			}
			if tt.wantRoute != "" && total != 1 {
				t.Errorf("%d verifier calls, want 1", total)
			}
		})
	}
}

func TestMultiVerifierPassesVerifierErrors(t *testing.T) {
	t.Parallel()
	down := &multiRecorder{err: unavailable("jwks down", nil)}
	m, err := NewMultiVerifier(map[string]TokenVerifier{"https://a": down}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(context.Background(), multiJWS(`{"iss":"https://a"}`)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("err = %v", err)
	}
}

// TestMultiVerifierWithIdptest routes real tokens from two fake IdPs, checks
// that a token lying about its issuer is rejected by the verifier it is
// routed to, and that opaque tokens go to introspection.
func TestMultiVerifierWithIdptest(t *testing.T) {
	t.Parallel()
	const resource = "https://mcp.example.com/mcp"
	idpA := idptest.NewServer(t, idptest.Config{Audience: []string{resource}})
	idpB := idptest.NewServer(t, idptest.Config{Audience: []string{resource}, Algorithms: []string{"ES256"}})
	newV := func(idp *idptest.Server, intro bool) *Verifier {
		cfg := Config{Issuer: idp.Issuer(), Audience: []string{resource}, HTTPClient: idp.Client()}
		if intro {
			cfg.Introspection = &IntrospectionConfig{URL: idp.IntrospectionURL()}
		}
		v, err := NewVerifier(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = v.Close() })
		return v
	}
	m, err := NewMultiVerifier(map[string]TokenVerifier{
		idpA.Issuer(): newV(idpA, false),
		idpB.Issuer(): newV(idpB, false),
	}, newV(idpA, true))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, idp := range []*idptest.Server{idpA, idpB} {
		tok := idp.Token(map[string]any{"sub": "alice"})
		info, err := m.Verify(ctx, tok)
		if err != nil {
			t.Fatalf("token from %s: %v", idp.Issuer(), err)
		}
		if info.Issuer != idp.Issuer() || info.Token() != tok {
			t.Errorf("info = %v", info)
		}
	}

	// Minted and signed by B, but claiming A: routed to A, whose keys do
	// not verify it.
	liar := idpB.Token(map[string]any{"iss": idpA.Issuer()})
	if _, err := m.Verify(ctx, liar); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("token lying about its issuer: err = %v", err)
	}

	before := idpA.Requests(idptest.EndpointJWKS) + idpB.Requests(idptest.EndpointJWKS) +
		idpA.Requests(idptest.EndpointDiscovery) + idpB.Requests(idptest.EndpointDiscovery)
	if _, err := m.Verify(ctx, idpA.Token(map[string]any{"iss": "https://unknown.example.com"})); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("unknown issuer: err = %v", err)
	}
	after := idpA.Requests(idptest.EndpointJWKS) + idpB.Requests(idptest.EndpointJWKS) +
		idpA.Requests(idptest.EndpointDiscovery) + idpB.Requests(idptest.EndpointDiscovery)
	if after != before {
		t.Errorf("unknown issuer caused %d IdP requests", after-before)
	}

	opaque := idpA.OpaqueToken(map[string]any{"sub": "bob"})
	info, err := m.Verify(ctx, opaque)
	if err != nil || info.Subject != "bob" {
		t.Fatalf("opaque token: %v, %v", info, err)
	}
	if idpA.Requests(idptest.EndpointIntrospection) != 1 {
		t.Errorf("opaque token not introspected")
	}
}

// A resource whose metadata lists two authorization servers verifies each
// server's tokens with that server's Verifier.
func ExampleNewMultiVerifier() {
	const resource = "https://mcp.example.com/mcp"
	corp := idptest.NewServer(nil, idptest.Config{Audience: []string{resource}})
	defer corp.Close()
	partner := idptest.NewServer(nil, idptest.Config{Audience: []string{resource}})
	defer partner.Close()

	verifiers := map[string]TokenVerifier{}
	for _, idp := range []*idptest.Server{corp, partner} {
		v, err := NewVerifier(Config{Issuer: idp.Issuer(), Audience: []string{resource}, HTTPClient: idp.Client()})
		if err != nil {
			panic(err)
		}
		defer v.Close()
		verifiers[idp.Issuer()] = v
	}
	mv, err := NewMultiVerifier(verifiers, nil)
	if err != nil {
		panic(err)
	}

	info, err := mv.Verify(context.Background(), partner.Token(map[string]any{"sub": "guest"}))
	fmt.Println(info.Subject, info.Issuer == partner.Issuer(), err)
	// Output:
	// guest true <nil>
}

// FuzzMultiIssuer checks that routing by the unverified iss agrees with
// encoding/json: whenever a payload is routed, encoding/json decodes it too
// and finds the same iss.
func FuzzMultiIssuer(f *testing.F) {
	for _, seed := range []string{
		`{"iss":"https://a.example.com","sub":"x"}`,
		`{"sub":{"iss":"n","a":[1,2,{"b":null}]},"iss":"https://b.example.com","exp":1.5e9}`,
		`{"iss":"a","iss":"b"}`,
		`{"iss":"https:\/\/a.example.com"}`,
		`{"\u0069ss":"https://a.example.com"}`,
		`{"ISS":"https://a.example.com"}`,
		`{"iss":"https://a.example.com","Iss":"https://b.example.com"}`,
		`{"iss":5}`,
		`{}`,
		` { "iss" : "https://b.example.com" } `,
	} {
		f.Add([]byte(seed))
	}
	rec := &multiRecorder{name: "x"}
	m, err := NewMultiVerifier(map[string]TokenVerifier{"https://a.example.com": rec, "https://b.example.com": rec}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := m.route(base64.RawURLEncoding.EncodeToString(b))
		if err != nil {
			return
		}
		if v == nil || !json.Valid(b) {
			t.Fatalf("%q routed but is not valid JSON", b)
		}
		var claims map[string]any
		if err := json.Unmarshal(b, &claims); err != nil {
			t.Fatalf("%q routed but encoding/json says %v", b, err)
		}
		iss, _ := claims["iss"].(string)
		if iss != "https://a.example.com" && iss != "https://b.example.com" {
			t.Fatalf("%q routed but encoding/json reads iss %q", b, iss)
		}
	})
}

// BenchmarkMultiVerifierRoute measures routing (peeking at iss) in front
// of a verifier that answers at once.
func BenchmarkMultiVerifierRoute(b *testing.B) {
	info := &TokenInfo{}
	fast := VerifierFunc(func(context.Context, string) (*TokenInfo, error) { return info, nil })
	m, err := NewMultiVerifier(map[string]TokenVerifier{"https://a.example.com": fast, "https://b.example.com": fast}, nil)
	if err != nil {
		b.Fatal(err)
	}
	tok := multiJWS(`{"iss":"https://b.example.com","sub":"alice","aud":"https://mcp.example.com/mcp","exp":1800000000,"scope":"a b c"}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMultiVerifierUnknownIssuerIsSanitized: the unverified iss of a token
// routed nowhere is named in the error only truncated and escaped.
func TestMultiVerifierUnknownIssuerIsSanitized(t *testing.T) {
	t.Parallel()
	m, err := NewMultiVerifier(map[string]TokenVerifier{"https://a.example.com": &multiRecorder{name: "a"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	iss := "https://evil.example.com/\nlevel=ERROR msg=forged" + strings.Repeat("x", 100)
	_, err = m.Verify(context.Background(), multiJWS(`{"iss":"https://evil.example.com/\nlevel=ERROR msg=forged`+strings.Repeat("x", 100)+`"}`))
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `iss "https://evil.example.com/\nlevel="… is not among the trusted issuers ["https://a.example.com"]`) ||
		strings.ContainsAny(msg, "\n\r") || strings.Contains(msg, iss[40:]) {
		t.Errorf("error %q", msg)
	}
}

// TestMultiVerifierWarmPath: a token a routed Verifier verified before is
// answered from that Verifier's cache, and only for the very same token.
func TestMultiVerifierWarmPath(t *testing.T) {
	f := newFixture(t, idptest.Config{}, nil)
	m, err := NewMultiVerifier(map[string]TokenVerifier{f.idp.Issuer(): f.v}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok := f.idp.Token(map[string]any{"sub": "alice"})
	first, err := m.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := m.Verify(ctx, tok); err != nil || again != first {
		t.Fatalf("second Verify = %v, %v; want the cached identity", again, err)
	}
	if _, err := m.Verify(ctx, flipSigByte(tok, 0)); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("forged signature: %v", err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = m.Verify(ctx, tok) }); n != 0 {
		t.Errorf("warm MultiVerifier.Verify allocates %v times", n)
	}
}

// TestMultiVerifierRouteAllocations: peeking at iss reuses pooled memory.
func TestMultiVerifierRouteAllocations(t *testing.T) {
	rec := &multiRecorder{name: "a"}
	m, err := NewMultiVerifier(map[string]TokenVerifier{"https://a.example.com": rec}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://a.example.com","sub":"alice","aud":["x","y"],"exp":1800000000}`))
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = m.route(payload) }); n > 0 {
		t.Errorf("route allocates %v times", n)
	}
}
