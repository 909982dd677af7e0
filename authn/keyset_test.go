package authn

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
)

// Every way the JWKS endpoint can fail, with nothing cached, is an outage
// (ErrUnavailable, so the middleware answers 503), never an invalid token.
func TestJWKSFaultsAreUnavailable(t *testing.T) {
	t.Parallel()
	cases := map[string]idptest.Fault{
		"500":           {Status: 500},
		"404":           {Status: 404},
		"garbage":       {Garbage: true},
		"no keys":       {Body: `{"keys":[]}`},
		"only HMAC key": {Body: `{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}`},
		"oversized":     {Body: `{"keys":[],"pad":"` + strings.Repeat("x", maxJWKSSize) + `"}`},
		"down":          {Down: true},
		"slow":          {Delay: 2 * time.Second},
	}
	for name, fault := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, idptest.Config{}, func(c *Config) { c.FetchTimeout = 300 * time.Millisecond })
			f.idp.SetFault(idptest.EndpointJWKS, fault)
			_, err := f.v.Verify(context.Background(), f.idp.Token(nil))
			if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrUnavailable only", err)
			}
		})
	}
}

// Weak, private-use and wrong-use keys in a JWKS are skipped, and the
// usable ones still work.
func smallRSA(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{
		"kty": "RSA", "kid": "small",
		"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
	})
	return string(b)
}

func TestJWKSSkipsUnusableKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t, idptest.Config{Algorithms: []string{"ES256"}}, nil)
	body := `{"keys":[
		{"kty":"oct","k":"c2VjcmV0","kid":"hmac"},
		` + smallRSA(t) + `,
		{"kty":"EC","crv":"P-256","kid":"enc","use":"enc","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
		{"kty":"EC","crv":"P-256","kid":"good","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
	]}`
	set, err := parseJWKS([]byte(body), nil, f.v.log)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.all) != 1 || set.all[0].kid != "good" {
		kids := []string{}
		for _, k := range set.all {
			kids = append(kids, k.kid)
		}
		t.Fatalf("usable keys = %v, want [good]", kids)
	}
	if got := f.logs.String(); !strings.Contains(got, "skipping JWKS key") {
		t.Fatalf("skipped keys were not logged: %s", got)
	}
}
