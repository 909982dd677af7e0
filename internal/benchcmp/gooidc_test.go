package benchcmp

import (
	"context"
	"crypto"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
)

// setupGoOIDC uses go-oidc v3's IDTokenVerifier with a StaticKeySet holding
// the pre-parsed key, the audience as ClientID and the alg allow-list.
// Verify checks the signature, iss, aud and exp (a missing exp reads as
// expired). It decodes only the registered claims; reading client_id or
// scope would take a second decode (IDToken.Claims), which is not timed.
func setupGoOIDC(tb testing.TB, f *fixture) verifyFunc {
	v := oidc.NewVerifier(f.issuer, &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{f.key}}, &oidc.Config{
		ClientID:             audience,
		SupportedSigningAlgs: []string{f.alg},
	})
	ctx := context.Background()
	return func(tok string) error {
		_, err := v.Verify(ctx, tok)
		return err
	}
}
