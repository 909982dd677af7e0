package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"crypto"

	"github.com/mcpauth-go/mcpauth/internal/jsonread"
)

// Verify verifies token and returns the identity it carries.
//
// A compact JWS is verified locally: size cap, header (alg allow-list, typ,
// no crit), key chosen by kid from the issuer's JWKS or Config.KeySet (the
// key decides the verification algorithm family, never the header alone),
// signature, then iss (exact), aud (RFC 8707), sub, nbf, iat and exp with
// leeway. A token verified before (the very same bytes) is answered from
// the cache while its exp, TokenCacheMaxTTL and its key allow; the
// TokenInfo is then the one returned before, shared and read-only. A token
// that is not a JWS is introspected (RFC 7662) when Config.Introspection is
// set, and is otherwise invalid; a JWS is never introspected, nor is a
// truncated one (a JOSE header without the other two segments).
//
// Errors match ErrInvalidToken (and ErrExpired for an expired token),
// ErrNoToken for an empty token, or ErrUnavailable when the keys or the
// introspection endpoint cannot be reached and nothing cached can decide.
// Error messages name the cause and never contain the token.
func (v *Verifier) verify(ctx context.Context, token string) (*TokenInfo, error) { // Verify without the Observer (observe.go)
	if token == "" {
		return nil, ErrNoToken
	}
	if len(token) > v.maxTokenSize {
		return nil, invalid("token exceeds the size limit")
	}
	if info := v.cached(token); info != nil {
		return info, nil
	}
	d1 := strings.IndexByte(token, '.')
	if d1 < 0 {
		return v.notJWS(ctx, token, token)
	}
	rest := token[d1+1:]
	d2 := strings.IndexByte(rest, '.')
	if d2 < 0 {
		return v.notJWS(ctx, token, token[:d1])
	}
	d2 += d1 + 1
	if strings.IndexByte(token[d2+1:], '.') >= 0 {
		if looksLikeJOSE(token[:d1]) {
			return nil, invalid("token is not a compact JWS (JWE and other serializations are not accepted)")
		}
		return v.opaque(ctx, token)
	}
	if !looksLikeJOSE(token[:d1]) {
		return v.opaque(ctx, token)
	}

	now := v.now()
	t, key, err := v.verifyJWS(ctx, token, d1, d2, now)
	if err != nil {
		return nil, err
	}
	info := &t.info
	if v.cache != nil {
		until := now.Add(v.tokenCacheMaxTTL)
		if info.Expiry.Before(until) {
			until = info.Expiry
		}
		t.entry = cacheEntry{info: info, key: key, until: until}
		v.cache.put(&t.entry, now)
	}
	return info, nil
}

// verifiedJWS is what the verification of a JWS allocates for its result,
// as one object: the TokenInfo with its token, its cache entry, and the
// list a single-string aud becomes.
type verifiedJWS struct {
	tokenInfoWithRaw
	entry cacheEntry
	aud   [1]string
}

// cached is the warm path: the identity of this very token (compared in
// full) if it verified before, has not expired, and its key is still
// published. Nothing about its shape needs checking again.
func (v *Verifier) cached(token string) *TokenInfo {
	if v.cache == nil {
		return nil
	}
	if e := v.cache.get(token); e != nil {
		if now := v.now(); now.Before(e.until) && v.keys.stillValid(e.key, now) {
			return e.info
		}
	}
	return nil
}

// looksLikeJOSE reports whether seg is base64url for a JSON object, the
// shape of a JOSE header.
func looksLikeJOSE(seg string) bool {
	// '{' followed by '"' or a space encodes as "ey"; followed by a tab, CR
	// or LF as "ew". No other pair can start a JSON object.
	return len(seg) >= 4 && seg[0] == 'e' && (seg[1] == 'y' || seg[1] == 'w')
}

// isJOSEHeader reports whether seg decodes to a JSON object with an alg
// member, a JOSE header. Unlike looksLikeJOSE it decodes, so it is used
// only off the hot path, for tokens with fewer than three segments: a random
// opaque token almost never passes it, a truncated JWS always does.
func isJOSEHeader(seg string) bool {
	if !looksLikeJOSE(seg) {
		return false
	}
	b, err := decodeSegment(nil, seg)
	if err != nil {
		return false
	}
	h, err := jsonread.ParseObject(b)
	if err != nil {
		return false
	}
	_, ok := h["alg"]
	return ok
}

