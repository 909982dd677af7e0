package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// newStaticJWKS serves one public key with the given kid and alg.
func newStaticJWKS(t *testing.T, priv crypto.Signer, kid, alg string) *httptest.Server {
	t.Helper()
	k, err := jwk.Import(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, kid)
	if alg != "" {
		_ = k.Set("alg", alg)
	}
	set := jwk.NewSet()
	_ = set.AddKey(k)
	body, err := jsonMarshal(set)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// signRaw signs an arbitrary header and payload text with an ES256 key, for
// payloads no well-behaved minting library would produce.
func signRaw(t *testing.T, key *ecdsa.PrivateKey, header, payload string) string {
	t.Helper()
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	d := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestDuplicateClaimsAndHeadersRejected(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks := newStaticJWKS(t, key, "k1", "ES256")
	const iss = "https://idp.example"
	v, err := NewVerifier(Config{Issuer: iss, Audience: []string{testResource}, JWKSURL: jwks.URL, HTTPClient: jwks.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	exp := time.Now().Add(time.Hour).Unix()
	hdr := `{"alg":"ES256","kid":"k1","typ":"at+jwt"}`
	good := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"alice","exp":%d}`, iss, testResource, exp)
	if _, err := v.Verify(context.Background(), signRaw(t, key, hdr, good)); err != nil {
		t.Fatalf("well-formed token: %v", err)
	}
	dupSub := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"alice","exp":%d,"sub":"admin"}`, iss, testResource, exp)
	if _, err := v.Verify(context.Background(), signRaw(t, key, hdr, dupSub)); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("duplicate sub accepted: %v", err)
	}
	caseSub := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"alice","exp":%d,"Sub":"admin"}`, iss, testResource, exp)
	if _, err := v.Verify(context.Background(), signRaw(t, key, hdr, caseSub)); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("case-variant sub accepted: %v", err)
	}
	dupAlg := `{"alg":"ES256","kid":"k1","alg":"none"}`
	if _, err := v.Verify(context.Background(), signRaw(t, key, dupAlg, good)); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("duplicate header alg accepted: %v", err)
	}
	exact := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"alice","exp":%d}`, iss, testResource, time.Now().Add(-2*time.Minute).Unix())
	if _, err := v.Verify(context.Background(), signRaw(t, key, hdr, exact)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired (exp+leeway passed): %v", err)
	}
	within := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"alice","exp":%d}`, iss, testResource, time.Now().Add(-30*time.Second).Unix())
	if _, err := v.Verify(context.Background(), signRaw(t, key, hdr, within)); err != nil {
		t.Fatalf("expired within leeway rejected: %v", err)
	}
}

// newStaticJWKSNoT is newStaticJWKS for fuzz setup, where no *testing.T exists yet.
func newStaticJWKSNoT(priv crypto.Signer, kid, alg string) *httptest.Server {
	k, err := jwk.Import(priv.Public())
	if err != nil {
		panic(err)
	}
	_ = k.Set(jwk.KeyIDKey, kid)
	_ = k.Set("alg", alg)
	set := jwk.NewSet()
	_ = set.AddKey(k)
	body, _ := json.Marshal(set)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(body)
	}))
}

func signRS256(key *rsa.PrivateKey, header, payload string) string {
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	d := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:])
	if err != nil {
		panic(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}
