package authn

import (
	"context"
	"encoding/base64"
	"errors"
	"hash/maphash"
	"strings"
	"sync"
	"testing"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

// flipSigByte changes one byte of the decoded signature (canonically
// re-encoded, so only the signature differs).
func flipSigByte(tok string, i int) string {
	d := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[d+1:])
	if err != nil {
		panic(err)
	}
	sig[i%len(sig)] ^= 0x01
	return tok[:d+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// TestCacheNeverConfusesTokens forces every token into one hash bucket and
// checks that the cache answers only for the very token it verified: a
// token differing in one signature byte, or being a prefix, is verified in
// full (and fails), and each colliding valid token gets its own identity,
// also under concurrent use.
func TestCacheNeverConfusesTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, nil)
	f.v.cache.hash = func(maphash.Seed, string) uint64 { return 42 } // every token collides
	ctx := context.Background()
	alice := f.idp.Token(map[string]any{"sub": "alice"})
	bob := f.idp.Token(map[string]any{"sub": "bob"})
	for _, step := range []struct{ tok, want string }{{alice, "alice"}, {alice, "alice"}, {bob, "bob"}, {alice, "alice"}, {bob, "bob"}} {
		info, err := f.v.Verify(ctx, step.tok)
		if err != nil || info.Subject != step.want || info.Token() != step.tok {
			t.Fatalf("Verify = %v, %v; want %s", info, err, step.want)
		}
	}
	if _, err := f.v.Verify(ctx, alice); err != nil { // alice is now the cached one
		t.Fatal(err)
	}
	d := strings.LastIndexByte(alice, '.')
	sigLen := base64.RawURLEncoding.DecodedLen(len(alice) - d - 1)
	for _, i := range []int{0, 1, sigLen / 2, sigLen - 1} {
		forged := flipSigByte(alice, i)
		if info, err := f.v.Verify(ctx, forged); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("signature byte %d flipped: Verify = %v, %v; want ErrInvalidToken", i, info, err)
		}
	}
	if info, err := f.v.Verify(ctx, alice[:len(alice)-1]); err == nil {
		t.Fatalf("a prefix of the cached token was accepted as %v", info)
	}

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			tok, want := alice, "alice"
			if g%2 == 1 {
				tok, want = bob, "bob"
			}
			for range 200 {
				info, err := f.v.Verify(ctx, tok)
				if err != nil || info.Subject != want || info.Token() != tok {
					t.Errorf("concurrent Verify = %v, %v; want %s", info, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSameToken(t *testing.T) {
	t.Parallel()
	a := strings.Repeat("eyJhbGciOiJSUzI1NiJ9.", 7) + "xyz" // not a multiple of 8
	if !sameToken(a, strings.Clone(a)) {
		t.Fatal("equal tokens compared unequal")
	}
	for i := range len(a) {
		b := []byte(a)
		b[i] ^= 0x20
		if sameToken(a, string(b)) {
			t.Fatalf("tokens differing at byte %d compared equal", i)
		}
	}
	if sameToken(a, a[:len(a)-1]) || sameToken(a[:len(a)-1], a) || sameToken("", "x") || !sameToken("", "") {
		t.Fatal("length is not compared")
	}
}

// TestHeaderCacheHoldsOnlyVerifiedHeaders: a header is remembered only
// once a token carrying it verified, so forged tokens cannot fill the
// cache, and a remembered header never spares a token its signature check.
func TestHeaderCacheHoldsOnlyVerifiedHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{}, nil)
	ctx := context.Background()
	for i := range 50 {
		kid := "forged-" + strings.Repeat("k", i)
		tok := f.idp.TokenWith(idptest.TokenOptions{Kid: &kid})
		if _, err := f.v.Verify(ctx, tok); err == nil {
			t.Fatal("a token with an unknown kid verified")
		}
	}
	if n := len(f.v.headers.m); n != 0 {
		t.Fatalf("%d headers remembered from tokens that failed", n)
	}
	good := f.idp.Token(map[string]any{"sub": "alice"})
	if _, err := f.v.Verify(ctx, good); err != nil {
		t.Fatal(err)
	}
	if n := len(f.v.headers.m); n != 1 {
		t.Fatalf("%d headers remembered, want 1", n)
	}
	forged := tamper(good) // same header, payload changed: the signature no longer matches
	if _, err := f.v.Verify(ctx, forged); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a token with a remembered header skipped its signature check: %v", err)
	}
	if _, err := f.v.Verify(ctx, flipSigByte(f.idp.Token(map[string]any{"sub": "bob"}), 3)); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("forged signature under a remembered header: %v", err)
	}
}

// TestWarmPathAllocations: a token verified before costs no allocation.
func TestWarmPathAllocations(t *testing.T) {
	f := newFixture(t, idptest.Config{}, nil)
	ctx := context.Background()
	tok := f.idp.Token(nil)
	if _, err := f.v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = f.v.Verify(ctx, tok) }); n > 0 {
		t.Errorf("warm Verify allocates %v times, want 0", n)
	}
}
