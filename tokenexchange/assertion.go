package tokenexchange

// private_key_jwt client authentication (RFC 7523 §2.2 and §3).

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// signingAlg returns the JWS alg for key, honouring an explicit choice.
func signingAlg(key crypto.Signer, explicit string) (string, error) {
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		switch explicit {
		case "":
			return "RS256", nil
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return explicit, nil
		}
	case *ecdsa.PublicKey:
		var alg string
		switch k.Curve.Params().BitSize {
		case 256:
			alg = "ES256"
		case 384:
			alg = "ES384"
		case 521:
			alg = "ES512"
		default:
			return "", errors.New("tokenexchange: unsupported ECDSA curve")
		}
		if explicit == "" || explicit == alg {
			return alg, nil
		}
	case ed25519.PublicKey:
		if explicit == "" || explicit == "EdDSA" || explicit == "Ed25519" {
			return "EdDSA", nil
		}
	default:
		return "", fmt.Errorf("tokenexchange: unsupported private key type %T", k)
	}
	return "", fmt.Errorf("tokenexchange: signing algorithm %q does not fit the private key", explicit)
}

func hashFor(alg string) crypto.Hash {
	switch alg[2:] {
	case "384":
		return crypto.SHA384
	case "512":
		return crypto.SHA512
	}
	return crypto.SHA256
}

var b64 = base64.RawURLEncoding

// clientAssertion signs an RFC 7523 §3 client assertion for audience aud.
func (t *Transport) clientAssertion(aud string) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("tokenexchange: client assertion: %w", err)
	}
	now := t.now()
	hdr := map[string]string{"alg": t.alg, "typ": "JWT"}
	if t.cfg.KeyID != "" {
		hdr["kid"] = t.cfg.KeyID
	}
	claims := map[string]any{
		"iss": t.cfg.ClientID,
		"sub": t.cfg.ClientID,
		"aud": aud,
		"iat": now.Unix(),
		"exp": now.Add(time.Minute).Unix(),
		"jti": b64.EncodeToString(jti[:]),
	}
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(claims)
	var buf bytes.Buffer
	buf.WriteString(b64.EncodeToString(h))
	buf.WriteByte('.')
	buf.WriteString(b64.EncodeToString(c))
	sig, err := signJWS(t.cfg.PrivateKey, t.alg, buf.Bytes())
	if err != nil {
		return "", fmt.Errorf("tokenexchange: signing client assertion: %w", err)
	}
	buf.WriteByte('.')
	buf.WriteString(b64.EncodeToString(sig))
	return buf.String(), nil
}

// signJWS computes the JWS signature of input with alg (RFC 7518 §3).
func signJWS(key crypto.Signer, alg string, input []byte) ([]byte, error) {
	if alg == "EdDSA" {
		return key.Sign(rand.Reader, input, crypto.Hash(0))
	}
	hf := hashFor(alg)
	h := hf.New()
	h.Write(input)
	digest := h.Sum(nil)
	switch alg[:2] {
	case "RS":
		return key.Sign(rand.Reader, digest, hf)
	case "PS":
		return key.Sign(rand.Reader, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: hf})
	case "ES":
		der, err := key.Sign(rand.Reader, digest, hf)
		if err != nil {
			return nil, err
		}
		var sig struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &sig); err != nil {
			return nil, err
		}
		size := (key.Public().(*ecdsa.PublicKey).Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		sig.R.FillBytes(out[:size])
		sig.S.FillBytes(out[size:])
		return out, nil
	}
	return nil, fmt.Errorf("unsupported alg %q", alg)
}
