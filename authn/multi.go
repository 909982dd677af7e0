package authn

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/mcpauth-go/mcpauth/internal/jsonread"
	"github.com/mcpauth-go/mcpauth/observe"
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
	issuers  []string    // the keys of byIssuer, sorted
	direct   []*Verifier // the *Verifier values of byIssuer, asked first for a token they verified before
	opaque   TokenVerifier
	buffers  sync.Pool // of *routeScratch, for decoding payloads in route
	// observers are the distinct Config.Observer values of the *Verifier
	// values m routes to (opaque included) that watch verifications: a
	// token refused before routing is reported to each.
	observers []*observe.Observer
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
		if d, ok := v.(*Verifier); ok && d.Issuer() == iss && len(m.direct) < 4 {
			m.direct = append(m.direct, d)
		}
	}
	slices.Sort(m.issuers)
	for _, v := range m.Verifiers() {
		if d, ok := v.(*Verifier); ok {
			if o := d.cfg.Observer; o != nil && o.Verification != nil && !slices.Contains(m.observers, o) {
				m.observers = append(m.observers, o)
			}
		}
	}
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
//
// A token refused before routing is reported to the Observers of m's
// Verifiers (see [observe.Observer].Verification); the chosen verifier
// reports its own verification.
func (m *MultiVerifier) Verify(ctx context.Context, token string) (*TokenInfo, error) {
	// A token one of the Verifiers verified before is answered from its
	// cache, as that Verifier would after routing (routing depends on the
	// token alone, so it would pick the same one), without decoding. The
	// size bound is the Verifier default, checked before any decoding.
	if token != "" && len(token) <= defaultMaxTokenSize {
		for _, d := range m.direct {
			if info := d.cachedObserved(ctx, token); info != nil {
				return info, nil
			}
		}
	}
	if len(m.observers) == 0 {
		v, err := m.pick(token)
		if err != nil {
			return nil, err
		}
		return v.Verify(ctx, token)
	}
	start := time.Now()
	v, err := m.pick(token)
	if err != nil {
		e := observe.Verification{Cause: causeOf(err), Start: start, Duration: time.Since(start)}
		for _, o := range m.observers {
			o.Verification(ctx, e)
		}
		return nil, err
	}
	return v.Verify(ctx, token)
}

// pick returns the verifier token is routed to, or why it is refused
// before routing.
func (m *MultiVerifier) pick(token string) (TokenVerifier, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if len(token) > defaultMaxTokenSize {
		return nil, invalid("token exceeds the size limit")
	}
	header, rest, ok := strings.Cut(token, ".")
	if !looksLikeJOSE(header) {
		return m.opaqueVerifier()
	}
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		// A JOSE header without the other segments is a truncated JWS,
		// never an opaque token to introspect (see Verifier.Verify).
		if isJOSEHeader(header) {
			return nil, invalid("token is a JWS without all three segments")
		}
		return m.opaqueVerifier()
	}
	if strings.Contains(sig, ".") {
		return nil, invalid("token is not a compact JWS (JWE and other serializations are not accepted)")
	}
	return m.route(payload)
}

func (m *MultiVerifier) opaqueVerifier() (TokenVerifier, error) {
	if m.opaque == nil {
		return nil, invalid("token is not a JWS and no opaque-token verifier is configured")
	}
	return m.opaque, nil
}

// routeScratch is route's reusable memory.
type routeScratch struct {
	buf    []byte
	parser jsonread.Parser
}

// maxPooledRouteBuffer bounds the buffers kept in MultiVerifier.buffers.
const maxPooledRouteBuffer = 8 << 10

// putScratch returns rs to the pool, unless a large payload grew it.
func (m *MultiVerifier) putScratch(rs *routeScratch) {
	rs.parser.Release()
	if cap(rs.buf) <= maxPooledRouteBuffer {
		m.buffers.Put(rs)
	}
}

// route decodes a JWS payload segment just enough to read iss (the one
// JSON reader, internal/jsonread, keeping only the root's members) and
// looks it up in byIssuer. A payload that is not a JSON object, or has
// duplicate or case-variant member names, is rejected here as the chosen
// Verifier would reject it.
func (m *MultiVerifier) route(payload string) (TokenVerifier, error) {
	src := unsafe.Slice(unsafe.StringData(payload), len(payload)) // read only
	// The decoded payload and its tree live in pooled memory: nothing read
	// from them (the iss text shares the buffer) is kept past this function.
	rs, _ := m.buffers.Get().(*routeScratch)
	if rs == nil {
		rs = new(routeScratch)
	}
	defer m.putScratch(rs)
	need := base64.RawURLEncoding.DecodedLen(len(src))
	if cap(rs.buf) < need {
		rs.buf = make([]byte, need)
	}
	b := rs.buf[:need]
	n, err := base64.RawURLEncoding.Decode(b, src)
	if err != nil {
		return nil, invalid("JWS payload is not base64url")
	}
	root, err := rs.parser.Parse(b[:n], jsonread.Options{KeepDepth: 1})
	if err != nil || root.Kind != jsonread.Object {
		return nil, invalidf("JWS payload is not a JSON object without duplicate or case-variant members", err)
	}
	v, present := root.Get("iss")
	if !present || (v.Kind == jsonread.String && v.Text == "") {
		return nil, invalid("JWS payload has no iss")
	}
	if v.Kind != jsonread.String {
		return nil, invalid("JWS payload iss is not a string")
	}
	verifier, found := m.byIssuer[v.Text]
	if !found {
		// The unverified iss is attacker-controlled: it reaches the error
		// (and so the log) only truncated and escaped.
		return nil, invalid("iss " + quoteShort(v.Text) + " is not among the trusted issuers " + quoteConfigured(m.issuers))
	}
	return verifier, nil
}
