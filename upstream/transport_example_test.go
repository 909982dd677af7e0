package upstream_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/upstream"
)

// A tool handler's backend call carries the logged-in user's own upstream
// token. In a real server the Store and the sessions come from
// upstream.NewServer (use TransportConfig{Server: as}), and the identity
// from authn's middleware.
func ExampleNewTransport() {
	store := upstream.NewMemoryStore()
	_ = store.PutSession(context.Background(), &upstream.Session{
		TSID: "s1", Upstream: "github", Subject: "github:42",
		AccessToken: "gho_user_token", RefreshToken: "ghr_user_refresh", Expiry: time.Now().Add(time.Hour),
	}, 30*24*time.Hour)

	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("backend got the user's token:", r.Header.Get("Authorization") == "Bearer gho_user_token")
	}))
	defer api.Close()

	tr, err := upstream.NewTransport(upstream.TransportConfig{
		Store: store,
		Upstreams: map[string]*oauth2.Config{"github": {
			ClientID: "app", ClientSecret: "secret", Endpoint: oauth2.Endpoint{TokenURL: "https://github.com/login/oauth/access_token"},
		}},
	}, nil)
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: tr}

	// What authn's middleware puts in the request context.
	caller := (&authn.TokenInfo{Subject: "github:42", Claims: map[string]any{"tsid": "s1"}}).WithToken("mcp-access-token")
	ctx := authn.NewContext(context.Background(), caller)

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.URL+"/user", nil)
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()

	// Without a verified caller nothing is sent.
	req, _ = http.NewRequest(http.MethodGet, api.URL+"/user", nil)
	_, err = client.Do(req)
	fmt.Println(err != nil)
	// Output:
	// backend got the user's token: true
	// true
}
