package benchcmp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
)

// rawVerifier returns the bare crypto/* cost every JWT library pays for
// the token at index i: SHA-256 of the signing input and the signature
// check with the pre-parsed key. Splitting the token and decoding the
// signature happen in setup, outside the timed loop.
func rawVerifier(tb testing.TB, f *fixture) func(i int) bool {
	tb.Helper()
	type split struct {
		input string
		sig   []byte
	}
	parts := make([]split, len(f.tokens))
	for i, tok := range f.tokens {
		d := strings.LastIndexByte(tok, '.')
		sig, err := base64.RawURLEncoding.DecodeString(tok[d+1:])
		if err != nil {
			tb.Fatal(err)
		}
		parts[i] = split{tok[:d], sig}
	}
	switch key := f.key.(type) {
	case *rsa.PublicKey:
		return func(i int) bool {
			p := &parts[i]
			h := sha256.Sum256([]byte(p.input))
			return rsa.VerifyPKCS1v15(key, crypto.SHA256, h[:], p.sig) == nil
		}
	case *ecdsa.PublicKey:
		return func(i int) bool {
			p := &parts[i]
			h := sha256.Sum256([]byte(p.input))
			r, s := new(big.Int).SetBytes(p.sig[:32]), new(big.Int).SetBytes(p.sig[32:])
			return ecdsa.Verify(key, h[:], r, s)
		}
	}
	tb.Fatalf("unexpected key type %T", f.key)
	return nil
}

// BenchmarkPeers verifies the same MCP access tokens with the bare
// signature check (raw), mcpauth without and with its verified-token cache,
// and the peer libraries, in one run so that ratios to raw can be compared.
// Every verifier but mcpauth-warm cycles through the same pool of
// poolSize distinct tokens; mcpauth-warm repeats one token.
func BenchmarkPeers(b *testing.B) {
	srv := newIdP(b)
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			f := newFixture(b, srv, alg, poolSize)
			b.Run("raw", func(b *testing.B) {
				verify := rawVerifier(b, f)
				if !verify(0) {
					b.Fatal("raw: signature check failed")
				}
				b.ReportAllocs()
				i := 0
				cpu := cpuTime()
				for b.Loop() {
					if !verify(i % poolSize) {
						b.Fatal("raw: signature check failed")
					}
					i++
				}
				reportCPU(b, cpu)
			})
			for _, p := range peers {
				b.Run(p.name, func(b *testing.B) {
					verify := p.setup(b, f)
					if err := verify(f.tokens[0]); err != nil {
						b.Fatalf("%s rejected a valid token: %v", p.name, err)
					}
					b.ReportAllocs()
					i := 0
					cpu := cpuTime()
					for b.Loop() {
						k := i % poolSize
						if p.warm {
							k = 0
						}
						if err := verify(f.tokens[k]); err != nil {
							b.Fatalf("%s rejected a valid token: %v", p.name, err)
						}
						i++
					}
					reportCPU(b, cpu)
				})
			}
		})
	}
}
