package interop

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// tsResult is what tsclient.mjs prints.
type tsResult struct {
	Tools []string `json:"tools"`
	Calls []struct {
		Name    string `json:"name"`
		IsError bool   `json:"isError"`
		Text    string `json:"text"`
		Error   string `json:"error"`
	} `json:"calls"`
	Authorizations []struct {
		Scope    string `json:"scope"`
		Resource string `json:"resource"`
	} `json:"authorizations"`
	HTTP []exchange `json:"http"`
	// Refresh is set when the configuration asked for a refresh.
	Refresh *tsRefresh `json:"refresh"`
}

// tsRefresh is the outcome of the SDK's auth() run again with the tokens it
// holds, and of the calls made after it.
type tsRefresh struct {
	Result          string `json:"result"`          // AUTHORIZED or REDIRECT
	Login           bool   `json:"login"`           // the SDK sent the user to log in again
	NewAccessToken  bool   `json:"newAccessToken"`  // the access token changed
	NewRefreshToken bool   `json:"newRefreshToken"` // the refresh token was rotated
	Calls           []struct {
		Name    string `json:"name"`
		IsError bool   `json:"isError"`
		Text    string `json:"text"`
		Error   string `json:"error"`
	} `json:"calls"`
}

// exchange is one HTTP request a client made and its status.
type exchange struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	Status int    `json:"status"`
}

func (e exchange) String() string { return fmt.Sprintf("%s %s %d", e.Method, e.URL, e.Status) }

type toolCall struct {
	Name      string         `json:"name"`
	Arguments map[string]any `json:"arguments,omitempty"`
}

// runTSClient runs tsclient.mjs with cfg and decodes its report.
func runTSClient(t *testing.T, cfg map[string]any) *tsResult {
	t.Helper()
	out, err := runNodeStdin(t, 90*time.Second, mustJSON(t, cfg), "tsclient.mjs")
	if err != nil {
		t.Fatalf("tsclient.mjs: %v", err)
	}
	var r tsResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("tsclient.mjs output: %v", err)
	}
	t.Logf("TypeScript SDK HTTP exchanges:\n%s", formatExchanges(r.HTTP))
	return &r
}

func formatExchanges(xs []exchange) string {
	var b strings.Builder
	for _, x := range xs {
		fmt.Fprintf(&b, "  %s\n", x)
	}
	return b.String()
}

// assertSequence checks that want occurs in got in this order (other
// exchanges may come between), each given as "METHOD URL STATUS".
func assertSequence(t *testing.T, got []exchange, want ...string) {
	t.Helper()
	i := 0
	for _, x := range got {
		if i < len(want) && x.String() == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("HTTP exchanges lack %q (in order); got:\n%s", want[i], formatExchanges(got))
	}
}

// TestTypeScriptSDK: the official TypeScript SDK client, with its own
// OAuth implementation, against examples/gosdk (authn + Cedar authz)
// trusting oidc-provider: probe → 401 → PRM → AS metadata → (DCR) → token →
// tools/list, filtered per caller → tools/call, with each of its three
// client authentications; the user's call of write_note without notes:write
// gets 403 insufficient_scope, and the SDK steps up (a second authorization
// asking for the scopes the challenge names) and succeeds.
func TestTypeScriptSDK(t *testing.T) {
	s := startGoSDK(t)
	md := s.idp.Issuer + "/.well-known/oauth-authorization-server"
	prmURL := strings.Replace(s.resource, "/mcp", "/.well-known/oauth-protected-resource/mcp", 1)
	probe := []string{"POST " + s.resource + " 401", "GET " + prmURL + " 200", "GET " + md + " 200"}

	t.Run("authorization code, DCR, PKCE, step-up", func(t *testing.T) {
		r := runTSClient(t, map[string]any{
			"url": s.resource, "issuer": s.idp.Issuer, "flow": "authorization_code", "user": "alice", "redirect": clientRedir,
			"calls": []toolCall{{Name: "whoami"}, {Name: "write_note", Arguments: map[string]any{"text": "hello"}}},
		})
		if !slices.Equal(r.Tools, []string{"echo", "whoami", "write_note"}) {
			t.Errorf("tools/list = %v, want admin_reset filtered out", r.Tools)
		}
		if len(r.Calls) != 2 || !strings.Contains(r.Calls[0].Text, `"subject":"alice"`) ||
			r.Calls[1].Text != "note stored for alice: hello" {
			t.Errorf("tools/call results = %+v", r.Calls)
		}
		if len(r.Authorizations) != 2 || r.Authorizations[0].Scope != scopeRead ||
			!slices.Equal(strings.Fields(r.Authorizations[1].Scope), []string{scopeRead, scopeNotes}) {
			t.Errorf("authorization requests = %+v, want %q then a step-up for %q", r.Authorizations, scopeRead, scopeRead+" "+scopeNotes)
		}
		for _, a := range r.Authorizations {
			if a.Resource != s.resource {
				t.Errorf("authorization request resource = %q, want %q", a.Resource, s.resource)
			}
		}
		assertSequence(t, r.HTTP, append(probe,
			"POST "+s.idp.Issuer+"/reg 201",
			"POST "+s.idp.Issuer+"/token 200",
			"POST "+s.resource+" 200",
			"POST "+s.resource+" 403",
			"POST "+s.idp.Issuer+"/token 200",
			"POST "+s.resource+" 200",
		)...)
	})

	for _, tc := range []struct {
		name, client string
		cfg          map[string]any
		tools        []string
	}{
		{"client_credentials", ccClient,
			map[string]any{"flow": "client_credentials", "clientId": ccClient, "clientSecret": ccSecret, "scope": scopeRead},
			[]string{"admin_reset", "echo", "whoami", "write_note"}},
		{"private_key_jwt", pkjwtClient,
			map[string]any{"flow": "private_key_jwt", "clientId": pkjwtClient, "privateKey": s.jwk, "alg": "ES256", "scope": scopeRead},
			[]string{"echo", "whoami", "write_note"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg["url"], tc.cfg["issuer"] = s.resource, s.idp.Issuer
			tc.cfg["calls"] = []toolCall{{Name: "whoami"}, {Name: "echo", Arguments: map[string]any{"text": "hi from TS"}}}
			r := runTSClient(t, tc.cfg)
			assertSequence(t, r.HTTP, append(probe, "POST "+s.idp.Issuer+"/token 200", "POST "+s.resource+" 200")...)
			if !slices.Equal(r.Tools, tc.tools) {
				t.Errorf("tools/list = %v, want %v", r.Tools, tc.tools)
			}
			if len(r.Calls) != 2 || r.Calls[0].Error != "" || !strings.Contains(r.Calls[0].Text, `"subject":"`+tc.client+`"`) ||
				r.Calls[1].Text != "hi from TS" {
				t.Errorf("tools/call results = %+v", r.Calls)
			}
		})
	}
}
