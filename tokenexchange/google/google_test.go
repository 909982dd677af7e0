package google_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/tokenexchange"
	"github.com/mcpauth-go/mcpauth/tokenexchange/google"
)

func TestSTSPreset(t *testing.T) {
	t.Parallel()
	cfg := google.STS(google.STSConfig{ProjectNumber: "123", PoolID: "pool", ProviderID: "prov"})
	if cfg.TokenURL != "https://sts.googleapis.com/v1/token" ||
		cfg.Audience != "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/prov" ||
		cfg.SubjectTokenType != tokenexchange.TokenTypeJWT || cfg.RequestedTokenType != tokenexchange.TokenTypeAccessToken ||
		!slices.Equal(cfg.Scopes, []string{"https://www.googleapis.com/auth/cloud-platform"}) || cfg.AuthMethod != tokenexchange.None {
		t.Fatalf("STS = %v", cfg)
	}
	if id := google.STS(google.STSConfig{SubjectTokenType: tokenexchange.TokenTypeIDToken}); id.SubjectTokenType != tokenexchange.TokenTypeIDToken {
		t.Errorf("id_token subject type not kept: %v", id.SubjectTokenType)
	}

	// Against a local stand-in: no client credentials, no Authorization header.
	var (
		mu   sync.Mutex
		form url.Values
		hdr  http.Header
	)
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		form, hdr = r.PostForm, r.Header.Clone()
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "federated", "issued_token_type": r.PostForm.Get("requested_token_type"),
			"token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(sts.Close)
	cfg.TokenURL = sts.URL + "/v1/token"
	tr, err := tokenexchange.NewTransport(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := authn.NewContext(context.Background(), (&authn.TokenInfo{Subject: "u", Expiry: time.Now().Add(time.Hour)}).WithToken("jwt-from-oidc-provider"))
	if _, err := tr.Exchange(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if hdr.Get("Authorization") != "" || form.Has("client_id") || form.Has("client_secret") {
		t.Errorf("client credentials sent to Google STS: %v %v", form, hdr)
	}
	if form.Get("subject_token_type") != tokenexchange.TokenTypeJWT || form.Get("scope") != "https://www.googleapis.com/auth/cloud-platform" ||
		form.Get("audience") != "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/prov" ||
		form.Get("subject_token") != "jwt-from-oidc-provider" {
		t.Errorf("form = %v", form)
	}
}
