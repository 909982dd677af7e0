package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// KeySet supplies the public keys that verify token signatures, in place
// of the issuer's JWKS (Config.KeySet). It suits keys that are fixed or
// distributed by other means; [StaticKeySet] is the ready-made one, and
// [KeySetFunc] adapts a function.
//
// The Verifier still decides everything else: the alg allow-list, that the
// key's type suits alg (an RSA key never verifies an ES256 token, whatever
// the KeySet returns), the signature and the claims.
type KeySet interface {
	// PublicKeys returns the keys that may have signed a JWS whose header
	// names kid ("" when it names none) and alg. Returning no key rejects
	// the token as invalid; an error matching ErrUnavailable (or any error
	// that is not ErrInvalidToken) means the keys cannot be known right now.
	// Supported key types: *rsa.PublicKey (2048 bits or more),
	// *ecdsa.PublicKey (P-256, P-384, P-521) and ed25519.PublicKey.
	PublicKeys(ctx context.Context, kid, alg string) ([]crypto.PublicKey, error)
}

// KeySetFunc adapts a function to [KeySet].
type KeySetFunc func(ctx context.Context, kid, alg string) ([]crypto.PublicKey, error)

// PublicKeys calls f.
func (f KeySetFunc) PublicKeys(ctx context.Context, kid, alg string) ([]crypto.PublicKey, error) {
	return f(ctx, kid, alg)
}

// StaticKeySet is a fixed [KeySet]: keys given at construction, never
// fetched. Built from a JWK Set document ([ParseJWKS]) it selects keys by
// kid like the issuer's JWKS does; built from bare public keys
// ([NewStaticKeySet]), which have no kid, every key is a candidate for
// every token. It is safe for concurrent use.
type StaticKeySet struct {
	set *keySet
}

// NewStaticKeySet returns a StaticKeySet of keys, which must be
// *rsa.PublicKey (2048 bits or more), *ecdsa.PublicKey (P-256, P-384,
// P-521) or ed25519.PublicKey. At most 8 of them are tried for one token.
func NewStaticKeySet(keys ...crypto.PublicKey) (*StaticKeySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("authn: NewStaticKeySet: no keys")
	}
	set := &keySet{byKid: map[string][]*pubKey{}, anyKid: true}
	for i, k := range keys {
		if err := checkPublicKey(k); err != nil {
			return nil, fmt.Errorf("authn: NewStaticKeySet: key %d: %w", i, err)
		}
		set.all = append(set.all, &pubKey{key: k})
	}
	return &StaticKeySet{set: set}, nil
}

// ParseJWKS returns a StaticKeySet of the signature verification keys in
// a JWK Set document (RFC 7517 §5). Keys that cannot verify signatures
// (symmetric, private-use, "use" other than "sig", weak, unknown types) are
// skipped as they are when fetched; a document with none left is an error.
func ParseJWKS(doc []byte) (*StaticKeySet, error) {
	set, err := parseJWKS(doc, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, err
	}
	return &StaticKeySet{set: set}, nil
}

// PublicKeys implements [KeySet].
func (s *StaticKeySet) PublicKeys(_ context.Context, kid, alg string) ([]crypto.PublicKey, error) {
	keys := s.set.find(kid, alg)
	out := make([]crypto.PublicKey, len(keys))
	for i, k := range keys {
		out[i] = k.key
	}
	return out, nil
}

func (s *StaticKeySet) lookup(_ context.Context, kid, alg string, _ time.Time) ([]*pubKey, error) {
	if keys := s.set.find(kid, alg); len(keys) > 0 {
		return keys, nil
	}
	return nil, invalid(causeNoKey)
}

func (s *StaticKeySet) stillValid(*pubKey, time.Time) bool { return true }
func (s *StaticKeySet) ready(context.Context) error        { return nil }

// keyProvider is what the Verifier needs of a key source: the issuer's
// JWKS (jwksSource), a StaticKeySet, or a user's KeySet (customKeys).
type keyProvider interface {
	// lookup returns the candidate keys for (kid, alg), or an error
	// matching ErrInvalidToken (no such key) or ErrUnavailable.
	lookup(ctx context.Context, kid, alg string, now time.Time) ([]*pubKey, error)
	// stillValid reports whether a token verified with k earlier may be
	// answered from the cache: k is still published and fresh enough.
	stillValid(k *pubKey, now time.Time) bool
	// ready fetches what lookup needs, so a misconfiguration shows at once.
	ready(ctx context.Context) error
}

// customKeys adapts a user's KeySet. Its answers are not remembered: a
// cached token stays cached (until exp or TokenCacheMaxTTL) whatever the
// KeySet answers later.
type customKeys struct{ ks KeySet }

func (c customKeys) lookup(ctx context.Context, kid, alg string, _ time.Time) ([]*pubKey, error) {
	keys, err := c.ks.PublicKeys(ctx, kid, alg)
	if err != nil {
		if errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrUnavailable) {
			return nil, err
		}
		return nil, unavailable("KeySet failed", err)
	}
	var out []*pubKey
	for _, k := range keys {
		if checkPublicKey(k) != nil {
			continue
		}
		if pk := (&pubKey{kid: kid, key: k}); pk.compatible(alg) {
			out = append(out, pk)
		}
	}
	if len(out) == 0 {
		return nil, invalid(causeNoKey)
	}
	return out, nil
}

func (customKeys) stillValid(*pubKey, time.Time) bool { return true }
func (customKeys) ready(context.Context) error        { return nil }

// maxJWKSSize caps a JWKS response body.
const maxJWKSSize = 1 << 20

// minRSABits is the smallest RSA modulus accepted in a JWKS (RFC 7518 §3.3).
const minRSABits = 2048

