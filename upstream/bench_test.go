package upstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
)

const benchResource = "https://mcp.example.com/mcp"

// benchServer is a Server with one public client, behind a loopback
// listener so authn can fetch its JWKS.
func benchServer(b *testing.B) (*Server, *httptest.Server) {
	b.Helper()
	var s *Server
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.ServeHTTP(w, r) }))
	var err error
	s, err = NewServer(Config{
		Issuer: "http://" + ts.Listener.Addr().String(), Resources: []string{benchResource},
		Upstreams: []Provider{{Name: "corp", Type: OIDC, Issuer: "https://idp.example.com", ClientID: "x"}},
		Clients:   []Client{{ID: "app", RedirectURIs: []string{"http://127.0.0.1/cb"}}},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	ts.Start()
	b.Cleanup(ts.Close)
	return s, ts
}

func challengeOf(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func postToken(s *Server, form string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, s.cfg.Issuer+"/token", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

// BenchmarkTokenCode is the token endpoint redeeming an authorization code
// (client auth none, single-use consume, PKCE, refresh family, signing).
func BenchmarkTokenCode(b *testing.B) {
	s, _ := benchServer(b)
	ctx := context.Background()
	verifier := strings.Repeat("v", 43)
	ch := challengeOf(verifier)
	forms := make([]string, b.N)
	for i := range b.N {
		code := "code-" + strconv.Itoa(i)
		_ = s.store.PutCode(ctx, hashKey("code", code), &Code{ClientID: "app", RedirectURI: "http://127.0.0.1/cb",
			CodeChallenge: ch, Scope: "mcp:tools", Resource: benchResource, Subject: "corp:alice", TSID: "t" + strconv.Itoa(i),
			FamilyID: "f" + strconv.Itoa(i)}, time.Hour)
		forms[i] = url.Values{"grant_type": {"authorization_code"}, "client_id": {"app"}, "code": {code},
			"redirect_uri": {"http://127.0.0.1/cb"}, "code_verifier": {verifier}}.Encode()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if w := postToken(s, forms[i]); w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkTokenRefresh is the token endpoint rotating a refresh token.
func BenchmarkTokenRefresh(b *testing.B) {
	s, _ := benchServer(b)
	ctx := context.Background()
	forms := make([]string, b.N)
	_ = s.store.PutSession(ctx, &Session{TSID: "t", AccessToken: "up"}, time.Hour)
	now := time.Now()
	for i := range b.N {
		fid := "f" + strconv.Itoa(i)
		rt := fid + ".secret"
		_ = s.store.PutFamily(ctx, &Family{ID: fid, ClientID: "app", Subject: "corp:alice", Scope: "mcp:tools",
			Resource: benchResource, TSID: "t", Current: hashKey("refresh", rt), ExpiresAt: now.Add(time.Hour)}, time.Hour)
		forms[i] = url.Values{"grant_type": {"refresh_token"}, "client_id": {"app"}, "refresh_token": {rt}}.Encode()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if w := postToken(s, forms[i]); w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkSignAccessToken is the JWT signing inside both grants.
func BenchmarkSignAccessToken(b *testing.B) {
	s, _ := benchServer(b)
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.accessToken("app", "corp:alice", "mcp:tools", benchResource, "tsid", now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawES256Sign is the bare crypto of one ES256 signature.
func BenchmarkRawES256Sign(b *testing.B) {
	s, _ := benchServer(b)
	k := s.keys.active.signer.(*ecdsa.PrivateKey)
	digest := sha256.Sum256([]byte("header.payload"))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := ecdsa.SignASN1(rand.Reader, k, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawES256Verify is the bare crypto of one ES256 verification.
func BenchmarkRawES256Verify(b *testing.B) {
	s, _ := benchServer(b)
	k := s.keys.active.signer.(*ecdsa.PrivateKey)
	digest := sha256.Sum256([]byte("header.payload"))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, digest[:])
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if !ecdsa.VerifyASN1(&k.PublicKey, digest[:], sig) {
			b.Fatal("bad")
		}
	}
}

// BenchmarkVerifyIssuedToken is authn verifying an issued access token,
// uncached (every call checks the signature) and cached.
func BenchmarkVerifyIssuedToken(b *testing.B) {
	s, _ := benchServer(b)
	tok, err := s.accessToken("app", "corp:alice", "mcp:tools", benchResource, "tsid", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		cache int
	}{{"uncached", -1}, {"cached", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			v, err := authn.NewVerifier(authn.Config{Issuer: s.cfg.Issuer, Audience: []string{benchResource},
				TokenCacheSize: tc.cache, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer v.Close()
			if _, err := v.Verify(context.Background(), tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := v.Verify(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
