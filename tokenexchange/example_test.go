package tokenexchange_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/tokenexchange"
)

// An MCP server calls its backend with a token exchanged for the caller's.
func ExampleNewTransport() {
	// A stand-in STS and backend; in production these are your IdP and API.
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token":      "token-for-" + r.PostForm.Get("audience"),
			"issued_token_type": r.PostForm.Get("requested_token_type"),
			"token_type":        "Bearer",
			"expires_in":        300,
		})
	}))
	defer sts.Close()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend saw %q", r.Header.Get("Authorization"))
	}))
	defer backend.Close()

	tr, err := tokenexchange.NewTransport(tokenexchange.Config{
		TokenURL:     sts.URL,
		ClientID:     "mcp-server",
		ClientSecret: "client-secret",
		Audience:     "orders-api",
		Scopes:       []string{"orders.read"},
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: tr}

	// In an MCP handler the context comes from authn.Middleware; here we
	// build the verified identity by hand.
	info := (&authn.TokenInfo{Subject: "alice", Expiry: time.Now().Add(time.Hour)}).WithToken("the-callers-token")
	ctx := authn.NewContext(context.Background(), info)

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, backend.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))

	// Without a verified identity nothing is sent.
	req, _ = http.NewRequest(http.MethodGet, backend.URL, nil)
	_, err = client.Do(req)
	fmt.Println(errors.Is(err, tokenexchange.ErrNoIdentity))
	// Output:
	// backend saw "Bearer token-for-orders-api"
	// true
}

// A Config prints without its secret.
func ExampleConfig_String() {
	cfg := tokenexchange.Config{TokenURL: "https://sts.example/token", ClientID: "mcp", ClientSecret: "s3cret"}
	fmt.Println(cfg)
	// Output:
	// tokenexchange.Config{TokenURL:"https://sts.example/token" Issuer:"" ClientID:"mcp" ClientSecret:"REDACTED" AuthMethod:"" PrivateKey:"" KeyID:"" Audience:"" Resources:[] Scopes:[] RequestedTokenType:"" SubjectTokenType:"" Header:""}
}

// Exchange and TokenSource give the exchanged token to code that sets
// credentials itself, such as an SDK taking an oauth2.TokenSource.
func ExampleTransport_TokenSource() {
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"exchanged","issued_token_type":%q,"token_type":"Bearer","expires_in":60}`,
			r.PostForm.Get("requested_token_type"))
	}))
	defer sts.Close()
	tr, err := tokenexchange.NewTransport(tokenexchange.Config{TokenURL: sts.URL}, nil)
	if err != nil {
		log.Fatal(err)
	}
	info := (&authn.TokenInfo{Subject: "alice"}).WithToken("the-callers-token")
	ctx := authn.NewContext(context.Background(), info)
	tok, err := tr.TokenSource(ctx).Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.TokenType, tok.AccessToken, tok.Valid())
	// Output:
	// Bearer exchanged true
}
