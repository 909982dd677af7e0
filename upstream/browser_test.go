package upstream_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// chromiumMissing is the skip reason of TestConsentInRealBrowser, or "".
const chromiumMissing = "chromium not found; install it with `bash .ci/chromium-setup.sh` " +
	"(apt-get install -y --no-install-recommends chromium) or set MCPAUTH_CHROMIUM"

// TestMain says up front, even without -v, when the real-browser test will
// be skipped (go test shows it whenever the package's output is shown).
func TestMain(m *testing.M) {
	if chromiumPath() == "" {
		fmt.Fprintln(os.Stderr, "upstream: TestConsentInRealBrowser will be skipped: "+chromiumMissing)
	}
	os.Exit(m.Run())
}

// TestConsentInRealBrowser drives Debian's chromium (headless, over the
// DevTools protocol) through the consent page as a person would: the page
// renders, a cross-site page's auto-submitted approval is refused, and
// clicking "Approve" completes the login back to the client.
//
// It needs chromium (`apt-get install -y --no-install-recommends chromium`,
// see .ci/chromium-setup.sh); without it the test is skipped, except under
// CI=true where it fails.
func TestConsentInRealBrowser(t *testing.T) {
	bin := chromiumPath()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(chromiumMissing + " (required under CI=true)")
		}
		fmt.Fprintln(os.Stderr, "SKIP TestConsentInRealBrowser: "+chromiumMissing)
		t.Skip(chromiumMissing)
	}
	e := newEnv(t, nil)
	// The client application: a loopback page that receives the code.
	got := make(chan url.Values, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/callback" {
			select {
			case got <- r.URL.Query():
			default:
			}
		}
		_, _ = io.WriteString(w, "<!doctype html><title>app</title><p>back at the app</p>")
	}))
	t.Cleanup(app.Close)
	redirect := app.URL + "/callback"
	clientID := e.publicClient(redirect)
	verifier, challenge := pkce()

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cdp := startChromium(ctx, t, bin)

	// 1. The authorization request lands on the consent page.
	cdp.navigate(e.authorizeURL(clientID, redirect, challenge, nil))
	page := cdp.waitFor(func(href, text string) bool {
		return strings.HasPrefix(href, e.issuer+"/consent") && strings.Contains(text, "Approve")
	}, "the consent page")
	for _, want := range []string{"Test Client", strings.TrimPrefix(app.URL, "http://"), clientID} {
		if !strings.Contains(page, want) {
			t.Fatalf("the rendered consent page lacks %q:\n%s", want, page)
		}
	}
	consentURL := cdp.eval(`location.href`)
	login := regexp.MustCompile(`login=([^&]+)`).FindStringSubmatch(consentURL)
	if login == nil {
		t.Fatalf("no login id in %s", consentURL)
	}

	// 2. A page on another origin auto-submits an approval for this login
	// (it cannot know the CSRF token): refused.
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<!doctype html><body><form id="f" method="post" action="%s/consent">
<input type="hidden" name="login" value="%s"><input type="hidden" name="action" value="approve">
<input type="hidden" name="upstream" value="corp"><input type="hidden" name="csrf" value="guess"></form>
<script>document.getElementById('f').submit()</script></body>`, e.issuer, login[1])
	}))
	t.Cleanup(attacker.Close)
	cdp.navigate(attacker.URL)
	cdp.waitFor(func(href, text string) bool {
		return strings.HasPrefix(href, e.issuer+"/consent") && strings.Contains(text, "Cross-site request refused")
	}, "the refusal of a cross-site approval")
	select {
	case <-got:
		t.Fatal("a cross-site approval reached the client")
	default:
	}

	// 3. The user goes back to the consent page and clicks Approve.
	cdp.navigate(consentURL)
	cdp.waitFor(func(href, text string) bool { return strings.Contains(text, "Approve") }, "the consent page again")
	// The click submits the form; chromium may answer that the page went
	// away before the expression returned, which is the click working.
	if _, err := cdp.tryEval(`document.querySelector('#consent button[name=upstream]').click(), "clicked"`); err != nil && !errors.Is(err, errNavigated) {
		t.Fatalf("clicking Approve: %v", err)
	}
	var q url.Values
	select {
	case q = <-got:
	case <-ctx.Done():
		t.Fatalf("the browser never came back to the client; last page %s", cdp.eval(`location.href`))
	}
	if q.Get("iss") != e.issuer || q.Get("state") != "st-123" || q.Get("code") == "" {
		t.Fatalf("authorization response in the browser: %v", redactQuery(q))
	}
	m := e.exchange(clientID, redirect, q.Get("code"), verifier)
	if _, err := e.verifier().Verify(t.Context(), m["access_token"].(string)); err != nil {
		t.Fatal(err)
	}
}

func chromiumPath() string {
	if p := os.Getenv("MCPAUTH_CHROMIUM"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// cdpConn is a minimal DevTools protocol client over a WebSocket (RFC 6455
// client side, text frames only): enough to navigate and evaluate.
type cdpConn struct {
	t    *testing.T
	ctx  context.Context
	conn net.Conn
	r    *bufio.Reader
	mu   sync.Mutex
	id   int
}

func startChromium(ctx context.Context, t *testing.T, bin string) *cdpConn {
	t.Helper()
	// A fresh profile per run; removed after chromium and all its child
	// processes (one process group, killed together) are gone.
	profile, err := os.MkdirTemp("", "mcpauth-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		for range 20 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	wsRE := regexp.MustCompile(`DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)`)
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := wsRE.FindStringSubmatch(sc.Text()); m != nil {
				port <- m[2]
			}
		}
	}()
	var p string
	select {
	case p = <-port:
	case <-time.After(30 * time.Second):
		t.Fatal("chromium did not start its DevTools endpoint")
	}
	// The page target of the initial tab.
	var ws string
	for i := 0; ws == "" && i < 100; i++ {
		var targets []struct {
			Type string `json:"type"`
			WS   string `json:"webSocketDebuggerUrl"`
		}
		resp, err := http.Get("http://127.0.0.1:" + p + "/json/list")
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&targets)
			resp.Body.Close()
		}
		for _, tg := range targets {
			if tg.Type == "page" && tg.WS != "" {
				ws = tg.WS
			}
		}
		if ws == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if ws == "" {
		t.Fatal("no page target in chromium")
	}
	c := &cdpConn{t: t, ctx: ctx}
	if err := c.dial(ws); err != nil {
		t.Fatalf("DevTools WebSocket: %v", err)
	}
	t.Cleanup(func() { c.conn.Close() })
	return c
}

func (c *cdpConn) dial(ws string) error {
	u, err := url.Parse(ws)
	if err != nil {
		return err
	}
	c.conn, err = net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return err
	}
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	fmt.Fprintf(c.conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		u.RequestURI(), u.Host, base64.StdEncoding.EncodeToString(key))
	c.r = bufio.NewReader(c.conn)
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("handshake status %d", resp.StatusCode)
	}
	return nil
}

func (c *cdpConn) writeText(p []byte) error {
	hdr := []byte{0x81}
	switch n := len(p); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n < 1<<16:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	mask := make([]byte, 4)
	_, _ = rand.Read(mask)
	hdr = append(hdr, mask...)
	masked := make([]byte, len(p))
	for i := range p {
		masked[i] = p[i] ^ mask[i%4]
	}
	_, err := c.conn.Write(append(hdr, masked...))
	return err
}

func (c *cdpConn) readMessage() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			return nil, err
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(c.r, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(c.r, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if n > 64<<20 {
			return nil, errors.New("frame too large")
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(c.r, payload); err != nil {
			return nil, err
		}
		switch h[0] & 0x0f {
		case 0x8:
			return nil, errors.New("websocket closed")
		case 0x9, 0xa: // ping/pong: ignore (chromium does not ping clients)
			continue
		}
		msg = append(msg, payload...)
		if h[0]&0x80 != 0 {
			return msg, nil
		}
	}
}

// call sends one command and returns its result, skipping events; any error
// ends the test.
func (c *cdpConn) call(method string, params map[string]any) json.RawMessage {
	c.t.Helper()
	res, err := c.try(method, params)
	if err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
	return res
}

// errNavigated is a command error chromium returns when the page navigated
// while the command ran (a form submitted itself, a redirect landed): the
// page is simply not there yet, so callers that poll try again.
var errNavigated = errors.New("the page navigated during the command")

// try is call that returns a command's error instead of ending the test;
// errors of the connection itself still end it.
func (c *cdpConn) try(method string, params map[string]any) (json.RawMessage, error) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.id++
	id := c.id
	b, _ := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	_ = c.conn.SetDeadline(time.Now().Add(15 * time.Second))
	if err := c.writeText(b); err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
	for {
		raw, err := c.readMessage()
		if err != nil {
			c.t.Fatalf("%s: %v", method, err)
		}
		var resp struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &resp) != nil || resp.ID != id {
			continue
		}
		if resp.Error != nil {
			if navigatedAway(resp.Error.Message) {
				return nil, fmt.Errorf("%w: %s", errNavigated, resp.Error.Message)
			}
			return nil, errors.New(resp.Error.Message)
		}
		return resp.Result, nil
	}
}

// navigatedAway reports whether a DevTools error message means the page (or
// its JavaScript context) was replaced while the command ran.
func navigatedAway(msg string) bool {
	for _, s := range []string{"navigated or closed", "Execution context was destroyed", "Cannot find context"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func (c *cdpConn) navigate(u string) { c.call("Page.navigate", map[string]any{"url": u}) }

// eval evaluates a JavaScript expression in the page and returns it as a
// string.
func (c *cdpConn) eval(expr string) string {
	c.t.Helper()
	v, err := c.tryEval(expr)
	if err != nil {
		c.t.Fatalf("Runtime.evaluate: %v", err)
	}
	return v
}

// tryEval is eval that returns the page's error (errNavigated when the page
// went away under it) instead of ending the test.
func (c *cdpConn) tryEval(expr string) (string, error) {
	c.t.Helper()
	res, err := c.try("Runtime.evaluate", map[string]any{"expression": "String(" + expr + ")", "returnByValue": true})
	if err != nil {
		return "", err
	}
	var r struct {
		Result struct {
			Value string `json:"value"`
		} `json:"result"`
	}
	_ = json.Unmarshal(res, &r)
	return r.Result.Value, nil
}

// waitFor polls the page until ok(href, innerText) and returns the text.
func (c *cdpConn) waitFor(ok func(href, text string) bool, what string) string {
	c.t.Helper()
	var href, text string
	for c.ctx.Err() == nil {
		// A page that navigates while it is read (the attacker's form
		// submits itself) is read again on the next turn.
		h, err := c.tryEval(`location.href`)
		if err == nil {
			href = h
			var tx string
			tx, err = c.tryEval(`document.readyState === "complete" && document.body ? document.body.innerText : ""`)
			if err == nil {
				text = tx
				if ok(href, text) {
					return text
				}
			}
		}
		if err != nil && !errors.Is(err, errNavigated) {
			c.t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("waiting for %s: last page %s:\n%s", what, href, text)
	return ""
}
