package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/credentials"
	"github.com/mcpauth-go/mcpauth/middleware"
	"github.com/mcpauth-go/mcpauth/prm"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// example is everything running: the IdP, the backend API and the MCP
// server, each on its own loopback port.
type example struct {
	issuer   string          // the one issuer trusted
	idp      *idptest.Server // the embedded IdP; nil with -issuer
	backend  *backend
	tmpDir   string // the default key file's directory, removed by close
	resource string // the MCP server's resource URI: the audience of inbound tokens
	verifier *authn.Verifier
	mcpSrv   *http.Server
}

// start runs the servers; the MCP server listens on o.addr. The caller must
// call close.
func start(o options, logger *slog.Logger) (_ *example, err error) {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, err
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("listening on %s: this example serves plain http and must stay on loopback", ln.Addr())
	}
	ex := &example{resource: "http://" + ln.Addr().String() + "/mcp"}
	defer func() {
		if err != nil {
			ln.Close()
			ex.close()
		}
	}()
	keyFile := o.keyFile
	if keyFile == "" {
		if ex.tmpDir, err = os.MkdirTemp("", "mcpauth-static-credentials-"); err != nil {
			return nil, err
		}
		keyFile = filepath.Join(ex.tmpDir, "api-key")
	}
	if ex.backend, err = startBackend(keyFile, logger); err != nil {
		return nil, err
	}
	ex.issuer = o.issuer
	if ex.issuer == "" {
		ex.idp = idptest.NewServer(nil, idptest.Config{})
		ex.issuer = ex.idp.Issuer()
	}
	ex.verifier, err = authn.NewVerifier(authn.Config{
		Issuer:   ex.issuer,
		Audience: []string{ex.resource},
		Logger:   logger,
	})
	if err != nil {
		return nil, err
	}

	// The outbound transport: X-API-Key from the file, re-read when the
	// file changes, sent only to the backend's host.
	backendURL, _ := url.Parse(ex.backend.url)
	ct, err := credentials.NewTransport(credentials.Config{
		Scheme: credentials.Header,
		Header: "X-API-Key",
		Secret: credentials.FileWithOptions(keyFile, credentials.FileOptions{CheckInterval: o.checkInterval}),
		Hosts:  []string{backendURL.Host},
	}, nil)
	if err != nil {
		return nil, err
	}
	protected, err := middleware.Protect(mcpHandler(ex.backend.url, &http.Client{Transport: ct, Timeout: 10 * time.Second}),
		middleware.Config{
			Metadata: prm.Metadata{
				Resource:             ex.resource,
				AuthorizationServers: []string{ex.issuer},
				ResourceName:         "mcpauth static credentials example",
			},
			Verifier: ex.verifier,
			Authn:    authn.Options{Logger: logger},
		})
	if err != nil {
		return nil, err
	}
	prmPath, _ := prm.WellKnownPath(ex.resource)
	mux := http.NewServeMux()
	mux.Handle(prmPath, protected)
	mux.Handle("/mcp", protected)
	ex.mcpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go ex.mcpSrv.Serve(ln)
	return ex, nil
}

// close stops everything immediately and removes the default key file.
func (ex *example) close() {
	if ex.mcpSrv != nil {
		ex.mcpSrv.Close()
	}
	if ex.verifier != nil {
		ex.verifier.Close()
	}
	if ex.backend != nil {
		ex.backend.close()
	}
	if ex.idp != nil {
		ex.idp.Close()
	}
	if ex.tmpDir != "" {
		os.RemoveAll(ex.tmpDir)
	}
}

// status is the backend's answer: which of its keys the call carried.
type status struct {
	KeyID string `json:"key_id"`
}

// mcpHandler is the MCP server: one tool, "backend_status", that calls the
// backend through hc (whose transport adds the API key).
func mcpHandler(backendURL string, hc *http.Client) http.Handler {
	server := mcp.NewServer(&mcp.Implementation{Name: "mcpauth-static-credentials", Version: "v0.1.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "backend_status", Description: "Calls the backend API with the server's API key."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, status, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, backendURL+"/status", nil)
			if err != nil {
				return nil, status{}, err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return nil, status{}, fmt.Errorf("backend: %w", err) // never holds the key
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return nil, status{}, fmt.Errorf("backend: %s", resp.Status)
			}
			var s status
			if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&s); err != nil {
				return nil, status{}, fmt.Errorf("backend: %w", err)
			}
			return nil, s, nil
		})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
}

// backend is the downstream API. It accepts the API keys it issued (it
// keeps their hashes, named key-1, key-2, …) and, standing in for a secret
// manager, can issue a new key into the key file and revoke old ones.
type backend struct {
	url     string
	keyFile string
	srv     *http.Server
	logger  *slog.Logger

	mu       sync.Mutex
	keys     []apiKey // issued and not revoked, oldest first
	issued   int
	lastSeen string // id of the key of the last accepted request
	authz    int    // requests that carried an Authorization header (must stay 0)
}

type apiKey struct {
	id   string
	hash [sha256.Size]byte
}