// causeNoKey is the cause of rejecting a token whose kid and alg match no
// published key.
const causeNoKey = "no key in the issuer's JWKS matches the token's kid and alg"

// pubKey is one verification key, already converted to a crypto/* public
// key so the hot path does no JWK work.
type pubKey struct {
	kid   string
	alg   string // JWK "alg"; "" when the JWK does not name one
	key   crypto.PublicKey
	thumb string // RFC 7638 thumbprint, to keep identity across fetches
}

// compatible reports whether k may verify a token signed with alg: the JWK's
// own alg, when present, must equal it, and the key type must suit it.
func (k *pubKey) compatible(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch key := k.key.(type) {
	case *rsa.PublicKey:
		return alg[0] == 'R' || alg[0] == 'P'
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return key.Curve == elliptic.P256()
		case "ES384":
			return key.Curve == elliptic.P384()
		case "ES512":
			return key.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// checkPublicKey accepts the key types and sizes a JWKS key may have.
func checkPublicKey(k crypto.PublicKey) error {
	switch key := k.(type) {
	case *rsa.PublicKey:
		if key == nil || key.N == nil {
			return errors.New("nil RSA key")
		}
		if key.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key of %d bits is below %d", key.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey:
		if key == nil {
			return errors.New("nil EC key")
		}
		switch key.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return errors.New("unsupported EC curve")
		}
	case ed25519.PublicKey:
		if len(key) != ed25519.PublicKeySize {
			return errors.New("malformed Ed25519 key")
		}
	default:
		return fmt.Errorf("%T is not a supported public key type", k)
	}
	return nil
}

// keySet is an immutable snapshot of keys. Readers load it through an
// atomic pointer and never lock.
type keySet struct {
	byKid   map[string][]*pubKey
	all     []*pubKey
	anyKid  bool      // keys without kid are candidates for every kid (NewStaticKeySet)
	fetched time.Time // when it was fetched successfully
	expires time.Time // when a background refresh is due
}

// maxKidlessCandidates bounds the keys tried for a token without kid.
const maxKidlessCandidates = 8

// find returns the keys that may verify a token with the given kid and alg.
func (s *keySet) find(kid, alg string) []*pubKey {
	var out []*pubKey
	if kid != "" {
		keys := s.byKid[kid]
		if len(keys) == 1 && keys[0].compatible(alg) {
			return keys // the usual case, without a copy
		}
		for _, k := range keys {
			if k.compatible(alg) {
				out = append(out, k)
			}
		}
		if len(out) > 0 || !s.anyKid {
			return out
		}
	}
	for _, k := range s.all {
		if (kid == "" || k.kid == "") && k.compatible(alg) {
			out = append(out, k)
			if len(out) == maxKidlessCandidates {
				break
			}
		}
	}
	return out
}

// has reports whether k is still published in s.
func (s *keySet) has(k *pubKey) bool {
	if k.kid != "" {
		for _, c := range s.byKid[k.kid] {
			if c == k {
				return true
			}
		}
		return false
	}
	for _, c := range s.all {
		if c == k {
			return true
		}
	}
	return false
}

// parseJWKS converts a JWKS document into a snapshot, skipping keys that
// cannot verify signatures (private-only, symmetric, weak, unknown types),
// and reusing the unchanged keys of prev (if any) so cached tokens keep
// their key identity.
func parseJWKS(body []byte, prev *keySet, log *slog.Logger) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("authn: JWKS is not valid JSON: %w", err)
	}
	set := &keySet{byKid: make(map[string][]*pubKey, len(doc.Keys))}
	for i, raw := range doc.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			log.Warn("authn: skipping JWKS key", "index", i, "reason", err.Error())
			continue
		}
		if prev != nil {
			for _, old := range prev.byKid[k.kid] {
				if old.thumb == k.thumb && old.alg == k.alg {
					k = old
					break
				}
			}
		}
		set.all = append(set.all, k)
		if k.kid != "" {
			set.byKid[k.kid] = append(set.byKid[k.kid], k)
		}
	}
	if len(set.all) == 0 {
		return nil, errors.New("authn: JWKS has no usable signature verification keys")
	}
	return set, nil
}

func parseJWK(raw []byte) (*pubKey, error) {
	var meta struct {
		Kid    string   `json:"kid"`
		Alg    string   `json:"alg"`
		Use    string   `json:"use"`
		KeyOps []string `json:"key_ops"`
		Kty    string   `json:"kty"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if meta.Use != "" && meta.Use != "sig" {
		return nil, fmt.Errorf("use %q is not sig", meta.Use)
	}
	if meta.KeyOps != nil && !contains(meta.KeyOps, "verify") {
		return nil, errors.New("key_ops does not include verify")
	}
	if meta.Alg != "" && !asymmetricAlgs[meta.Alg] {
		return nil, fmt.Errorf("alg %q is not an accepted asymmetric signature algorithm", meta.Alg)
	}
	key, err := jwk.ParseKey(raw)
	if err != nil {
		return nil, fmt.Errorf("kty %q: %w", meta.Kty, err)
	}
	var exported any
	if err := jwk.Export(key, &exported); err != nil {
		return nil, fmt.Errorf("kty %q: %w", meta.Kty, err)
	}
	var pub crypto.PublicKey
	switch k := exported.(type) {
	case *rsa.PublicKey:
		pub = k
	case *rsa.PrivateKey:
		pub = &k.PublicKey
	case *ecdsa.PublicKey:
		pub = k
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	case ed25519.PublicKey:
		pub = k
	case ed25519.PrivateKey:
		pub = k.Public()
	default:
		return nil, fmt.Errorf("kty %q is not a supported signature key type", meta.Kty)
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	thumb, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("thumbprint: %w", err)
	}
	return &pubKey{kid: meta.Kid, alg: meta.Alg, key: pub, thumb: string(thumb)}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
