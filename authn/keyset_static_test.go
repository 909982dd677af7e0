package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

// noNetwork is an HTTP client that fails the test on any request.
func noNetwork(t *testing.T) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		t.Errorf("unexpected request to %s", r.URL)
		return nil, errors.New("no network in this test")
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func esPayload(iss, sub string) string {
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	return `{"iss":"` + iss + `","aud":"` + testResource + `","sub":"` + sub + `","exp":` + exp + `}`
}

// TestStaticKeySet: with Config.KeySet a Verifier verifies with the given
// keys and never touches the network; tokens of other keys, and keys of a
// type that does not suit the alg, are refused.
func TestStaticKeySet(t *testing.T) {
	t.Parallel()
	const iss = "https://idp.example.com"
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	static, err := NewStaticKeySet(&rsaKey.PublicKey, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, ks := range map[string]KeySet{
		"static": static,
		"func": KeySetFunc(func(_ context.Context, kid, alg string) ([]crypto.PublicKey, error) {
			return []crypto.PublicKey{&rsaKey.PublicKey, &key.PublicKey}, nil
		}),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v, err := NewVerifier(Config{Issuer: iss, Audience: []string{testResource}, KeySet: ks, HTTPClient: noNetwork(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			ctx := context.Background()
			if err := v.Ready(ctx); err != nil {
				t.Fatalf("Ready: %v", err)
			}
			for _, hdr := range []string{`{"alg":"ES256"}`, `{"alg":"ES256","kid":"any"}`} {
				info, err := v.Verify(ctx, signRaw(t, key, hdr, esPayload(iss, "alice")))
				if err != nil || info.Subject != "alice" {
					t.Fatalf("header %s: Verify = %v, %v", hdr, info, err)
				}
			}
			if _, err := v.Verify(ctx, signRaw(t, other, `{"alg":"ES256"}`, esPayload(iss, "mallory"))); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("token of another key: %v", err)
			}
		})
	}

	if _, err := NewStaticKeySet(); err == nil {
		t.Error("NewStaticKeySet accepted no keys")
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := NewStaticKeySet(&small.PublicKey); err == nil {
		t.Error("NewStaticKeySet accepted a 1024-bit RSA key")
	}
	if _, err := NewStaticKeySet(key); err == nil {
		t.Error("NewStaticKeySet accepted a private key")
	}
	if _, err := NewVerifier(Config{Issuer: iss, Audience: []string{testResource}, KeySet: static, JWKSURL: iss + "/jwks"}); err == nil {
		t.Error("NewVerifier accepted both KeySet and JWKSURL")
	}
}

// TestParseJWKS: a StaticKeySet from a JWKS document selects keys by kid,
// and verifies idptest's tokens without fetching anything.
func TestParseJWKS(t *testing.T) {
	t.Parallel()
	idp := idptest.NewServer(t, idptest.Config{Algorithms: []string{"ES256", "RS256"}, Audience: []string{testResource}})
	ks, err := ParseJWKS(idp.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(Config{Issuer: idp.Issuer(), Audience: []string{testResource}, KeySet: ks, HTTPClient: noNetwork(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, alg := range []string{"ES256", "RS256"} {
		if _, err := v.Verify(context.Background(), idp.TokenWith(idptest.TokenOptions{Alg: alg})); err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
	}
	unknown := "unknown"
	if _, err := v.Verify(context.Background(), idp.TokenWith(idptest.TokenOptions{Kid: &unknown})); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("unknown kid: %v", err)
	}
	if n := idp.Requests(idptest.EndpointJWKS) + idp.Requests(idptest.EndpointDiscovery); n != 0 {
		t.Fatalf("%d requests to the IdP", n)
	}
	if _, err := ParseJWKS([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)); err == nil {
		t.Error("ParseJWKS accepted a JWKS without a usable key")
	}
}

// TestCustomKeySetFaults: a KeySet error is an outage, never an invalid
// token; a key of the wrong type for the alg is never used.
func TestCustomKeySetFaults(t *testing.T) {
	t.Parallel()
	const iss = "https://idp.example.com"
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	tok := signRaw(t, key, `{"alg":"ES256","kid":"k"}`, esPayload(iss, "alice"))
	for name, tt := range map[string]struct {
		ks   KeySetFunc
		want error
	}{
		"error":  {func(context.Context, string, string) ([]crypto.PublicKey, error) { return nil, errors.New("down") }, ErrUnavailable},
		"no key": {func(context.Context, string, string) ([]crypto.PublicKey, error) { return nil, nil }, ErrInvalidToken},
		"wrong type": {func(context.Context, string, string) ([]crypto.PublicKey, error) {
			return []crypto.PublicKey{&rsaKey.PublicKey}, nil
		}, ErrInvalidToken},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v, err := NewVerifier(Config{Issuer: iss, Audience: []string{testResource}, KeySet: tt.ks, HTTPClient: noNetwork(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, tt.want) || (tt.want == ErrUnavailable && errors.Is(err, ErrInvalidToken)) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
