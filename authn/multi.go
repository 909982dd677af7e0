package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// multiMaxTokenSize caps the token MultiVerifier peeks into, before any
// decoding. It equals the Verifier's default MaxTokenSize.
const multiMaxTokenSize = 16 << 10

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
	}
	return m, nil
}

// Verify routes token to the verifier of its issuer (or to the opaque
// verifier) and returns that verifier's result. Errors match ErrNoToken,
// ErrInvalidToken (a malformed or oversized token, a JWS without iss or
// naming an unknown issuer) or whatever the chosen verifier returns.
func (m *MultiVerifier) Verify(ctx context.Context, token string) (*TokenInfo, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if len(token) > multiMaxTokenSize {
		return nil, invalid("token exceeds the size limit")
	}
	header, rest, ok := strings.Cut(token, ".")
	if !ok || !multiLooksLikeJOSE(header) {
		return m.verifyOpaque(ctx, token)
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return m.verifyOpaque(ctx, token)
	}
	if strings.Contains(sig, ".") {
		return nil, invalid("token is not a compact JWS (JWE and other serializations are not accepted)")
	}
	iss, err := peekIssuer(payload)
	if err != nil {
		return nil, err
	}
	v, ok := m.byIssuer[iss]
	if !ok {
		// The unverified iss is attacker-controlled: keep it out of the
		// error (and so out of logs).
		return nil, invalid("token names an issuer that is not trusted")
	}
	return v.Verify(ctx, token)
}

func (m *MultiVerifier) verifyOpaque(ctx context.Context, token string) (*TokenInfo, error) {
	if m.opaque == nil {
		return nil, invalid("token is not a JWS and no opaque-token verifier is configured")
	}
	return m.opaque.Verify(ctx, token)
}

// multiLooksLikeJOSE reports whether seg is plausibly base64url for a JSON
// object (a JOSE header): `{` followed by '"' or a space encodes to "ey",
// followed by a tab, CR or LF to "ew".
func multiLooksLikeJOSE(seg string) bool {
	return len(seg) >= 4 && seg[0] == 'e' && (seg[1] == 'y' || seg[1] == 'w')
}

// peekIssuer decodes a JWS payload segment just enough to read iss.
func peekIssuer(payload string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", invalid("JWS payload is not base64url")
	}
	var claims struct {
		Iss *string `json:"iss"`
	}
	if err := json.Unmarshal(b, &claims); err != nil {
		return "", invalid("JWS payload is not a JSON object with a string iss")
	}
	if claims.Iss == nil || *claims.Iss == "" {
		return "", invalid("JWS payload has no iss")
	}
	return *claims.Iss, nil
}