// startBackend starts the backend. If keyFile holds a key, that is key-1;
// otherwise a new key-1 is written to it.
func startBackend(keyFile string, logger *slog.Logger) (*backend, error) {
	b := &backend{keyFile: keyFile, logger: logger}
	existing, err := os.ReadFile(keyFile)
	switch {
	case err == nil && strings.TrimRight(string(existing), "\r\n") != "":
		b.register(strings.TrimRight(string(existing), "\r\n"))
	case err == nil || errors.Is(err, os.ErrNotExist):
		if _, err := b.rotate(); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b.url = "http://" + ln.Addr().String() + "/api"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/status", b.serveStatus)
	mux.HandleFunc("POST /admin/rotate", b.serveRotate)
	mux.HandleFunc("POST /admin/revoke-old", b.serveRevokeOld)
	b.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go b.srv.Serve(ln)
	return b, nil
}

func (b *backend) close() {
	if b.srv != nil {
		b.srv.Close()
	}
}

// register adds key and returns its id.
func (b *backend) register(key string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.issued++
	id := fmt.Sprintf("key-%d", b.issued)
	b.keys = append(b.keys, apiKey{id: id, hash: sha256.Sum256([]byte(key))})
	return id
}

// rotate issues a new key, accepted from now on beside the old ones, and
// replaces the key file with it atomically (write, then rename, as a secret
// volume update does), so no reader ever sees a half-written key.
func (b *backend) rotate() (string, error) {
	key := rand.Text() + rand.Text()
	id := b.register(key)
	tmp, err := os.CreateTemp(filepath.Dir(b.keyFile), ".api-key-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(key + "\n"); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), b.keyFile); err != nil {
		return "", err
	}
	b.logger.Info("backend: issued a new API key and wrote it to the key file", "key_id", id, "file", b.keyFile)
	return id, nil
}

// revokeOld revokes every key but the newest.
func (b *backend) revokeOld() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var revoked []string
	for _, k := range b.keys[:len(b.keys)-1] {
		revoked = append(revoked, k.id)
	}
	b.keys = b.keys[len(b.keys)-1:]
	return revoked
}

// lookup returns the id of an accepted key, comparing hashes in constant time.
func (b *backend) lookup(key string) (string, bool) {
	h := sha256.Sum256([]byte(key))
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range b.keys {
		if subtle.ConstantTimeCompare(h[:], k.hash[:]) == 1 {
			return k.id, true
		}
	}
	return "", false
}

func (b *backend) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		b.mu.Lock()
		b.authz++
		b.mu.Unlock()
	}
	id, ok := b.lookup(r.Header.Get("X-API-Key"))
	if !ok {
		http.Error(w, "invalid API key", http.StatusUnauthorized)
		return
	}
	b.mu.Lock()
	b.lastSeen = id
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(status{KeyID: id})
}

func (b *backend) serveRotate(w http.ResponseWriter, _ *http.Request) {
	id, err := b.rotate()
	if err != nil {
		b.logger.Error("backend: rotation failed", "error", err)
		http.Error(w, "rotation failed", http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "issued %s and wrote it to %s; the previous keys stay valid until revoke-old\n", id, b.keyFile)
}

func (b *backend) serveRevokeOld(w http.ResponseWriter, _ *http.Request) {
	fmt.Fprintf(w, "revoked %v\n", b.revokeOld())
}

// seen returns the id of the key of the last accepted request and how many
// requests carried an Authorization header.
func (b *backend) seen() (lastKeyID string, withAuthorization int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastSeen, b.authz
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// printUsage prints the servers and calls to paste into a shell.
func (ex *example) printUsage(w io.Writer, checkInterval time.Duration) {
	metadataURL, _ := prm.MetadataURL(ex.resource)
	admin := strings.TrimSuffix(ex.backend.url, "/api") + "/admin"
	fmt.Fprintf(w, "MCP server:                  %s\n", ex.resource)
	fmt.Fprintf(w, "Protected resource metadata: %s\n", metadataURL)
	if ex.idp != nil {
		fmt.Fprintf(w, "Identity provider:           %s (embedded development IdP, keys die with this process)\n", ex.issuer)
	} else {
		fmt.Fprintf(w, "Identity provider:           %s\n", ex.issuer)
	}
	fmt.Fprintf(w, "Backend API:                 %s (accepts X-API-Key)\n", ex.backend.url)
	fmt.Fprintf(w, "API key file:                %s (re-read at most every %s when it changes)\n\n", ex.backend.keyFile, checkInterval)
	// The API key is never printed.
	if ex.idp != nil {
		// Printing a token is acceptable only here: it is signed by a key
		// made for this process and trusted by nothing else.
		fmt.Fprintf(w, "THROWAWAY DEVELOPMENT TOKEN (sub=dev-user, valid 1h, useless elsewhere):\n\n")
		fmt.Fprintf(w, "  TOKEN=%s\n\n", shellQuote(ex.idp.Token(map[string]any{"sub": "dev-user", "aud": ex.resource})))
	} else {
		fmt.Fprintf(w, "Get an access token from %s issued for the resource %s\n", ex.issuer, ex.resource)
		fmt.Fprintf(w, "(its aud must be that URI: RFC 8707 resource=...), then:\n\n  TOKEN=...your access token...\n\n")
	}
	fmt.Fprintf(w, "Call the backend_status tool; the backend names the key it received:\n\n")
	fmt.Fprintf(w, "  curl -sS %s \\\n", shellQuote(ex.resource))
	fmt.Fprintf(w, "    -H \"Authorization: Bearer $TOKEN\" \\\n")
	fmt.Fprintf(w, "    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\\n")
	fmt.Fprintf(w, "    -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"backend_status\",\"arguments\":{}}}'\n\n")
	fmt.Fprintf(w, "Rotate the key (the backend issues a new one and writes it to the file), call the tool again\n")
	fmt.Fprintf(w, "after a second, then revoke the old key: the server never restarts.\n\n")
	fmt.Fprintf(w, "  curl -sS -X POST %s\n  curl -sS -X POST %s\n\n", shellQuote(admin+"/rotate"), shellQuote(admin+"/revoke-old"))
	fmt.Fprintf(w, "Press Ctrl-C to stop.\n")
}