// notJWS verifies a token without the three segments of a compact JWS.
// One whose first segment is a JOSE header ("header.payload", the shape of
// a JWS stripped of its signature) is malformed and invalid; it is never
// introspected, which would give it a second verification path. Any other
// is opaque.
func (v *Verifier) notJWS(ctx context.Context, token, first string) (*TokenInfo, error) {
	if isJOSEHeader(first) {
		return nil, invalid("token is a JWS without all three segments")
	}
	return v.opaque(ctx, token)
}

func (v *Verifier) opaque(ctx context.Context, token string) (*TokenInfo, error) {
	if v.intro == nil {
		return nil, invalid("token is not a JWS and introspection is not configured")
	}
	return v.intro.verify(ctx, token)
}

// verifyJWS verifies a compact JWS whose dots are at d1 and d2. The returned
// TokenInfo carries the token.
func (v *Verifier) verifyJWS(ctx context.Context, token string, d1, d2 int, now time.Time) (*verifiedJWS, *pubKey, error) {
	h, known := v.headers.get(token[:d1])
	if !known {
		var err error
		if h, err = v.parseHeader(token[:d1]); err != nil {
			return nil, nil, err
		}
	}
	alg, kid := h.alg, h.kid
	// jku, x5u, jwk and x5c are never read: keys come only from the JWKS.

	var sbuf [512]byte // an RSA-4096 signature
	sig, err := decodeSegment(sbuf[:0], token[d2+1:])
	if err != nil {
		return nil, nil, invalid("signature is not base64url")
	}
	keys, err := v.keys.lookup(ctx, kid, alg, now)
	if err != nil {
		return nil, nil, err
	}
	var key *pubKey
	for _, k := range keys {
		if verifySignature(alg, k.key, token[:d2], sig) {
			key = k
			break
		}
	}
	if key == nil {
		return nil, nil, invalid("signature verification failed")
	}

	// The payload is decoded into memory of its own, which nothing writes
	// to afterwards: the claims' strings share it.
	payload, err := decodeSegment(nil, token[d1+1:d2])
	if err != nil {
		return nil, nil, invalid("payload is not base64url")
	}
	var reg registered
	claims, err := jsonread.ParseObjectFunc(unsafe.String(unsafe.SliceData(payload), len(payload)), reg.see)
	if err != nil {
		return nil, nil, invalidf("payload is not a JSON object without duplicate or case-variant claims", err)
	}
	t, err := v.checkClaims(&reg, claims, token, now)
	if err != nil {
		return nil, nil, err
	}
	if !known {
		v.headers.put(token[:d1], h)
	}
	return t, key, nil
}

// joseHeader is what verification reads from a JWS header that passed the
// header checks.
type joseHeader struct{ alg, kid string }

// parseHeader decodes and checks a JWS header: alg allowed, no crit, typ
// accepted, kid a string.
func (v *Verifier) parseHeader(seg string) (joseHeader, error) {
	var hbuf [256]byte
	hdr, err := decodeSegment(hbuf[:0], seg)
	if err != nil {
		return joseHeader{}, invalid("header is not base64url")
	}
	header, err := jsonread.ParseObject(hdr)
	if err != nil {
		return joseHeader{}, invalidf("header is not a JSON object", err)
	}
	alg, _ := header["alg"].(string)
	if !v.allowed[alg] {
		return joseHeader{}, invalid("alg " + quoteShort(alg) + " is not allowed")
	}
	if _, ok := header["crit"]; ok {
		return joseHeader{}, invalid("header has crit; no JWS extensions are understood")
	}
	if t, ok := header["typ"]; ok {
		typ, _ := t.(string)
		if !v.typAllowed(typ) {
			return joseHeader{}, invalid("typ " + quoteShort(typ) + " is not accepted")
		}
	} else if v.cfg.StrictTyp {
		return joseHeader{}, invalid("typ is missing (strict RFC 9068 mode requires at+jwt)")
	}
	kid := ""
	if k, ok := header["kid"]; ok {
		if kid, ok = k.(string); !ok {
			return joseHeader{}, invalid("kid is not a string")
		}
	}
	return joseHeader{alg: alg, kid: kid}, nil
}

// headerCache remembers the checked headers of tokens that verified, by
// their base64url text: an issuer signs every token of a key with the same
// header, so a new token's header needs no decoding. Only a header of a
// token that passed every check is added, so nobody without the issuer's
// key can fill it, and it is small and bounded. A header's checks depend
// only on the Verifier's fixed configuration, so an entry never goes stale;
// the key is looked up afresh for every token.
type headerCache struct {
	mu sync.RWMutex
	m  map[string]joseHeader
}

