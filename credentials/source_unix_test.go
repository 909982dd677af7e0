//go:build unix

package credentials

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A named pipe at the secret path (a misconfiguration, or a secret injector
// that has not started writing) must fail the request, not block it forever
// with the source's lock held.
func TestFileFIFOFailsFast(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := File(path).Secret(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a FIFO yielded a secret")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Secret blocked on a FIFO for 5s")
	}
}
