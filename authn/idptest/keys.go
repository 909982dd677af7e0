package idptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"strings"
)

// algSpec describes how one JWS algorithm (RFC 7518, RFC 8037) signs.
type algSpec struct {
	hash   crypto.Hash
	newKey func() (crypto.Signer, error)
}

var algs = map[string]algSpec{
	"RS256": {crypto.SHA256, newRSA},
	"RS384": {crypto.SHA384, newRSA},
	"RS512": {crypto.SHA512, newRSA},
	"PS256": {crypto.SHA256, newRSA},
	"PS384": {crypto.SHA384, newRSA},
	"PS512": {crypto.SHA512, newRSA},
	"ES256": {crypto.SHA256, newEC(elliptic.P256())},
	"ES384": {crypto.SHA384, newEC(elliptic.P384())},
	"ES512": {crypto.SHA512, newEC(elliptic.P521())},
	"EdDSA": {0, newEd25519},
}

func newRSA() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }

func newEC(c elliptic.Curve) func() (crypto.Signer, error) {
	return func() (crypto.Signer, error) { return ecdsa.GenerateKey(c, rand.Reader) }
}

func newEd25519() (crypto.Signer, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	return k, err
}

// signingKey is one generated key pair with its key ID and algorithm.
type signingKey struct {
	kid    string
	alg    string
	signer crypto.Signer
}

func generateKey(alg string) (*signingKey, error) {
	spec, ok := algs[alg]
	if !ok {
		return nil, fmt.Errorf("idptest: unsupported algorithm %q", alg)
	}
	k, err := spec.newKey()
	if err != nil {
		return nil, fmt.Errorf("idptest: generating %s key: %w", alg, err)
	}
	return &signingKey{kid: randomString(8), alg: alg, signer: k}, nil
}

// jwk returns the public JWK (RFC 7517) of k with kid, alg and use=sig.
func (k *signingKey) jwk() map[string]any {
	m := publicJWK(k.signer.Public())
	m["kid"] = k.kid
	m["alg"] = k.alg
	m["use"] = "sig"
	return m
}

func publicJWK(pub crypto.PublicKey) map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "n": b64(p.N.Bytes()), "e": b64(big.NewInt(int64(p.E)).Bytes())}
	case *ecdsa.PublicKey:
		size := (p.Curve.Params().BitSize + 7) / 8
		x, y := make([]byte, size), make([]byte, size)
		p.X.FillBytes(x)
		p.Y.FillBytes(y)
		return map[string]any{"kty": "EC", "crv": p.Curve.Params().Name, "x": b64(x), "y": b64(y)}
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(p)}
	}
	panic(fmt.Sprintf("idptest: unsupported public key type %T", pub))
}

// algForKey infers the JWS algorithm for a foreign signer.
func algForKey(k crypto.Signer) string {
	switch p := k.Public().(type) {
	case *rsa.PublicKey:
		return "RS256"
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P384():
			return "ES384"
		case elliptic.P521():
			return "ES512"
		}
		return "ES256"
	case ed25519.PublicKey:
		return "EdDSA"
	}
	panic(fmt.Sprintf("idptest: unsupported key type %T", k))
}

// signJWS signs input (the JWS signing input) with key for alg and returns
// the raw signature in JWS form (ECDSA as fixed-size r||s).
func signJWS(alg string, key crypto.Signer, input []byte) ([]byte, error) {
	spec, ok := algs[alg]
	if !ok {
		return nil, fmt.Errorf("idptest: unsupported algorithm %q", alg)
	}
	if alg == "EdDSA" {
		return key.Sign(rand.Reader, input, crypto.Hash(0))
	}
	h := spec.hash.New()
	h.Write(input)
	digest := h.Sum(nil)
	switch alg[:2] {
	case "RS":
		return key.Sign(rand.Reader, digest, spec.hash)
	case "PS":
		return key.Sign(rand.Reader, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: spec.hash})
	}
	// ES*: the crypto.Signer returns ASN.1; JWS wants r||s.
	ek, ok := key.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("idptest: %s needs an ECDSA key", alg)
	}
	der, err := key.Sign(rand.Reader, digest, spec.hash)
	if err != nil {
		return nil, err
	}
	r, s, err := parseECDSASignature(der)
	if err != nil {
		return nil, err
	}
	size := (ek.Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	s.FillBytes(out[size:])
	return out, nil
}

// parseECDSASignature decodes an ASN.1 ECDSA-Sig-Value.
func parseECDSASignature(der []byte) (r, s *big.Int, err error) {
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, nil, fmt.Errorf("idptest: decoding ECDSA signature: %w", err)
	}
	return sig.R, sig.S, nil
}

// verifyJWS checks sig over input with the public key of k.
func verifyJWS(k *signingKey, input, sig []byte) bool {
	spec := algs[k.alg]
	if k.alg == "EdDSA" {
		pub, ok := k.signer.Public().(ed25519.PublicKey)
		return ok && ed25519.Verify(pub, input, sig)
	}
	h := spec.hash.New()
	h.Write(input)
	digest := h.Sum(nil)
	switch k.alg[:2] {
	case "RS":
		pub, ok := k.signer.Public().(*rsa.PublicKey)
		return ok && rsa.VerifyPKCS1v15(pub, spec.hash, digest, sig) == nil
	case "PS":
		pub, ok := k.signer.Public().(*rsa.PublicKey)
		return ok && rsa.VerifyPSS(pub, spec.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: spec.hash}) == nil
	}
	pub, ok := k.signer.Public().(*ecdsa.PublicKey)
	if !ok {
		return false
	}
	size := (pub.Curve.Params().BitSize + 7) / 8
	if len(sig) != 2*size {
		return false
	}
	r := new(big.Int).SetBytes(sig[:size])
	s := new(big.Int).SetBytes(sig[size:])
	return ecdsa.Verify(pub, digest, r, s)
}

// hmacFor returns the HMAC hash constructor for an HS* algorithm.
func hmacFor(alg string) (func() hash.Hash, error) {
	switch alg {
	case "", "HS256":
		return sha256.New, nil
	case "HS384":
		return sha512.New384, nil
	case "HS512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("idptest: %q is not an HMAC algorithm", alg)
}

func hmacSign(newHash func() hash.Hash, key, input []byte) []byte {
	m := hmac.New(newHash, key)
	m.Write(input)
	return m.Sum(nil)
}

// compactParts splits a compact JWS and decodes its header and payload.
func compactParts(token string) (header, payload map[string]any, input, sig []byte, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, nil, nil, errors.New("not a compact JWS")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, nil, nil, nil, err
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, nil, nil, nil, err
	}
	sig, err = base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if err := json.Unmarshal(hb, &header); err != nil {
		return nil, nil, nil, nil, err
	}
	dec := json.NewDecoder(strings.NewReader(string(pb)))
	dec.UseNumber()
	if err := dec.Decode(&payload); err != nil {
		return nil, nil, nil, nil, err
	}
	return header, payload, []byte(parts[0] + "." + parts[1]), sig, nil
}

// randomString returns n random bytes, hex encoded.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// tokenHash is the key under which the server remembers a token; raw tokens
// are not kept as map keys so a heap dump or debug print shows no token.
func tokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }
