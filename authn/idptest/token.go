package idptest

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"time"
)

// TokenOptions controls [Server.TokenWith]: every field is optional.
type TokenOptions struct {
	// Alg picks the server key of this algorithm (it must be one of
	// Config.Algorithms). With Key it is the algorithm to sign with
	// (inferred from the key if empty); with HMACKey one of HS256 (default),
	// HS384, HS512. If empty, the default algorithm.
	Alg string

	// Kid overrides the kid header: "" omits it. If nil, the kid of the
	// signing key (with Key or HMACKey: the kid of the server's current key
	// for the same algorithm, or of the default key, as a forger would).
	Kid *string

	// Header adds or overrides protected header fields, such as typ, crit
	// or jku; a nil value removes the field. Overriding alg changes only
	// the header, not how the token is signed.
	Header map[string]any

	// Claims add to or override the default claims, as in [Server.Token].
	Claims map[string]any

	// Key, if non-nil, signs instead of the server's key (forgery tests).
	Key crypto.Signer

	// HMACKey, if non-nil, signs with HMAC using these bytes as the secret
	// (algorithm confusion tests, e.g. a public key used as an HS256 key).
	HMACKey []byte

	// Unsigned produces an alg "none" token with an empty signature.
	Unsigned bool
}

// Token returns a JWT access token signed with the server's default key.
//
// The header has alg, kid and typ "at+jwt" (RFC 9068). The claims are iss
// (Issuer), sub ("user"), aud (Config.Audience, if any), iat (now), exp
// (now + TokenTTL) and a random jti; claims given here override them, and a
// claim given as nil is removed (to mint a token without exp, say). A
// time.Time value is written as a NumericDate.
func (s *Server) Token(claims map[string]any) string {
	return s.TokenWith(TokenOptions{Claims: claims})
}

// TokenWith returns a JWT built as o describes. It panics if o names an
// algorithm the server has no key for or cannot sign with.
func (s *Server) TokenWith(o TokenOptions) string {
	tok, err := s.sign(o, s.ttl)
	if err != nil {
		panic(err)
	}
	return tok
}

// OpaqueToken returns a random opaque access token that the introspection
// endpoint reports active with the given claims, filled in like
// [Server.Token] (iss, sub, aud, iat, exp, jti; nil removes a claim).
func (s *Server) OpaqueToken(claims map[string]any) string {
	c := s.defaultClaims(s.ttl)
	mergeClaims(c, claims)
	tok := randomString(32)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opaque[tokenHash(tok)] = c
	return tok
}

// Revoke marks a token (JWT, opaque or refresh token) as revoked: the
// introspection endpoint reports it inactive and the token endpoint refuses
// it as a refresh or subject token. JWT verification by signature alone is
// unaffected, as with a real provider.
func (s *Server) Revoke(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := tokenHash(token)
	s.revoked[h] = true
	delete(s.refresh, h)
}

func (s *Server) defaultClaims(ttl time.Duration) map[string]any {
	now := s.now()
	c := map[string]any{
		"iss": s.issuer,
		"sub": "user",
		"iat": now.Unix(),
		"exp": now.Add(ttl).Unix(),
		"jti": randomString(16),
	}
	switch len(s.cfg.Audience) {
	case 0:
	case 1:
		c["aud"] = s.cfg.Audience[0]
	default:
		c["aud"] = append([]string(nil), s.cfg.Audience...)
	}
	return c
}

// mergeClaims applies overrides to c: nil removes, time.Time becomes a
// NumericDate.
func mergeClaims(c, overrides map[string]any) {
	for k, v := range overrides {
		switch v := v.(type) {
		case nil:
			delete(c, k)
		case time.Time:
			c[k] = v.Unix()
		default:
			c[k] = v
		}
	}
}

