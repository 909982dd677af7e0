package credentials_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/credentials"
)

func ExampleSecret() {
	key := credentials.NewSecret("sk-live-example")
	fmt.Println(key)
	fmt.Printf("%#v %q %x\n", key, key, key)
	b, _ := json.Marshal(map[string]any{"api_key": key})
	fmt.Println(string(b))
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // stable output
			}
			return a
		},
	}))
	log.Info("calling backend", "key", key)
	fmt.Println(len(key.Reveal())) // Reveal is the only way to the value
	// Output:
	// [REDACTED]
	// credentials.Secret([REDACTED]) "[REDACTED]" [REDACTED]
	// {"api_key":"[REDACTED]"}
	// level=INFO msg="calling backend" key=[REDACTED]
	// 15
}

func ExampleNewTransport() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("Authorization") == "Bearer example-api-token")
	}))
	defer backend.Close()

	tr, err := credentials.NewTransport(credentials.Config{
		Secret: credentials.Literal("example-api-token"), // or Env("API_TOKEN"), File("/run/secrets/api")
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: tr}
	resp, err := client.Get(backend.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var ok string
	_, _ = fmt.Fscan(resp.Body, &ok)
	fmt.Println("backend saw the bearer token:", ok)
	// Output: backend saw the bearer token: true
}

func ExampleNewTransport_apiKeyHeader() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("X-API-Key") == "example-key")
	}))
	defer backend.Close()

	tr, _ := credentials.NewTransport(credentials.Config{
		Scheme: credentials.Header,
		Header: "X-API-Key",
		Secret: credentials.Literal("example-key"),
	}, nil)
	resp, err := (&http.Client{Transport: tr}).Get(backend.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var ok string
	_, _ = fmt.Fscan(resp.Body, &ok)
	fmt.Println("backend saw the API key:", ok)

	_, err = credentials.NewTransport(credentials.Config{
		Scheme: credentials.Header,
		Header: "Proxy-Authorization",
		Secret: credentials.Literal("example-key"),
	}, nil)
	fmt.Println(err)
	// Output:
	// backend saw the API key: true
	// credentials: refusing to set Proxy-Authorization: hop-by-hop header (RFC 9110 §7.6.1)
}

func ExampleFile() {
	dir, _ := os.MkdirTemp("", "secret")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "token")
	_ = os.WriteFile(path, []byte("first\n"), 0o600)

	// Check for changes on every call; the default checks at most once a second.
	src := credentials.FileWithOptions(path, credentials.FileOptions{CheckInterval: -1})
	s, _ := src.Secret(context.Background())
	fmt.Println(s.Reveal() == "first")

	// Rotate: write a new file and rename it over the old one.
	_ = os.WriteFile(path+".new", []byte("second\n"), 0o600)
	_ = os.Rename(path+".new", path)
	s, _ = src.Secret(context.Background())
	fmt.Println(s.Reveal() == "second")

	_, err := credentials.File(filepath.Join(dir, "missing")).Secret(context.Background())
	fmt.Println(errors.Is(err, os.ErrNotExist))
	// Output:
	// true
	// true
	// true
}

func ExampleEnvPairs() {
	pairs, err := credentials.EnvPairs(context.Background(), map[string]credentials.Source{
		"GITHUB_TOKEN": credentials.Literal("example-token"),
		"API_USER":     credentials.Literal("svc"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// cmd.Env = append(cmd.Environ(), pairs...); never log pairs.
	for _, p := range pairs {
		k, _, _ := strings.Cut(p, "=")
		fmt.Println(k)
	}
	_, err = credentials.EnvPairs(context.Background(), map[string]credentials.Source{
		"API_KEY": credentials.Env("UNSET_VARIABLE_FOR_EXAMPLE"),
	})
	fmt.Println(err)
	// Output:
	// API_USER
	// GITHUB_TOKEN
	// credentials: environment variable "API_KEY": empty secret: environment variable "UNSET_VARIABLE_FOR_EXAMPLE" is not set
}

// A Source for any secret store is a few lines; return the same Secret
// until the value changes so the Transport's encoded-header cache hits.
func ExampleSourceFunc() {
	vault := map[string]credentials.Secret{"backend": credentials.NewSecret("from-the-vault")}
	src := credentials.SourceFunc(func(ctx context.Context) (credentials.Secret, error) {
		s, ok := vault["backend"]
		if !ok {
			return credentials.Secret{}, errors.New("vault: no secret named backend")
		}
		return s, nil
	})
	tr, err := credentials.NewTransport(credentials.Config{Secret: src}, nil)
	fmt.Println(tr != nil, err)
	// Output: true <nil>
}

func ExampleCheckPassthrough() {
	// In a handler behind authn.Middleware the context carries the caller's
	// identity; here one is built by hand.
	ctx := authn.NewContext(context.Background(),
		(&authn.TokenInfo{Subject: "alice"}).WithToken("the-clients-token"))

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/v1", nil)
	req.Header.Set("Authorization", "Bearer the-clients-token") // forwarding the inbound token
	err := credentials.CheckPassthrough(req)
	fmt.Println(err)
	fmt.Println(errors.Is(err, credentials.ErrTokenPassthrough))

	req.Header.Set("Authorization", "Bearer a-token-for-the-backend")
	fmt.Println(credentials.CheckPassthrough(req))
	// Output:
	// credentials: request carries the inbound access token (token passthrough): header Authorization
	// true
	// <nil>
}

// CheckAtStart makes a mistyped secret path or variable fail when the
// server starts, not at its first backend call. The error names the file or
// variable and what is wrong, never the value.
func ExampleConfig_checkAtStart() {
	_, err := credentials.NewTransport(credentials.Config{
		Secret:       credentials.Env("UNSET_API_TOKEN_FOR_EXAMPLE"),
		CheckAtStart: true,
	}, nil)
	fmt.Println(err)
	// Output:
	// credentials: CheckAtStart: Secret: empty secret: environment variable "UNSET_API_TOKEN_FOR_EXAMPLE" is not set
}