const maxCachedHeaders = 32

func (c *headerCache) get(seg string) (joseHeader, bool) {
	c.mu.RLock()
	h, ok := c.m[seg]
	c.mu.RUnlock()
	return h, ok
}

func (c *headerCache) put(seg string, h joseHeader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]joseHeader)
	}
	if len(c.m) < maxCachedHeaders {
		c.m[strings.Clone(seg)] = h // a copy: seg shares the token's memory
	}
}

func (v *Verifier) typAllowed(typ string) bool {
	t := strings.ToLower(typ)
	t = strings.TrimPrefix(t, "application/")
	if t == "at+jwt" {
		return true
	}
	return !v.cfg.StrictTyp && t == "jwt"
}

// registered holds the claims checkClaims reads, handed over while the
// payload is decoded (jsonread.ParseObjectFunc) rather than looked up in
// the claims map afterwards.
type registered struct {
	iss, sub, aud, exp, nbf, iat, scope, scp, clientID, azp claim
}

// claim is one member of a JWT payload, ok when the payload has it (a
// null included).
type claim struct {
	v  any
	ok bool
}

func (r *registered) see(name string, v any) {
	var c *claim
	switch name {
	case "iss":
		c = &r.iss
	case "sub":
		c = &r.sub
	case "aud":
		c = &r.aud
	case "exp":
		c = &r.exp
	case "nbf":
		c = &r.nbf
	case "iat":
		c = &r.iat
	case "scope":
		c = &r.scope
	case "scp":
		c = &r.scp
	case "client_id":
		c = &r.clientID
	case "azp":
		c = &r.azp
	default:
		return
	}
	*c = claim{v, true}
}

// checkClaims validates the registered claims (reg, from the payload
// whose members are claims) and builds the TokenInfo, which carries token.
func (v *Verifier) checkClaims(reg *registered, claims map[string]any, token string, now time.Time) (*verifiedJWS, error) {
	iss, _ := reg.iss.v.(string)
	if iss != v.cfg.Issuer {
		return nil, invalid("iss " + quoteShort(iss) + " does not match the configured issuer " + strconv.Quote(v.cfg.Issuer))
	}
	t := new(verifiedJWS)
	var aud []string
	var ok bool
	if a, isString := reg.aud.v.(string); isString {
		t.aud[0] = a
		aud, ok = t.aud[:], true
	} else {
		aud, ok = stringOrList(reg.aud.v)
	}
	if !ok {
		return nil, invalid("aud is missing or not a string or array of strings")
	}
	if !v.audienceMatches(aud) {
		return nil, invalid("aud " + quoteList(aud) + " does not contain this resource " + quoteConfigured(v.cfg.Audience))
	}
	sub, _ := reg.sub.v.(string)
	if sub == "" {
		return nil, invalid("sub is missing")
	}
	exp, ok, err := numericDate(reg.exp, "exp")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, invalid("exp is missing")
	}
	if nbf, ok, err := numericDate(reg.nbf, "nbf"); err != nil {
		return nil, err
	} else if ok && now.Add(v.leeway).Before(nbf) {
		return nil, invalid("token is not valid yet (nbf)")
	}
	iat, ok, err := numericDate(reg.iat, "iat")
	if err != nil {
		return nil, err
	}
	if ok && iat.After(now.Add(v.leeway)) {
		return nil, invalid("iat is in the future")
	}
	if !now.Before(exp.Add(v.leeway)) {
		return nil, &tokenError{kind: ErrExpired, cause: "exp has passed"}
	}
	t.raw = token
	t.info = TokenInfo{
		Issuer:   iss,
		Subject:  sub,
		Audience: aud,
		Expiry:   exp,
		IssuedAt: iat,
		Claims:   claims,
		raw:      &t.raw,
	}
	info := &t.info
	if s, ok := reg.scope.v.(string); ok {
		info.Scopes = strings.Fields(s)
	} else if reg.scp.ok {
		scp := reg.scp.v
		if s, ok := scp.(string); ok {
			info.Scopes = strings.Fields(s)
		} else if l, ok := stringOrList(scp); ok {
			info.Scopes = l
		}
	}
	if c, ok := reg.clientID.v.(string); ok {
		info.ClientID = c
	} else if c, ok := reg.azp.v.(string); ok {
		info.ClientID = c
	}
	return t, nil
}

func (v *Verifier) audienceMatches(aud []string) bool {
	return audienceContains(aud, v.cfg.Audience)
}

