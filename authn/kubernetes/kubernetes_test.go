package kubernetes_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/kubernetes"
	"github.com/mcpauth-go/mcpauth/authz"
)

const (
	issuer   = "https://kubernetes.default.svc.cluster.local"
	resource = "https://mcp.example.com/mcp"
)

// fakeAPIServer is a Kubernetes API server as far as key discovery goes: it
// serves /openid/v1/jwks and /.well-known/openid-configuration over TLS with
// a certificate of its own CA, only to a caller presenting the current
// service-account token.
type fakeAPIServer struct {
	srv    *httptest.Server
	key    *rsa.PrivateKey
	caFile string

	mu       sync.Mutex
	accepted string   // the bearer token the server accepts
	seen     []string // Authorization headers received
}

func newFakeAPIServer(t *testing.T) *fakeAPIServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAPIServer{key: key, accepted: "pod-token-1"}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.caFile = filepath.Join(t.TempDir(), "ca.crt")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(f.caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeAPIServer) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen = append(f.seen, r.Header.Get("Authorization"))
	ok := r.Header.Get("Authorization") == "Bearer "+f.accepted
	f.mu.Unlock()
	if !ok {
		http.Error(w, `{"kind":"Status","code":401}`, http.StatusUnauthorized)
		return
	}
	switch r.URL.Path {
	case "/openid/v1/jwks":
		pub := f.key.PublicKey
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{
			"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1",
			"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeAPIServer) rotate(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accepted = token
}

func (f *fakeAPIServer) authorizations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

// mint signs a projected service-account token as kube-apiserver does.
func (f *fakeAPIServer) mint(t *testing.T, mut func(map[string]any)) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": issuer, "aud": []string{resource},
		"sub": "system:serviceaccount:team-a:agent",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"jti": "j-1",
		"kubernetes.io": map[string]any{
			"namespace":      "team-a",
			"serviceaccount": map[string]any{"name": "agent", "uid": "sa-uid"},
			"pod":            map[string]any{"name": "agent-7d9", "uid": "pod-uid"},
			"node":           map[string]any{"name": "node-1", "uid": "node-uid"},
		},
	}
	if mut != nil {
		mut(claims)
	}
	h, _ := json.Marshal(map[string]any{"alg": "RS256", "kid": "k1"})
	p, _ := json.Marshal(claims)
	input := b64(h) + "." + b64(p)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, f.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func writeToken(t *testing.T, path, token string) {
	t.Helper()
	// Written then renamed, as the kubelet's atomic writer swaps the file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newVerifier(t *testing.T, f *fakeAPIServer, tokenFile string) *authn.Verifier {
	t.Helper()
	cfg, err := kubernetes.Config(kubernetes.Options{
		Issuer: issuer, Audience: []string{resource},
		APIServer: f.srv.URL, CAFile: f.caFile, TokenFile: tokenFile,
		Verifier: authn.Config{RefreshInterval: time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := authn.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

func TestServiceAccountTokens(t *testing.T) {
	f := newFakeAPIServer(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeToken(t, tokenFile, "pod-token-1")
	v := newVerifier(t, f, tokenFile)
	ctx := context.Background()

	info, err := v.Verify(ctx, f.mint(t, nil))
	if err != nil {
		t.Fatalf("a projected token for this resource: %v", err)
	}
	if got := f.authorizations(); len(got) == 0 || got[0] != "Bearer pod-token-1" {
		t.Fatalf("JWKS fetched with Authorization %q, want the pod's token", got)
	}
	id, ok := kubernetes.IdentityFrom(info)
	want := kubernetes.Identity{Namespace: "team-a", ServiceAccount: "agent", ServiceAccountUID: "sa-uid",
		Pod: "agent-7d9", PodUID: "pod-uid", Node: "node-1"}
	if !ok || id != want {
		t.Fatalf("IdentityFrom = %+v, %v; want %+v", id, ok, want)
	}

	for name, mut := range map[string]func(map[string]any){
		"audience of the API server": func(c map[string]any) { c["aud"] = []string{"https://kubernetes.default.svc.cluster.local"} },
		"another cluster's issuer":   func(c map[string]any) { c["iss"] = "https://other-cluster.example" },
		"expired":                    func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() },
	} {
		if _, err := v.Verify(ctx, f.mint(t, mut)); !errors.Is(err, authn.ErrInvalidToken) {
			t.Errorf("%s: Verify err = %v, want ErrInvalidToken", name, err)
		}
	}
	tok := f.mint(t, nil)
	if _, err := v.Verify(ctx, tok[:len(tok)-4]+"AAAA"); !errors.Is(err, authn.ErrInvalidToken) {
		t.Errorf("tampered signature: err = %v, want ErrInvalidToken", err)
	}
}

// The kubelet rotates the pod's token; the next key fetch must present the
// new one, read from the file without a restart.
func TestTokenFileRotation(t *testing.T) {
	f := newFakeAPIServer(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeToken(t, tokenFile, "pod-token-1")
	v := newVerifier(t, f, tokenFile)
	if _, err := v.Verify(context.Background(), f.mint(t, nil)); err != nil {
		t.Fatal(err)
	}

	f.rotate("pod-token-2")
	writeToken(t, tokenFile, "pod-token-2")
	// An unknown kid makes the verifier refetch the JWKS (RefreshInterval is
	// 1 ms here); the file source re-checks the file at most once a second.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _ = v.Verify(context.Background(), unknownKid(t, f))
		seen := f.authorizations()
		if seen[len(seen)-1] == "Bearer pod-token-2" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after rotation the key fetch still sent %q", seen[len(seen)-1])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// unknownKid returns a token whose kid the key set lacks, forcing a refetch.
func unknownKid(t *testing.T, f *fakeAPIServer) string {
	tok := f.mint(t, nil)
	h, _ := json.Marshal(map[string]any{"alg": "RS256", "kid": "rotated"})
	return b64(h) + tok[strings.IndexByte(tok, '.'):]
}

// A token from another issuer that imitates the claim is not a workload.
func TestIdentityFromRequiresMatchingSubject(t *testing.T) {
	info := &authn.TokenInfo{Subject: "alice", Claims: map[string]any{"kubernetes.io": map[string]any{
		"namespace": "team-a", "serviceaccount": map[string]any{"name": "agent"},
	}}}
	if id, ok := kubernetes.IdentityFrom(info); ok {
		t.Fatalf("IdentityFrom accepted sub %q as %+v", info.Subject, id)
	}
	if _, ok := kubernetes.IdentityFrom(&authn.TokenInfo{Subject: "system:serviceaccount:a:b"}); ok {
		t.Fatal("IdentityFrom accepted a token without the kubernetes.io claim")
	}
}

// The kubernetes.io claims reach Cedar policies.
func TestClaimsInPolicies(t *testing.T) {
	f := newFakeAPIServer(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeToken(t, tokenFile, "pod-token-1")
	v := newVerifier(t, f, tokenFile)
	a, err := authz.New(authz.Config{Policies: `
permit (principal, action == Action::"call_tool", resource == Tool::"deploy")
when { context["claim_kubernetes.io"].namespace == "team-a" &&
       context["claim_kubernetes.io"].serviceaccount.name == "agent" };`})
	if err != nil {
		t.Fatal(err)
	}
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}))
	call := func(token string) int {
		info, err := v.Verify(context.Background(), token)
		if err != nil {
			t.Fatal(err)
		}
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy","arguments":{}}}`
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r = r.WithContext(authn.NewContext(r.Context(), info))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if code := call(f.mint(t, nil)); code != http.StatusOK {
		t.Fatalf("team-a/agent: status %d, want 200", code)
	}
	other := f.mint(t, func(c map[string]any) {
		c["sub"] = "system:serviceaccount:team-b:agent"
		c["kubernetes.io"].(map[string]any)["namespace"] = "team-b"
	})
	if code := call(other); code != http.StatusForbidden {
		t.Fatalf("team-b/agent: status %d, want 403", code)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "token")
	writeToken(t, token, "t")
	for name, tc := range map[string]struct {
		opts kubernetes.Options
		want string
	}{
		"no issuer":    {kubernetes.Options{Audience: []string{resource}}, "Issuer is required"},
		"no audience":  {kubernetes.Options{Issuer: issuer}, "Audience is required"},
		"missing CA":   {kubernetes.Options{Issuer: issuer, Audience: []string{resource}, CAFile: filepath.Join(dir, "none")}, "cluster CA bundle"},
		"CA not PEM":   {kubernetes.Options{Issuer: issuer, Audience: []string{resource}, CAFile: ca}, "holds no PEM certificate"},
		"http API":     {kubernetes.Options{Issuer: issuer, Audience: []string{resource}, APIServer: "http://10.0.0.1"}, "must be an absolute https URL"},
		"no token":     {kubernetes.Options{Issuer: issuer, Audience: []string{resource}, CAFile: "-", TokenFile: filepath.Join(dir, "none")}, "service-account token file"},
		"issuer field": {kubernetes.Options{Issuer: issuer, Audience: []string{resource}, Verifier: authn.Config{Issuer: "x"}}, "must leave Issuer"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := kubernetes.Config(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "kubernetes: ") {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
