package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/tokenexchange"
)

// syncBuffer is a bytes.Buffer safe for the servers' goroutines to log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// jwtPattern matches anything shaped like a compact JWS.
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.`)

// TestDemo runs `go run ./examples/federated -demo` in process, end to end
// over loopback; neither output holds a token.
func TestDemo(t *testing.T) {
	t.Parallel()
	var out, errOut syncBuffer
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := run(ctx, []string{"-demo"}, &out, &errOut); err != nil {
		t.Fatalf("demo failed: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"/subject/alice", "attribute condition", "demo OK"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	for name, s := range map[string]string{"stdout": out.String(), "stderr": errOut.String()} {
		if jwtPattern.MatchString(s) || strings.Contains(s, "fed.") {
			t.Errorf("%s contains a token:\n%s", name, s)
		}
	}
}

func startTest(t *testing.T) *example {
	t.Helper()
	ex, err := start("127.0.0.1:0", "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ex.close)
	return ex
}

// callWhoami calls the tool with a raw JSON-RPC request and returns the
// HTTP status, the tool result and its text.
func callWhoami(t *testing.T, ex *example, token string) (int, whoami, string) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cloud_whoami","arguments":{}}}`
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, ex.resource, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, whoami{}, ""
	}
	var rpc struct {
		Result struct {
			IsError           bool                    `json:"isError"`
			Content           []struct{ Text string } `json:"content"`
			StructuredContent whoami                  `json:"structuredContent"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rpc); err != nil {
		t.Fatal(err)
	}
	var text []string
	for _, c := range rpc.Result.Content {
		text = append(text, c.Text)
	}
	if rpc.Result.IsError {
		return resp.StatusCode, whoami{}, strings.Join(text, " ")
	}
	return resp.StatusCode, rpc.Result.StructuredContent, ""
}

// TestFederatedMapping: each caller reaches the API as their own mapped
// principal, with the federated token only.
func TestFederatedMapping(t *testing.T) {
	t.Parallel()
	ex := startTest(t)
	for _, sub := range []string{"alice", "carol", "alice"} {
		tok := ex.userToken(sub, "eng", requiredGroup)
		status, w, errText := callWhoami(t, ex, tok)
		want := "principal://iam.googleapis.com/projects/" + projectNumber + "/locations/global/workloadIdentityPools/" + poolID + "/subject/" + sub
		if status != http.StatusOK || errText != "" || w.Principal != want {
			t.Fatalf("%s: status %d, %+v, error %q; want principal %s", sub, status, w, errText, want)
		}
		if len(w.Scopes) != 1 || w.Scopes[0] != "https://www.googleapis.com/auth/cloud-platform" {
			t.Errorf("%s: scopes %v, want the preset's cloud-platform", sub, w.Scopes)
		}
		if ex.google.wasShown(tok) {
			t.Fatalf("%s: the API was shown the caller's own token", sub)
		}
	}
}

// TestConditionRefuses: a caller outside the required group is refused by
// the STS and never reaches the API; a token for another audience never
// reaches the STS.
func TestConditionRefuses(t *testing.T) {
	t.Parallel()
	ex := startTest(t)
	status, _, errText := callWhoami(t, ex, ex.userToken("bob", "contractors"))
	if status != http.StatusOK || !strings.Contains(errText, "invalid_grant") {
		t.Fatalf("bob: status %d, tool error %q; want a tool error with invalid_grant", status, errText)
	}
	if ex.google.apiCalls() != 0 {
		t.Error("the API was called for a refused caller")
	}
	other := ex.idp.Token(map[string]any{"sub": "alice", "aud": "http://127.0.0.1:1/other", "groups": []string{requiredGroup}})
	if status, _, _ := callWhoami(t, ex, other); status != http.StatusUnauthorized {
		t.Errorf("token for another audience: status %d, want 401", status)
	}
}

// TestFakeSTSRefuses keeps the fake honest: what the real STS refuses, it
// refuses, so a successful exchange above proves the preset's request shape.
func TestFakeSTSRefuses(t *testing.T) {
	t.Parallel()
	ex := startTest(t)
	good := url.Values{
		"grant_type":           {tokenexchange.GrantType},
		"audience":             {ex.google.provider},
		"requested_token_type": {tokenexchange.TokenTypeAccessToken},
		"subject_token_type":   {tokenexchange.TokenTypeJWT},
		"scope":                {"https://www.googleapis.com/auth/cloud-platform"},
		"subject_token":        {ex.userToken("alice", requiredGroup)},
	}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range good {
			f[kk] = vv
		}
		f.Set(k, v)
		return f
	}
	for _, tc := range []struct {
		name     string
		form     url.Values
		basic    bool
		wantCode string
	}{
		{"valid", good, false, ""},
		{"client authentication", good, true, "invalid_request"},
		{"another provider", with("audience", ex.google.pool+"/providers/other"), false, "invalid_target"},
		{"no scope", with("scope", ""), false, "invalid_scope"},
		{"token for another audience", with("subject_token", ex.idp.Token(map[string]any{"aud": "https://elsewhere.example", "groups": []string{requiredGroup}})), false, "invalid_grant"},
		{"forged subject token", with("subject_token", good.Get("subject_token")[:len(good.Get("subject_token"))-4]+"AAAA"), false, "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, ex.google.tokenURL(), strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.basic {
				req.SetBasicAuth("client", "secret")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error       string `json:"error"`
				AccessToken string `json:"access_token"`
			}
			json.NewDecoder(resp.Body).Decode(&body)
			if tc.wantCode == "" {
				if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
					t.Fatalf("status %d, error %q; want a token", resp.StatusCode, body.Error)
				}
				return
			}
			if resp.StatusCode != http.StatusBadRequest || body.Error != tc.wantCode {
				t.Errorf("status %d, error %q; want 400 %s", resp.StatusCode, body.Error, tc.wantCode)
			}
		})
	}
}

// TestUsage checks the printed instructions: both printed tokens behave as
// the text says (TOKEN is mapped, OTHER is refused by the condition).
func TestUsage(t *testing.T) {
	t.Parallel()
	ex := startTest(t)
	var out bytes.Buffer
	ex.printUsage(&out)
	for _, want := range []string{ex.resource, ex.google.tokenURL(), ex.google.provider, `"name":"cloud_whoami"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
	tokens := map[string]string{}
	for _, m := range regexp.MustCompile(`(TOKEN|OTHER)='([^']+)'`).FindAllStringSubmatch(out.String(), -1) {
		tokens[m[1]] = m[2]
	}
	if _, w, e := callWhoami(t, ex, tokens["TOKEN"]); !strings.HasSuffix(w.Principal, "/subject/dev-user") {
		t.Errorf("printed TOKEN: %+v, error %q; want dev-user's principal", w, e)
	}
	if _, _, e := callWhoami(t, ex, tokens["OTHER"]); !strings.Contains(e, "invalid_grant") {
		t.Errorf("printed OTHER: error %q, want invalid_grant", e)
	}
}

// TestExternalIssuer: with -issuer, the MCP server and the fake STS trust
// that issuer (the embedded IdP does not run); the usage prints no token.
func TestExternalIssuer(t *testing.T) {
	t.Parallel()
	ext := idptest.NewServer(t, idptest.Config{})
	ex, err := start("127.0.0.1:0", ext.Issuer(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ex.close)
	if ex.idp != nil {
		t.Fatal("the embedded IdP runs with -issuer")
	}
	tok := ext.Token(map[string]any{"sub": "erin", "aud": ex.resource, "groups": []string{requiredGroup}})
	if _, w, e := callWhoami(t, ex, tok); !strings.HasSuffix(w.Principal, "/subject/erin") {
		t.Fatalf("external token: %+v, error %q; want erin's principal", w, e)
	}
	var out bytes.Buffer
	ex.printUsage(&out)
	if jwtPattern.MatchString(out.String()) || !strings.Contains(out.String(), "your access token") {
		t.Errorf("usage with -issuer prints a token or lacks the instructions:\n%s", out.String())
	}
	if err := run(t.Context(), []string{"-demo", "-issuer", ext.Issuer()}, io.Discard, io.Discard); err == nil {
		t.Error("-demo with -issuer was accepted")
	}
}
