package interop

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/prm"
)

var (
	buildMu   sync.Mutex
	buildDir  string
	buildErrs = map[string]error{}
)

// buildExample builds ./examples/<name> once per test process and returns
// the binary's path.
func buildExample(t *testing.T, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "mcpauth-interop-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = dir
	}
	bin := filepath.Join(buildDir, name)
	err, done := buildErrs[name]
	if !done {
		out, cerr := exec.Command("go", "build", "-o", bin, "github.com/mcpauth-go/mcpauth/examples/"+name).CombinedOutput()
		if cerr != nil {
			err = fmt.Errorf("go build examples/%s: %v\n%s", name, cerr, out)
		}
		buildErrs[name] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// cleanupBuilds removes the example binaries built for the tests.
func cleanupBuilds() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startExample runs the example binary with args and waits until it serves
// the metadata document of resource.
func startExample(t *testing.T, name, resource string, args ...string) {
	t.Helper()
	bin := buildExample(t, name)
	p := startBackground(t, bin, args...)
	mdURL, err := prm.MetadataURL(resource)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, mdURL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v\n%s", name, p.cmd.ProcessState, p.stderr.String())
		case <-ctx.Done():
			t.Fatalf("%s does not serve %s after 30s (last error %v)\n%s", name, mdURL, err, p.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
