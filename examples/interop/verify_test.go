package interop

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/prm"
)

// The resources the IdP knows in these tests. Nothing listens at them:
// they are audience values.
const (
	jwtResource    = "http://127.0.0.1:1/mcp"
	otherResource  = "http://127.0.0.1:2/mcp"
	opaqueResource = "http://127.0.0.1:3/mcp"
	redirect       = "http://127.0.0.1:4/callback"
)

// verifierIdP starts an IdP with a JWT resource, a second JWT resource, an
// opaque-token resource, a confidential client "app" and the introspection
// client "rs" (the resource server itself).
func verifierIdP(t *testing.T) *idp {
	return startIdP(t, idpConfig{
		Resources: map[string]resourceServer{
			jwtResource:    {Scope: "tools:read tools:call"},
			otherResource:  {Scope: "tools:read tools:call"},
			opaqueResource: {Scope: "tools:read", Format: "opaque"},
		},
		Clients: []map[string]any{
			confidential("app", "app-secret-0123456789", redirect),
			confidential("rs", "rs-secret-0123456789"),
		},
	})
}

func newVerifier(t *testing.T, cfg authn.Config) *authn.Verifier {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	v, err := authn.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// TestOIDCProviderJWT: oidc-provider's RFC 9068 JWT access tokens, issued
// through RFC 8707 resource indicators, pass authn.Verifier when their aud
// is the server's resource, and fail when issued for another resource,
// expired or tampered with.
func TestOIDCProviderJWT(t *testing.T) {
	p := verifierIdP(t)
	v := newVerifier(t, authn.Config{Issuer: p.Issuer, Audience: []string{jwtResource}, StrictTyp: true})
	ctx := context.Background()

	t.Run("client_credentials", func(t *testing.T) {
		tok := p.clientCredentials(t, "app", "app-secret-0123456789", jwtResource, "tools:read")
		info, err := v.Verify(ctx, tok)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if info.Issuer != p.Issuer || info.Subject != "app" || info.ClientID != "app" ||
			!slices.Equal(info.Audience, []string{jwtResource}) || !slices.Equal(info.Scopes, []string{"tools:read"}) {
			t.Errorf("TokenInfo = %+v", info)
		}
	})

	t.Run("authorization_code", func(t *testing.T) {
		tr := p.authorizationCode(t, "app", "app-secret-0123456789", redirect, jwtResource, "tools:read tools:call", "alice")
		info, err := v.Verify(ctx, tr.AccessToken)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if info.Subject != "alice" || info.ClientID != "app" || !slices.Equal(info.Scopes, []string{"tools:read", "tools:call"}) {
			t.Errorf("TokenInfo = %+v", info)
		}
	})

	t.Run("dynamically registered client", func(t *testing.T) {
		id, secret := p.register(t, map[string]any{
			"client_name":                "interop-dcr",
			"grant_types":                []string{"client_credentials"},
			"response_types":             []string{},
			"redirect_uris":              []string{},
			"token_endpoint_auth_method": "client_secret_basic",
		})
		info, err := v.Verify(ctx, p.clientCredentials(t, id, secret, jwtResource, "tools:call"))
		if err != nil || info.ClientID != id {
			t.Fatalf("Verify: %+v, %v", info, err)
		}
	})

	t.Run("another resource", func(t *testing.T) {
		tok := p.clientCredentials(t, "app", "app-secret-0123456789", otherResource, "tools:read")
		if _, err := v.Verify(ctx, tok); !errors.Is(err, authn.ErrInvalidToken) {
			t.Fatalf("Verify(token for %s) = %v, want ErrInvalidToken", otherResource, err)
		}
	})

	t.Run("expired", func(t *testing.T) {
		tok := p.clientCredentials(t, "app", "app-secret-0123456789", jwtResource, "tools:read")
		// The IdP's tokens live 300 s: seen 10 minutes later, past the
		// 60 s leeway, it has expired.
		later := newVerifier(t, authn.Config{Issuer: p.Issuer, Audience: []string{jwtResource},
			Now: func() time.Time { return time.Now().Add(10 * time.Minute) }})
		if _, err := later.Verify(ctx, tok); !errors.Is(err, authn.ErrExpired) {
			t.Fatalf("Verify(expired) = %v, want ErrExpired", err)
		}
	})

	t.Run("tampered", func(t *testing.T) {
		tok := p.clientCredentials(t, "app", "app-secret-0123456789", jwtResource, "tools:read")
		parts := strings.Split(tok, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims map[string]any
		json.Unmarshal(payload, &claims)
		claims["scope"] = "tools:read tools:call admin"
		forged, _ := json.Marshal(claims)
		sig := []byte(parts[2])
		sig[10] ^= 0x01 // still base64url: 'A'..'z' flip within the alphabet
		for name, bad := range map[string]string{
			"payload":   parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2],
			"signature": parts[0] + "." + parts[1] + "." + string(sig),
		} {
			if _, err := v.Verify(ctx, bad); !errors.Is(err, authn.ErrInvalidToken) {
				t.Errorf("Verify(tampered %s) = %v, want ErrInvalidToken", name, err)
			}
		}
	})
}

// TestOIDCProviderIntrospection: oidc-provider's opaque access tokens are
// accepted through RFC 7662 introspection (the resource server
// authenticating as its own client), and refused once revoked (RFC 7009).
func TestOIDCProviderIntrospection(t *testing.T) {
	p := verifierIdP(t)
	ctx := context.Background()
	// No cache: the revoked token must be asked about again.
	v := newVerifier(t, authn.Config{
		Issuer:         p.Issuer,
		Audience:       []string{opaqueResource},
		TokenCacheSize: -1,
		Introspection:  &authn.IntrospectionConfig{ClientID: "rs", ClientSecret: "rs-secret-0123456789"},
	})
	tok := p.clientCredentials(t, "app", "app-secret-0123456789", opaqueResource, "tools:read")
	if strings.Count(tok, ".") == 2 {
		t.Fatal("the opaque resource's token is a JWS")
	}
	info, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("Verify(opaque): %v", err)
	}
	if info.Subject != "" && info.Subject != "app" || info.ClientID != "app" || !slices.Equal(info.Scopes, []string{"tools:read"}) {
		t.Errorf("TokenInfo = %+v", info)
	}

	// An opaque token for another audience is refused even though active.
	jwtOnly := newVerifier(t, authn.Config{Issuer: p.Issuer, Audience: []string{jwtResource}, TokenCacheSize: -1,
		Introspection: &authn.IntrospectionConfig{ClientID: "rs", ClientSecret: "rs-secret-0123456789"}})
	if _, err := jwtOnly.Verify(ctx, tok); !errors.Is(err, authn.ErrInvalidToken) {
		t.Errorf("Verify(opaque token for another resource) = %v, want ErrInvalidToken", err)
	}

	p.revoke(t, "app", "app-secret-0123456789", tok)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, authn.ErrInvalidToken) {
		t.Fatalf("Verify(revoked) = %v, want ErrInvalidToken", err)
	}
}

