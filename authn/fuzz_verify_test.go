package authn

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary bearer tokens to a Verifier that holds one
// RS256 key. Properties: Verify never panics; every error matches exactly
// one of the token sentinels' families (never ErrUnavailable: the keys are
// in hand); and the only token ever accepted is the genuine one
// (RSASSA-PKCS1-v1_5 signatures are not malleable, and the base64url
// decoding is strict, so no other string may verify).
func FuzzVerify(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	jwks := newStaticJWKSNoT(key, "k1", "RS256")
	defer jwks.Close()
	const iss = "https://idp.example"
	v, err := NewVerifier(Config{
		Issuer: iss, Audience: []string{testResource}, JWKSURL: jwks.URL, HTTPClient: jwks.Client(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RefreshInterval: time.Hour,
	})
	if err != nil {
		f.Fatal(err)
	}
	defer v.Close()
	exp := time.Now().Add(24 * time.Hour).Unix()
	genuine := signRS256(key, `{"alg":"RS256","kid":"k1","typ":"at+jwt"}`,
		fmt.Sprintf(`{"iss":%q,"aud":[%q],"sub":"alice","exp":%d,"scope":"a b"}`, iss, testResource, exp))
	if _, err := v.Verify(context.Background(), genuine); err != nil {
		f.Fatalf("genuine token: %v", err)
	}
	f.Add(genuine)
	f.Add(genuine[:len(genuine)-2])
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Add("a.b.c.d.e")
	f.Add("opaque-token")
	f.Fuzz(func(t *testing.T, tok string) {
		info, err := v.Verify(context.Background(), tok)
		if err == nil {
			if tok != genuine {
				t.Fatalf("accepted a token that is not the genuine one: %q", tok)
			}
			if info.Subject != "alice" {
				t.Fatalf("wrong subject %q", info.Subject)
			}
			return
		}
		if errors.Is(err, ErrUnavailable) {
			t.Fatalf("token fault reported as unavailable: %v", err)
		}
		if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrNoToken) {
			t.Fatalf("error outside the sentinel families: %v", err)
		}
	})
}