func (s *Server) sign(o TokenOptions, ttl time.Duration) (string, error) {
	claims := s.defaultClaims(ttl)
	mergeClaims(claims, o.Claims)

	s.mu.Lock()
	def := s.current[s.algOrder[0]]
	var key *signingKey
	if o.Alg == "" || o.Key != nil || o.HMACKey != nil || o.Unsigned {
		key = def
	} else {
		key = s.current[o.Alg]
	}
	s.mu.Unlock()
	if key == nil {
		return "", fmt.Errorf("idptest: the server has no %q key (Config.Algorithms)", o.Alg)
	}

	alg, kid := key.alg, key.kid
	switch {
	case o.Unsigned:
		alg = "none"
	case o.HMACKey != nil:
		if _, err := hmacFor(o.Alg); err != nil {
			return "", err
		}
		alg = o.Alg
		if alg == "" {
			alg = "HS256"
		}
	case o.Key != nil:
		alg = o.Alg
		if alg == "" {
			alg = algForKey(o.Key)
		}
		s.mu.Lock()
		if k := s.current[alg]; k != nil {
			kid = k.kid
		}
		s.mu.Unlock()
	}
	header := map[string]any{"alg": alg, "typ": "at+jwt"}
	if kid != "" {
		header["kid"] = kid
	}
	if o.Kid != nil {
		if *o.Kid == "" {
			delete(header, "kid")
		} else {
			header["kid"] = *o.Kid
		}
	}
	for k, v := range o.Header {
		if v == nil {
			delete(header, k)
		} else {
			header[k] = v
		}
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("idptest: encoding header: %w", err)
	}
	pb, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("idptest: encoding claims: %w", err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(hb) + "." + enc.EncodeToString(pb)

	var sig []byte
	switch {
	case o.Unsigned:
	case o.HMACKey != nil:
		h, _ := hmacFor(alg)
		sig = hmacSign(h, o.HMACKey, []byte(input))
	case o.Key != nil:
		sig, err = signJWS(alg, o.Key, []byte(input))
	default:
		sig, err = signJWS(alg, key.signer, []byte(input))
	}
	if err != nil {
		return "", err
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// lookup returns the claims of a token this server issued (a JWT signed by
// any key it ever generated, or a registered opaque token) if it is not
// revoked, expired or not yet valid.
func (s *Server) lookup(token string) (map[string]any, bool) {
	h := tokenHash(token)
	s.mu.Lock()
	revoked := s.revoked[h]
	opaque, isOpaque := s.opaque[h]
	s.mu.Unlock()
	if revoked {
		return nil, false
	}
	var claims map[string]any
	if isOpaque {
		claims = maps.Clone(opaque)
	} else {
		header, payload, input, sig, err := compactParts(token)
		if err != nil {
			return nil, false
		}
		alg, _ := header["alg"].(string)
		kid, _ := header["kid"].(string)
		s.mu.Lock()
		var candidates []*signingKey
		if k := s.allKeys[kid]; k != nil {
			candidates = append(candidates, k)
		} else if kid == "" {
			for _, k := range s.allKeys {
				candidates = append(candidates, k)
			}
		}
		s.mu.Unlock()
		ok := false
		for _, k := range candidates {
			if k.alg == alg && verifyJWS(k, input, sig) {
				ok = true
				break
			}
		}
		if !ok {
			return nil, false
		}
		claims = payload
	}
	now := s.now().Unix()
	if exp, ok := numericClaim(claims["exp"]); ok && now >= exp {
		return nil, false
	}
	if nbf, ok := numericClaim(claims["nbf"]); ok && now < nbf {
		return nil, false
	}
	return claims, true
}

func numericClaim(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		if err != nil {
			return 0, false
		}
		return int64(math.Floor(f)), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		return int64(math.Floor(n)), true
	}
	return 0, false
}

// serveIntrospection implements RFC 7662. Client authentication is
// optional, but credentials that are presented must be valid when the
// server has registered clients.
func (s *Server) serveIntrospection(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return
	}
	s.record(EndpointIntrospection, r)
	if len(s.clients) > 0 {
		if _, err := s.authenticateClient(r); err != nil {
			writeClientError(w, err)
			return
		}
	}
	token := r.PostForm.Get("token")
	if token == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "missing token")
		return
	}
	claims, ok := s.lookup(token)
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	claims["active"] = true
	writeJSON(w, http.StatusOK, claims)
}

func (s *Server) record(e Endpoint, r *http.Request) {
	f := url.Values{}
	for k, v := range r.Form {
		f[k] = append([]string(nil), v...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastForm[e] = f
	s.lastHeader[e] = r.Header.Clone()
}
