// Package redistest starts a real redis-server for tests: its own process on
// a free 127.0.0.1 port with its own temporary data directory, killed and
// restarted on demand (same port, same data), and stopped by PID when the
// test ends.
//
// The binary is MCPAUTH_REDIS_SERVER when set (.ci/redis-setup.sh exports
// it), else redis-server on PATH. Without one the test is skipped, with the
// reason printed to stderr even without -v; with CI=true it fails instead.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvBinary names the environment variable that overrides the redis-server
// binary's path.
const EnvBinary = "MCPAUTH_REDIS_SERVER"

const install = "install it with `apt-get install -y --no-install-recommends redis-server` or run `. .ci/redis-setup.sh`"

var skipNotice sync.Once

// Binary returns the redis-server binary. Without one it skips t (printing
// why to stderr once per test binary), or fails t when CI=true.
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(EnvBinary)
	if bin == "" {
		bin, _ = exec.LookPath("redis-server")
	}
	if bin != "" {
		if _, err := os.Stat(bin); err == nil {
			return bin
		}
	}
	reason := "redis-server not found (" + EnvBinary + " unset and not on PATH); " + install
	if os.Getenv("CI") == "true" {
		t.Fatal(reason)
	}
	skipNotice.Do(func() { notice("SKIP real-Redis tests: " + reason) })
	t.Skip(reason)
	return ""
}

// Options configures a Server.
type Options struct {
	// Persist turns on the append-only file with an fsync per write, so a
	// Kill loses nothing acknowledged and Restart finds every key. False
	// means no persistence at all: a restarted server is empty.
	Persist bool
}

// Server is a redis-server process owned by one test.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	opts Options

	mu   sync.Mutex
	proc *os.Process   // nil when not running
	done chan struct{} // closed when proc has exited and been waited for
}

// Start starts a redis-server for t and registers its stop with t.Cleanup.
// It skips or fails t as [Binary] does when there is no redis-server.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir(), opts: opts}
	t.Cleanup(s.Kill)
	var err error
	for range 5 { // a free port may be taken between probing and binding
		if s.port, err = freePort(); err != nil {
			continue
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("redistest: start redis-server: %v", err)
	return nil
}

// Addr returns the server's "127.0.0.1:port".
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Dir returns the server's data directory.
func (s *Server) Dir() string { return s.dir }

// Kill kills the process (SIGKILL: no shutdown save) by its PID and waits
// for it to exit. It does nothing when the server is not running.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.Kill()
	<-s.done
	s.proc, s.done = nil, nil
}

// Pause stops the process with SIGSTOP: connections stay open but nothing
// is answered, as with an overloaded or partitioned server. Resume undoes
// it; Kill works on a paused server too.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		_ = s.proc.Signal(sig)
	}
}

// Restart starts the server again on the same port with the same data
// directory, after a Kill.
func (s *Server) Restart() {
	s.t.Helper()
	var err error
	for range 40 { // the port may linger briefly after the kill
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart redis-server: %v", err)
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("already running")
	}
	args := []string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port),
		"--dir", s.dir, "--daemonize", "no", "--protected-mode", "yes",
		"--save", "", "--loglevel", "warning", "--logfile", filepath.Join(s.dir, "redis.log"),
	}
	if s.opts.Persist {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command(s.bin, args...)
	// The server dies with the test binary even if cleanup never runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("redis-server exited: %s", s.logTail())
		default:
		}
		if ping(s.Addr()) == nil {
			s.proc, s.done = cmd.Process, done
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-done
	return fmt.Errorf("redis-server did not answer PING within 10s: %s", s.logTail())
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 512 {
		b = b[len(b)-512:]
	}
	return strings.TrimSpace(string(b))
}

// ping sends an inline PING and expects +PONG.
func ping(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// notice prints msg on stderr. In package list mode (go test ./pkg/...)
// the go command shows a passing package's output only with -v, so msg is
// also written to the go command's own stderr when the test binary runs
// under it: a skipped real-Redis test is then visible in every run.
func notice(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	if testing.Verbose() {
		return
	}
	ppid := os.Getppid()
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", ppid))
	if err != nil || strings.TrimSpace(string(comm)) != "go" {
		return
	}
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/2", ppid), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, msg)
}
