package interop

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/internal/testport"
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

// freeAddr returns a loopback address nothing listens on now, outside the
// range the kernel hands to outbound connections (see testport). A child
// process told to listen there is started with testport.Start, which
// retries when the address was taken anyway.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := testport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// startExample runs the example binary with args and waits until it serves
// the metadata document of resource. It returns false when the example
// exited because its address was taken (testport.Start then tries
// another), and fails the test on any other
// exit.
func startExample(t *testing.T, name, resource string, args ...string) bool {
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
				return true
			}
		}
		select {
		case <-p.done:
			if testport.InUse(p.stderr.String()) {
				return false
			}
			t.Fatalf("%s exited: %v\n%s", name, p.cmd.ProcessState, p.stderr.String())
		case <-ctx.Done():
			t.Fatalf("%s does not serve %s after 30s (last error %v)\n%s", name, mdURL, err, p.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
