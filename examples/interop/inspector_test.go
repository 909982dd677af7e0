package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// inspectorRun is one run of the MCP Inspector CLI.
type inspectorRun struct {
	stdout []byte
	stderr string
	logins int      // authorization requests it asked a user to complete
	scopes []string // the scope parameter of each of them
	err    error
}

// runInspector runs the MCP Inspector CLI (`mcp-inspector --cli`) against
// resource with args, answering stdin with answer (for its step-up
// confirmation). It stands in for the user: when the Inspector prints the
// authorization URL it would open in a browser, the test logs in as user
// through the IdP's development pages and delivers the redirect to the
// Inspector's loopback callback listener. home isolates the Inspector's
// stored OAuth state. With scope non-empty, the run uses a config file
// (--config) naming the server with that initial OAuth scope; otherwise the
// resource URL is the target.
func runInspector(t *testing.T, home, resource, scope, user, answer string, args ...string) *inspectorRun {
	t.Helper()
	node := requireNode(t)
	callback := "http://" + freeAddr(t) + "/oauth/callback"
	launcher := filepath.Join(nodeDir, "node_modules", "@modelcontextprotocol", "inspector", "clients", "launcher", "build", "index.js")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	target := []string{resource, "--transport", "http"}
	if scope != "" {
		config := filepath.Join(home, "mcp.json")
		b, _ := json.Marshal(map[string]any{"mcpServers": map[string]any{"sut": map[string]any{
			"type": "streamable-http", "url": resource, "oauth": map[string]any{"scopes": scope}}}})
		if err := os.WriteFile(config, b, 0o600); err != nil {
			t.Fatal(err)
		}
		target = []string{"--config", config, "--server", "sut"}
	}
	cmd := exec.CommandContext(ctx, node, append(append([]string{launcher, "--cli"}, target...),
		append([]string{"--format", "json", "--callback-url", callback}, args...)...)...)
	cmd.Dir = home
	cmd.Env = append(os.Environ(),
		"HOME="+home,
		"NO_COLOR=1",
		// Interactive OAuth without a terminal: the Inspector then "opens"
		// the URL with $BROWSER, here a no-op, after printing it.
		"MCP_AUTO_OPEN_ENABLED=true",
		"BROWSER=true",
		// Stored authorization in a file under home, so a second run reuses it.
		"MCP_INSPECTOR_SECRET_STORE=file",
	)
	cmd.Stdin = strings.NewReader(answer)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	run := &inspectorRun{}
	began := time.Now()
	defer func() { t.Logf("inspector %s: %v", strings.Join(args, " "), time.Since(began).Round(time.Millisecond)) }()
	var stderr strings.Builder
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderrPipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			const prompt = "Please navigate to: "
			if i := strings.Index(line, prompt); i >= 0 {
				authURL := strings.TrimSpace(line[i+len(prompt):])
				stderr.WriteString(line[:i] + prompt + "(authorization URL)\n")
				run.logins++
				if u, err := url.Parse(authURL); err == nil {
					run.scopes = append(run.scopes, u.Query().Get("scope"))
				}
				if err := deliverLogin(ctx, authURL, callback, user); err != nil {
					stderr.WriteString("test: login failed: " + err.Error() + "\n")
				}
				continue
			}
			stderr.WriteString(line + "\n")
		}
		io.Copy(io.Discard, stderrPipe)
	}()
	wg.Wait()
	run.err = cmd.Wait()
	run.stdout, run.stderr = stdout.Bytes(), stderr.String()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("inspector %s stderr:\n%s", strings.Join(args, " "), run.stderr)
		}
	})
	return run
}

// deliverLogin logs in at authURL and sends the browser's final redirect to
// the client's callback listener.
func deliverLogin(ctx context.Context, authURL, callback, user string) error {
	q, err := newBrowser().authorize(ctx, authURL, callback, user)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, callback+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("callback listener: HTTP %d", resp.StatusCode)
	}
	return nil
}

// TestInspectorCLI: the MCP Inspector CLI 2.12.0 against examples/gosdk
// (authn + Cedar authz) trusting oidc-provider, configured to ask for
// tools:read first: it logs in (DCR, PKCE, its loopback callback listener)
// and lists the tools (filtered: no admin_reset for this user; write_note,
// one step-up away, is listed); a second run reuses the stored
// authorization to call whoami; a third calls write_note without
// notes:write, gets 403 insufficient_scope, asks for confirmation (answered
// yes on stdin), steps up with a second authorization and completes the call.
func TestInspectorCLI(t *testing.T) {
	s := startGoSDK(t)
	home := t.TempDir()

	list := runInspector(t, home, s.resource, scopeRead, "frank", "", "--method", "tools/list")
	if list.err != nil || list.logins != 1 {
		t.Fatalf("tools/list: %v, %d logins", list.err, list.logins)
	}
	var tools struct {
		Result struct{ Tools []struct{ Name string } }
	}
	if err := json.Unmarshal(list.stdout, &tools); err != nil {
		t.Fatalf("tools/list output: %v", err)
	}
	var names []string
	for _, tool := range tools.Result.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"echo", "whoami", "write_note"}) {
		t.Errorf("tools/list = %v, want [echo whoami write_note]", names)
	}

	who := runInspector(t, home, s.resource, scopeRead, "frank", "", "--method", "tools/call", "--tool-name", "whoami")
	if who.err != nil || who.logins != 0 {
		t.Fatalf("tools/call whoami: %v, %d logins (want the stored authorization reused)", who.err, who.logins)
	}
	if !strings.Contains(string(who.stdout), `\"subject\":\"frank\"`) {
		t.Errorf("tools/call whoami = %s", who.stdout)
	}

	call := runInspector(t, home, s.resource, scopeRead, "frank", "y\n",
		"--method", "tools/call", "--tool-name", "write_note", "--tool-arg", "text=hi")
	if call.err != nil || call.logins != 1 {
		t.Fatalf("tools/call write_note: %v, %d logins (want one: the step-up)", call.err, call.logins)
	}
	if !slices.Contains(strings.Fields(call.scopes[0]), scopeNotes) || !slices.Contains(strings.Fields(list.scopes[0]), scopeRead) ||
		slices.Contains(strings.Fields(list.scopes[0]), scopeNotes) {
		t.Errorf("authorization scopes: first login %q, step-up %q; want %s first, then with %s", list.scopes[0], call.scopes[0], scopeRead, scopeNotes)
	}
	if !strings.Contains(string(call.stdout), "note stored for frank: hi") {
		t.Errorf("tools/call write_note = %s", call.stdout)
	}
	if !strings.Contains(call.stderr, "insufficient_scope") && !strings.Contains(call.stderr, scopeNotes) {
		t.Errorf("the Inspector did not report the step-up challenge:\n%s", call.stderr)
	}
}
