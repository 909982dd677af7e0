package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"crypto"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

// mcpClaims is a realistic MCP access token payload.
func mcpClaims(i int) map[string]any {
	return map[string]any{
		"sub":       fmt.Sprintf("user-%08d", i),
		"client_id": "https://client.example.com/oauth/metadata.json",
		"scope":     "openid profile tools:read tools:write resources:read",
		"groups":    []string{"engineering", "mcp-users"},
		"email":     "user@example.com",
		"name":      "Example User",
	}
}

type benchFixture struct {
	v      *Verifier
	tokens []string
	key    crypto.PublicKey
}

func newBenchFixture(b *testing.B, alg string, n int) *benchFixture {
	b.Helper()
	idp := idptest.NewServer(b, idptest.Config{Algorithms: []string{alg}, Audience: []string{testResource}})
	v, err := NewVerifier(Config{
		Issuer: idp.Issuer(), Audience: []string{testResource}, JWKSURL: idp.JWKSURL(),
		HTTPClient: idp.Client(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.Close() })
	f := &benchFixture{v: v}
	for i := range n {
		tok := idp.Token(mcpClaims(i))
		f.tokens = append(f.tokens, tok)
	}
	if _, err := v.Verify(context.Background(), f.tokens[0]); err != nil {
		b.Fatal(err)
	}
	v.cache.remove(f.tokens[0])
	f.key = v.keys.(*jwksSource).cur.Load().all[0].key
	return f
}

// rawVerify is the bare crypto/* cost every JWT library pays: hash the
// signing input and check the signature with an already parsed public key.
func rawVerify(alg string, key crypto.PublicKey, signingInput string, sig []byte) bool {
	switch alg {
	case "RS256":
		d := sha256.Sum256([]byte(signingInput))
		return rsa.VerifyPKCS1v15(key.(*rsa.PublicKey), crypto.SHA256, d[:], sig) == nil
	case "ES256":
		d := sha256.Sum256([]byte(signingInput))
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(key.(*ecdsa.PublicKey), d[:], r, s)
	case "EdDSA":
		return ed25519.Verify(key.(ed25519.PublicKey), []byte(signingInput), sig)
	}
	panic(alg)
}

// BenchmarkVerify compares, in one run, the raw signature check (raw), a
// full verification of a token not seen before (cold, including the cache
// insert), and the same token again (warm).
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			const pool = 256
			f := newBenchFixture(b, alg, pool)
			ctx := context.Background()
			b.Run("raw", func(b *testing.B) {
				type split struct {
					in  string
					sig []byte
				}
				parts := make([]split, pool)
				for i, tok := range f.tokens {
					d := strings.LastIndexByte(tok, '.')
					sig, _ := base64.RawURLEncoding.DecodeString(tok[d+1:])
					parts[i] = split{tok[:d], sig}
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					p := parts[i%pool]
					if !rawVerify(alg, f.key, p.in, p.sig) {
						b.Fatal("raw verify failed")
					}
					i++
				}
			})
			b.Run("cold", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					k := i % pool
					if _, err := f.v.Verify(ctx, f.tokens[k]); err != nil {
						b.Fatal(err)
					}
					f.v.cache.remove(f.tokens[k]) // so the next use is cold again
					i++
				}
			})
			b.Run("warm", func(b *testing.B) {
				if _, err := f.v.Verify(ctx, f.tokens[1]); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := f.v.Verify(ctx, f.tokens[1]); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// runKidStorm verifies n tokens with random kids from 8 goroutines and
// returns the JWKS fetches they caused (beyond the initial one).
func runKidStorm(tb testing.TB, idp *idptest.Server, v *Verifier, tokens []string) int64 {
	tb.Helper()
	before := idp.Requests(idptest.EndpointJWKS)
	var wg sync.WaitGroup
	next := make(chan string)
	for range 8 {
		wg.Go(func() {
			for tok := range next {
				if _, err := v.Verify(context.Background(), tok); err == nil {
					tb.Error("a token with a random kid was accepted")
				}
			}
		})
	}
	for _, tok := range tokens {
		next <- tok
	}
	close(next)
	wg.Wait()
	return idp.Requests(idptest.EndpointJWKS) - before
}

func kidStormSetup(tb testing.TB, n int) (*idptest.Server, *Verifier, []string) {
	idp := idptest.NewServer(tb, idptest.Config{Algorithms: []string{"ES256"}, Audience: []string{testResource}})
	v, err := NewVerifier(Config{
		Issuer: idp.Issuer(), Audience: []string{testResource}, JWKSURL: idp.JWKSURL(),
		HTTPClient: idp.Client(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	if _, err := v.Verify(context.Background(), idp.Token(nil)); err != nil {
		tb.Fatal(err)
	}
	tokens := make([]string, n)
	for i := range tokens {
		kid := fmt.Sprintf("%x", sha256.Sum256(fmt.Appendf(nil, "%d-%d", time.Now().UnixNano(), i)))[:16]
		tokens[i] = idp.TokenWith(idptest.TokenOptions{Kid: &kid})
	}
	return idp, v, tokens
}

// TestUnknownKidStorm: 10 000 tokens with random kids cause at most one
// JWKS fetch per refresh interval (the run is far shorter than 5 minutes).
func TestUnknownKidStorm(t *testing.T) {
	idp, v, tokens := kidStormSetup(t, 10000)
	if n := runKidStorm(t, idp, v, tokens); n > 1 {
		t.Fatalf("10 000 random kids caused %d JWKS fetches, want ≤ 1", n)
	}
}

// BenchmarkUnknownKidStorm reports the cost of rejecting a token with a
// random kid and the JWKS fetches 10 000 of them cause (≤ 1 per interval).
func BenchmarkUnknownKidStorm(b *testing.B) {
	idp, v, tokens := kidStormSetup(b, 10000)
	b.ReportAllocs()
	var fetches int64
	for b.Loop() {
		fetches += runKidStorm(b, idp, v, tokens)
	}
	if fetches > 1 {
		b.Fatalf("random kids caused %d JWKS fetches within one refresh interval", fetches)
	}
	b.ReportMetric(float64(fetches), "jwks-fetches")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(tokens)), "ns/token")
}

// BenchmarkVerifyInterleaved times the raw signature check and a cold
// verification of the same token alternately, one pair per iteration, so
// that load from other processes on a shared machine weighs on both alike.
// It reports wall time per operation (raw-ns/op, cold-ns/op) with their
// ratio (cold/raw), and, on Linux, the thread CPU time of each
// (raw-cpu-ns/op, cold-cpu-ns/op, cold/raw-cpu), which time spent waiting
// for a CPU does not inflate.
func BenchmarkVerifyInterleaved(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			const pool = 256
			f := newBenchFixture(b, alg, pool)
			ctx := context.Background()
			ins := make([]string, pool)
			sigs := make([][]byte, pool)
			for i, tok := range f.tokens {
				d := strings.LastIndexByte(tok, '.')
				ins[i] = tok[:d]
				sigs[i], _ = base64.RawURLEncoding.DecodeString(tok[d+1:])
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ReportAllocs()
			var raw, cold, rawCPU, coldCPU time.Duration
			i := 0
			for b.Loop() {
				k := i % pool
				c0, t0 := threadCPU(), time.Now()
				if !rawVerify(alg, f.key, ins[k], sigs[k]) {
					b.Fatal("raw verify failed")
				}
				c1, t1 := threadCPU(), time.Now()
				if _, err := f.v.Verify(ctx, f.tokens[k]); err != nil {
					b.Fatal(err)
				}
				c2, t2 := threadCPU(), time.Now()
				f.v.cache.remove(f.tokens[k])
				raw += t1.Sub(t0)
				cold += t2.Sub(t1)
				rawCPU += c1 - c0
				coldCPU += c2 - c1
				i++
			}
			b.ReportMetric(float64(raw.Nanoseconds())/float64(i), "raw-ns/op")
			b.ReportMetric(float64(cold.Nanoseconds())/float64(i), "cold-ns/op")
			b.ReportMetric(float64(cold)/float64(raw), "cold/raw")
			if rawCPU > 0 {
				b.ReportMetric(float64(rawCPU.Nanoseconds())/float64(i), "raw-cpu-ns/op")
				b.ReportMetric(float64(coldCPU.Nanoseconds())/float64(i), "cold-cpu-ns/op")
				b.ReportMetric(float64(coldCPU)/float64(rawCPU), "cold/raw-cpu")
			}
		})
	}
}
