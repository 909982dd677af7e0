package upstream

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// key is one signing key with its precomputed JWS header.
type key struct {
	signer       crypto.Signer
	alg, kid     string
	header       string // base64url of the protected header
	jwk          json.RawMessage
	publishUntil time.Time
}

// keyRing holds the active key and the previous ones still published.
type keyRing struct {
	mu       sync.RWMutex
	active   *key
	previous []*key
	jwks     []byte
}

func parseSigningKey(sk SigningKey) (crypto.Signer, error) {
	if sk.Signer != nil {
		if sk.PEM != nil {
			return nil, errors.New("upstream: SigningKey: set PEM or Signer, not both")
		}
		return sk.Signer, nil
	}
	block, rest := pem.Decode(sk.PEM)
	if block == nil {
		return nil, errors.New("upstream: SigningKey: no PEM block")
	}
	_ = rest
	var k any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("upstream: SigningKey: unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("upstream: SigningKey: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("upstream: SigningKey: not a signing key")
	}
	return s, nil
}

func newKey(s crypto.Signer, publishUntil time.Time) (*key, error) {
	var alg string
	switch pub := s.Public().(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return nil, errors.New("upstream: SigningKey: RSA keys must have at least 2048 bits")
		}
		alg = "RS256"
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			alg = "ES256"
		case elliptic.P384():
			alg = "ES384"
		case elliptic.P521():
			alg = "ES512"
		default:
			return nil, errors.New("upstream: SigningKey: unsupported curve")
		}
	case ed25519.PublicKey:
		alg = "EdDSA"
	default:
		return nil, fmt.Errorf("upstream: SigningKey: unsupported key type %T", pub)
	}
	jk, err := jwk.Import(s.Public())
	if err != nil {
		return nil, fmt.Errorf("upstream: SigningKey: %w", err)
	}
	tp, err := jk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("upstream: SigningKey: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	for k, v := range map[string]string{jwk.KeyIDKey: kid, jwk.AlgorithmKey: alg, jwk.KeyUsageKey: "sig"} {
		if err := jk.Set(k, v); err != nil {
			return nil, fmt.Errorf("upstream: SigningKey: %w", err)
		}
	}
	pubJSON, err := json.Marshal(jk)
	if err != nil {
		return nil, fmt.Errorf("upstream: SigningKey: %w", err)
	}
	hdr, _ := json.Marshal(map[string]string{"alg": alg, "kid": kid, "typ": "at+jwt"})
	return &key{signer: s, alg: alg, kid: kid, header: base64.RawURLEncoding.EncodeToString(hdr),
		jwk: pubJSON, publishUntil: publishUntil}, nil
}

// generateDevKey makes the ECDSA P-256 development key.
func generateDevKey() (crypto.Signer, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// rebuild recomputes the published JWKS (caller holds mu for writing).
func (r *keyRing) rebuild(now time.Time) {
	keys := []json.RawMessage{r.active.jwk}
	kept := r.previous[:0]
	for _, k := range r.previous {
		if k.publishUntil.IsZero() || now.Before(k.publishUntil) {
			keys = append(keys, k.jwk)
			kept = append(kept, k)
		}
	}
	r.previous = kept
	r.jwks, _ = json.Marshal(map[string]any{"keys": keys})
}

// JWKS returns the key set to publish, dropping previous keys whose time
// has passed.
func (r *keyRing) JWKS(now time.Time) []byte {
	r.mu.RLock()
	stale := false
	for _, k := range r.previous {
		if !k.publishUntil.IsZero() && !now.Before(k.publishUntil) {
			stale = true
		}
	}
	b := r.jwks
	r.mu.RUnlock()
	if !stale {
		return b
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rebuild(now)
	return r.jwks
}

// rotate makes k active; the old active key stays published until
// oldUntil.
func (r *keyRing) rotate(k *key, oldUntil, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.active
	old.publishUntil = oldUntil
	r.previous = append([]*key{old}, r.previous...)
	r.active = k
	r.rebuild(now)
}

// sign returns the compact JWS of payload (already JSON) with the active key.
func (r *keyRing) sign(payload []byte) (string, error) {
	r.mu.RLock()
	k := r.active
	r.mu.RUnlock()
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(k.header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(512))
	buf = append(buf, k.header...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	sig, err := signBytes(k, buf)
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

func signBytes(k *key, input []byte) ([]byte, error) {
	switch k.alg {
	case "EdDSA":
		sig, err := k.signer.Sign(rand.Reader, input, crypto.Hash(0))
		if err != nil {
			return nil, fmt.Errorf("upstream: sign: %w", err)
		}
		return sig, nil
	case "RS256":
		h := sha256.Sum256(input)
		sig, err := k.signer.Sign(rand.Reader, h[:], crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("upstream: sign: %w", err)
		}
		return sig, nil
	}
	var digest []byte
	var hf crypto.Hash
	var size int
	switch k.alg {
	case "ES256":
		h := sha256.Sum256(input)
		digest, hf, size = h[:], crypto.SHA256, 32
	case "ES384":
		h := sha512.Sum384(input)
		digest, hf, size = h[:], crypto.SHA384, 48
	default: // ES512
		h := sha512.Sum512(input)
		digest, hf, size = h[:], crypto.SHA512, 66
	}
	der, err := k.signer.Sign(rand.Reader, digest, hf)
	if err != nil {
		return nil, fmt.Errorf("upstream: sign: %w", err)
	}
	// JWS wants r||s fixed width (RFC 7518 §3.4), crypto.Signer gives ASN.1.
	rr, ss, err := parseECDSASig(der)
	if err != nil {
		return nil, fmt.Errorf("upstream: sign: %w", err)
	}
	out := make([]byte, 2*size)
	rr.FillBytes(out[:size])
	ss.FillBytes(out[size:])
	return out, nil
}

// parseECDSASig decodes the ASN.1 SEQUENCE { r INTEGER, s INTEGER }.
func parseECDSASig(der []byte) (*big.Int, *big.Int, error) {
	bad := errors.New("malformed ECDSA signature")
	rd := func(b []byte, tag byte) ([]byte, []byte, error) {
		if len(b) < 2 || b[0] != tag {
			return nil, nil, bad
		}
		n, i := int(b[1]), 2
		if n&0x80 != 0 {
			l := n & 0x7f
			if l == 0 || l > 2 || len(b) < 2+l {
				return nil, nil, bad
			}
			n = 0
			for j := 0; j < l; j++ {
				n = n<<8 | int(b[2+j])
			}
			i = 2 + l
		}
		if len(b) < i+n {
			return nil, nil, bad
		}
		return b[i : i+n], b[i+n:], nil
	}
	seq, _, err := rd(der, 0x30)
	if err != nil {
		return nil, nil, err
	}
	rb, rest, err := rd(seq, 0x02)
	if err != nil {
		return nil, nil, err
	}
	sb, _, err := rd(rest, 0x02)
	if err != nil {
		return nil, nil, err
	}
	return new(big.Int).SetBytes(rb), new(big.Int).SetBytes(sb), nil
}