// TestOIDCProviderProtect: middleware.Protect around a handler, over
// loopback HTTP, lets the IdP's token for this resource through and answers
// the others with RFC 6750 challenges.
func TestOIDCProviderProtect(t *testing.T) {
	p := verifierIdP(t)
	v := newVerifier(t, authn.Config{Issuer: p.Issuer, Audience: []string{jwtResource}})
	h, err := middleware.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := authn.FromContext(r.Context())
		io.WriteString(w, info.Subject)
	}), middleware.Config{
		Metadata: prm.Metadata{Resource: jwtResource, AuthorizationServers: []string{p.Issuer}},
		Verifier: v,
		Authn:    authn.Options{Scopes: []string{"tools:call"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	call := func(tok string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body)
	}
	user := p.authorizationCode(t, "app", "app-secret-0123456789", redirect, jwtResource, "tools:call", "bob")
	if code, _, body := call(user.AccessToken); code != http.StatusOK || body != "bob" {
		t.Errorf("own token: HTTP %d %q, want 200 bob", code, body)
	}
	if code, ch, _ := call(""); code != http.StatusUnauthorized || !strings.Contains(ch, `resource_metadata="`) || strings.Contains(ch, "error=") {
		t.Errorf("no token: HTTP %d %s", code, ch)
	}
	other := p.clientCredentials(t, "app", "app-secret-0123456789", otherResource, "tools:call")
	if code, ch, _ := call(other); code != http.StatusUnauthorized || !strings.Contains(ch, `error="invalid_token"`) {
		t.Errorf("token for another resource: HTTP %d %s", code, ch)
	}
	readOnly := p.clientCredentials(t, "app", "app-secret-0123456789", jwtResource, "tools:read")
	if code, ch, _ := call(readOnly); code != http.StatusForbidden || !strings.Contains(ch, `error="insufficient_scope"`) ||
		!strings.Contains(ch, `scope="tools:call"`) {
		t.Errorf("token without tools:call: HTTP %d %s", code, ch)
	}
}
