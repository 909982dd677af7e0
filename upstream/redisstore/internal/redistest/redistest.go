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
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/internal/testport"
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

	// TLS makes the server accept TLS only, with a certificate for
	// 127.0.0.1 from a CA generated for this server; clients use
	// [Server.TLSConfig]. False means plain TCP.
	TLS bool

	// Cluster starts the server as a one-node Redis Cluster owning every
	// hash slot, for redis.ClusterClient. False means a standalone server.
	Cluster bool
}

// Server is a redis-server process owned by one test.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	opts Options

	tls *tls.Config // client configuration when Options.TLS

	mu   sync.Mutex
	proc *os.Process   // nil when not running
	done chan struct{} // closed when proc has exited and been waited for
}

// Start starts a redis-server for t and registers its stop with t.Cleanup.
// It skips or fails t as [Binary] does when there is no redis-server.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir(), opts: opts}
	if opts.TLS {
		var err error
		if s.tls, err = writeCerts(s.dir); err != nil {
			t.Fatalf("redistest: certificates: %v", err)
		}
	}
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

// TLSConfig returns the client TLS configuration trusting the server's
// certificate, or nil without Options.TLS.
func (s *Server) TLSConfig() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.Clone()
}

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
// it; Kill works on a paused server too. Where there is no SIGSTOP
// (Windows), Pause skips the test.
func (s *Server) Pause() {
	s.t.Helper()
	s.signal(sigStop)
}

// Resume continues a paused process (SIGCONT).
func (s *Server) Resume() { s.signal(sigCont) }

func (s *Server) signal(sig os.Signal) {
	if sig == nil {
		s.t.Skip("redistest: this platform has no SIGSTOP/SIGCONT")
	}
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
	if s.opts.TLS {
		args[3] = "0" // no plain port
		args = append(args, "--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", filepath.Join(s.dir, "server.pem"), "--tls-key-file", filepath.Join(s.dir, "server-key.pem"),
			"--tls-ca-cert-file", filepath.Join(s.dir, "ca.pem"), "--tls-auth-clients", "no")
	}
	if s.opts.Cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.dir, "nodes.conf"))
	}
	if s.opts.Persist {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command(s.bin, args...)
	// On Linux the server dies with the test binary even if cleanup
	// never runs.
	cmd.SysProcAttr = sysProcAttr()
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
		if s.command("PING", "+PONG") == nil && (!s.opts.Cluster || s.clusterReady() == nil) {
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

// command sends one inline command and expects a reply starting with want.
func (s *Server) command(cmd, want string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var c net.Conn
	var err error
	if s.tls != nil {
		d := tls.Dialer{Config: s.tls}
		c, err = d.DialContext(ctx, "tcp", s.Addr())
	} else {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", s.Addr())
	}
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if n, ok := strings.CutPrefix(strings.TrimSpace(line), "$"); ok { // a bulk string: read its body
		size, err := strconv.Atoi(n)
		if err != nil || size < 0 || size > 1<<16 {
			return fmt.Errorf("%s: bad bulk length %q", cmd, n)
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		if !strings.Contains(string(body), want) {
			return fmt.Errorf("%s: reply lacks %q", cmd, want)
		}
		return nil
	}
	if !strings.HasPrefix(line, want) {
		return fmt.Errorf("%s answered %q", cmd, strings.TrimSpace(line))
	}
	return nil
}

// clusterReady gives a fresh one-node cluster every slot (a restarted one
// has them from nodes.conf) and waits for cluster_state:ok.
func (s *Server) clusterReady() error {
	_ = s.command("CLUSTER ADDSLOTSRANGE 0 16383", "+OK") // fails harmlessly once assigned
	for range 100 {
		if err := s.command("CLUSTER INFO", "cluster_state:ok"); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("cluster_state did not become ok")
}

// writeCerts writes a CA and a 127.0.0.1 server certificate into dir and
// returns the client configuration trusting the CA.
func writeCerts(dir string) (*tls.Config, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redistest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	for name, block := range map[string]*pem.Block{
		"ca.pem":         {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem":     {Type: "CERTIFICATE", Bytes: der},
		"server-key.pem": {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			return nil, err
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}, nil
}

// freePort is a loopback port outside the range the kernel hands to
// outbound connections (see testport), so no client's local end takes it
// between the probe and redis-server's bind.
func freePort() (int, error) { return testport.Free() }

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

// StartSentinel starts a Redis Sentinel (redis-server --sentinel) that
// monitors master under the name "mymaster" and returns its address, for
// redis.FailoverClient. It is killed when t ends. master must be plain
// TCP and standalone.
func StartSentinel(t testing.TB, master *Server) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	var err error
	for range 5 {
		var port int
		if port, err = freePort(); err != nil {
			continue
		}
		text := fmt.Sprintf("bind 127.0.0.1\nport %d\ndir %s\nlogfile %s\nsentinel monitor mymaster 127.0.0.1 %d 1\n",
			port, dir, filepath.Join(dir, "redis.log"), master.port)
		if err = os.WriteFile(conf, []byte(text), 0o600); err != nil {
			break
		}
		s := &Server{t: t, bin: master.bin, dir: dir, port: port}
		cmd := exec.Command(s.bin, conf, "--sentinel")
		cmd.SysProcAttr = sysProcAttr()
		if err = cmd.Start(); err != nil {
			break
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
		for range 250 {
			if err = s.command("SENTINEL GET-MASTER-ADDR-BY-NAME mymaster", "*2"); err == nil {
				return s.Addr()
			}
			select {
			case <-done:
				err = fmt.Errorf("sentinel exited: %s", s.logTail())
			case <-time.After(20 * time.Millisecond):
				continue
			}
			break
		}
	}
	t.Fatalf("redistest: start sentinel: %v", err)
	return ""
}
