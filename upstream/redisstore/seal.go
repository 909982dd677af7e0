package redisstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Key is one encryption key for stored values.
//
// A Key prints as its ID only: String, GoString and Format never show the
// secret.
type Key struct {
	// ID names the key in every value it seals, so values sealed under an
	// older key still open after a rotation. Required; 1 to 255 bytes,
	// unique within Config.Keys.
	ID string
	// Secret is the AES-256 key: exactly 32 bytes from a CSPRNG (for
	// example `openssl rand -base64 32`, decoded). Required.
	Secret []byte
}

// String returns "redisstore.Key{ID:<id>, Secret:REDACTED}".
func (k Key) String() string { return fmt.Sprintf("redisstore.Key{ID:%q, Secret:REDACTED}", k.ID) }

// GoString is String.
func (k Key) GoString() string { return k.String() }

// Format makes every verb print String.
func (k Key) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, k.String()) }

// sealVersion is the first byte of every sealed value; a later format gets
// another number so old values stay readable.
const sealVersion = 1

// ErrUndecryptable matches a stored value that no configured key opens: it
// was sealed under a key no longer in Config.Keys, written by something
// else, moved from another Redis key, or altered.
var ErrUndecryptable = errors.New("redisstore: stored value does not decrypt with any configured key")

// sealer encrypts values with AES-256-GCM. Layout of a sealed value:
//
//	version(1) | len(id)(1) | id | nonce(12) | ciphertext+tag(16)
//
// The additional data is the Redis key name with a fixed prefix, so a
// value copied to another key does not open there (a code's record cannot
// become a refresh family's, one session's token cannot become another's).
type sealer struct {
	active string
	aeads  map[string]cipher.AEAD
}

func newSealer(keys []Key) (*sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("redisstore: Config.Keys is empty: at least one 32-byte encryption key is required")
	}
	s := &sealer{active: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if k.ID == "" || len(k.ID) > 255 {
			return nil, fmt.Errorf("redisstore: Config.Keys[%d]: ID must be 1 to 255 bytes", i)
		}
		if _, dup := s.aeads[k.ID]; dup {
			return nil, fmt.Errorf("redisstore: Config.Keys[%d]: duplicate ID %q", i, k.ID)
		}
		if len(k.Secret) != 32 {
			return nil, fmt.Errorf("redisstore: Config.Keys[%d] (ID %q): Secret must be 32 bytes (AES-256), got %d", i, k.ID, len(k.Secret))
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("redisstore: Config.Keys[%d]: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("redisstore: Config.Keys[%d]: %w", i, err)
		}
		s.aeads[k.ID] = aead
	}
	return s, nil
}

const adPrefix = "mcpauth/redisstore v1 key="

func additionalData(key string) []byte {
	return append([]byte(adPrefix), key...)
}

// seal encrypts plaintext for the Redis key name key under the active key.
func (s *sealer) seal(key string, plaintext []byte) []byte {
	aead := s.aeads[s.active]
	id := s.active
	out := make([]byte, 0, 2+len(id)+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out = append(out, sealVersion, byte(len(id)))
	out = append(out, id...)
	nonce := out[len(out) : len(out)+aead.NonceSize()]
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	out = out[:len(out)+aead.NonceSize()]
	return aead.Seal(out, nonce, plaintext, additionalData(key))
}

// open decrypts a value read from the Redis key name key.
func (s *sealer) open(key string, sealed []byte) ([]byte, error) {
	if len(sealed) < 2 || sealed[0] != sealVersion {
		return nil, ErrUndecryptable
	}
	n := int(sealed[1])
	if len(sealed) < 2+n {
		return nil, ErrUndecryptable
	}
	aead, ok := s.aeads[string(sealed[2:2+n])]
	if !ok {
		return nil, ErrUndecryptable
	}
	rest := sealed[2+n:]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrUndecryptable
	}
	pt, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], additionalData(key))
	if err != nil {
		return nil, ErrUndecryptable
	}
	return pt, nil
}
