package idptest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

// BenchmarkToken measures minting beside the bare signature of an input of
// the same size (raw), so the overhead of claim encoding is visible as a
// ratio. Minting cost matters to users whose benchmarks mint a token per
// iteration.
func BenchmarkToken(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		s := idptest.NewServer(b, idptest.Config{Algorithms: []string{alg}, Audience: []string{"https://mcp.example/"}})
		claims := map[string]any{"scope": "tools:read tools:call", "client_id": "app"}
		input := []byte(strings.Repeat("x", len(s.Token(claims))*3/4))
		signer := benchSigner(b, alg)
		b.Run(alg+"/raw", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if alg == "EdDSA" {
					_, _ = signer.Sign(rand.Reader, input, crypto.Hash(0))
					continue
				}
				sum := sha256.Sum256(input)
				_, _ = signer.Sign(rand.Reader, sum[:], crypto.SHA256)
			}
		})
		b.Run(alg+"/mint", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = s.Token(claims)
			}
		})
	}
}

func benchSigner(b *testing.B, alg string) crypto.Signer {
	b.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case "RS256":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		b.Fatal(err)
	}
	return k
}