// audienceContains reports whether any of aud names one of the resources in
// want. The comparison is exact except that the scheme and host of a URI
// compare case-insensitively (RFC 3986 §6.2.2.1; the MCP authorization
// specification asks servers to accept upper-case scheme and host).
func audienceContains(aud, want []string) bool {
	for _, a := range aud {
		for _, w := range want {
			if a == w || sameResource(a, w) {
				return true
			}
		}
	}
	return false
}

// sameResource compares two URIs with case-insensitive scheme and host and
// an exact rest (port, path, query).
func sameResource(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	n := authorityEnd(a)
	if n < 0 || n != authorityEnd(b) {
		return false
	}
	return strings.EqualFold(a[:n], b[:n]) && a[n:] == b[n:]
}

// authorityEnd returns the index just past "scheme://host" (before any
// port, path, query or fragment), or -1 if s has no authority.
func authorityEnd(s string) int {
	i := strings.Index(s, "://")
	if i <= 0 {
		return -1
	}
	j := i + 3
	for j < len(s) && s[j] != ':' && s[j] != '/' && s[j] != '?' && s[j] != '#' && s[j] != '@' {
		j++
	}
	if j < len(s) && s[j] == '@' {
		return -1 // userinfo: compare such URIs exactly
	}
	return j
}

// stringOrList accepts a JSON string or an array of strings.
func stringOrList(x any) ([]string, bool) {
	switch t := x.(type) {
	case string:
		return []string{t}, true
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, len(out) > 0
	}
	return nil, false
}

// numericDate reads c, the RFC 7519 NumericDate claim name.
func numericDate(c claim, name string) (time.Time, bool, error) {
	if !c.ok {
		return time.Time{}, false, nil
	}
	f, ok := c.v.(float64)
	if !ok {
		return time.Time{}, false, invalid(name + " is not a number")
	}
	const maxSeconds = 253402300799 // 9999-12-31T23:59:59Z
	f = math.Max(math.Min(f, maxSeconds), -maxSeconds)
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// quoteShort quotes s for an error message or a log line, truncated to 32
// bytes and with control and non-ASCII characters escaped: header and claim
// values are attacker-controlled.
func quoteShort(s string) string {
	if len(s) <= 32 {
		return strconv.QuoteToASCII(s)
	}
	return strconv.QuoteToASCII(strings.ToValidUTF8(s[:32], "")) + "…"
}

// quoteList quotes the first few entries of an attacker-controlled list
// with quoteShort.
func quoteList(l []string) string {
	const most = 4
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range l {
		if i == most {
			b.WriteString(" …+" + strconv.Itoa(len(l)-most))
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(quoteShort(s))
	}
	b.WriteByte(']')
	return b.String()
}

// quoteConfigured quotes configured values (trusted, shown in full).
func quoteConfigured(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, " ") + "]"
}

// verifySignature checks sig over signingInput with key, for alg.
func verifySignature(alg string, key crypto.PublicKey, signingInput string, sig []byte) bool {
	msg := unsafe.Slice(unsafe.StringData(signingInput), len(signingInput))
	if alg == "EdDSA" {
		k, ok := key.(ed25519.PublicKey)
		return ok && ed25519.Verify(k, msg, sig)
	}
	var hash crypto.Hash
	var sum [sha512.Size]byte // one array for every hash, so that it stays on the stack
	var digest []byte
	switch alg[2:] {
	case "256":
		d := sha256.Sum256(msg)
		hash, digest = crypto.SHA256, sum[:copy(sum[:], d[:])]
	case "384":
		d := sha512.Sum384(msg)
		hash, digest = crypto.SHA384, sum[:copy(sum[:], d[:])]
	case "512":
		sum = sha512.Sum512(msg)
		hash, digest = crypto.SHA512, sum[:]
	default:
		return false
	}
	switch alg[0] {
	case 'R':
		k, ok := key.(*rsa.PublicKey)
		return ok && rsa.VerifyPKCS1v15(k, hash, digest, sig) == nil
	case 'P':
		k, ok := key.(*rsa.PublicKey)
		// VerifyPSS keeps its digest argument (escape analysis), which
		// would put sum on the heap for every algorithm: PSS gets a copy.
		kept := append([]byte(nil), digest...)
		return ok && rsa.VerifyPSS(k, hash, kept, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case 'E':
		k, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return false
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return false
		}
		r := new(big.Int).SetBytes(sig[:n])
		s := new(big.Int).SetBytes(sig[n:])
		return ecdsa.Verify(k, digest, r, s)
	}
	return false
}
