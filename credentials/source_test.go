package credentials

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock for FileOptions.Now.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes content to a temporary file and renames it over path,
// as secret rotation tools and Kubernetes do, giving the path a new inode.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func mustSecret(t *testing.T, src Source) string {
	t.Helper()
	s, err := src.Secret(context.Background())
	if err != nil {
		t.Fatalf("Secret: %v", err)
	}
	return s.Reveal()
}

func TestLiteral(t *testing.T) {
	t.Parallel()
	src := Literal(canary)
	if got := mustSecret(t, src); got != canary {
		t.Fatalf("got %q", got)
	}
	a, _ := src.Secret(context.Background())
	b, _ := src.Secret(context.Background())
	if !a.same(b) {
		t.Error("Literal should return the same Secret every time (header cache relies on it)")
	}
	if _, err := Literal("").Secret(context.Background()); !errors.Is(err, ErrEmptySecret) {
		t.Errorf("empty literal: err = %v, want ErrEmptySecret", err)
	}
}

func TestSourceFunc(t *testing.T) {
	t.Parallel()
	want := errors.New("vault down")
	src := SourceFunc(func(ctx context.Context) (Secret, error) { return Secret{}, want })
	if _, err := src.Secret(context.Background()); !errors.Is(err, want) {
		t.Errorf("err = %v", err)
	}
}

// Env tests use t.Setenv and so cannot run in parallel.
func TestEnv(t *testing.T) {
	const name = "MCPAUTH_CREDENTIALS_TEST_KEY"
	t.Setenv(name, canary)
	src := Env(name)
	if got := mustSecret(t, src); got != canary {
		t.Fatalf("got %q", got)
	}
	a, _ := src.Secret(context.Background())
	b, _ := src.Secret(context.Background())
	if !a.same(b) {
		t.Error("unchanged variable should yield the same Secret")
	}
	t.Setenv(name, canary+"-rotated")
	if got := mustSecret(t, src); got != canary+"-rotated" {
		t.Errorf("after Setenv got %q", got)
	}

	t.Setenv(name, "")
	_, err := src.Secret(context.Background())
	if !errors.Is(err, ErrEmptySecret) || !strings.Contains(err.Error(), name) {
		t.Errorf("empty variable: err = %v, want ErrEmptySecret naming %s", err, name)
	}
	os.Unsetenv(name)
	_, err = src.Secret(context.Background())
	if !errors.Is(err, ErrEmptySecret) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "not set") {
		t.Errorf("unset variable: err = %v", err)
	}
	for _, bad := range []string{"", "A=B", "A\x00B"} {
		if _, err := Env(bad).Secret(context.Background()); err == nil {
			t.Errorf("Env(%q): want an error", bad)
		}
	}
}

func TestFileReadsAndTrimsOneNewline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ content, want string }{
		{canary, canary},
		{canary + "\n", canary},
		{canary + "\r\n", canary},
		{canary + "\n\n", canary + "\n"},
		{" " + canary + " ", " " + canary + " "},
	} {
		path := filepath.Join(t.TempDir(), "secret")
		writeFile(t, path, tc.content)
		if got := mustSecret(t, File(path)); got != tc.want {
			t.Errorf("content %q: got %q, want %q", tc.content, got, tc.want)
		}
	}
}

func TestFileErrorsNamePathNotContents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, "\n")
	big := filepath.Join(dir, "big")
	writeFile(t, big, canary+strings.Repeat("x", maxFileSize))
	for _, tc := range []struct {
		name, path string
		is         error
	}{
		{"missing", missing, os.ErrNotExist},
		{"empty", empty, ErrEmptySecret},
		{"too big", big, nil},
		{"directory", dir, nil},
	} {
		_, err := File(tc.path).Secret(context.Background())
		if err == nil {
			t.Errorf("%s: want an error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: error %q does not name the path", tc.name, err)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: error %v does not match %v", tc.name, err, tc.is)
		}
		assertNoCanary(t, tc.name, err.Error())
	}

	if os.Getuid() != 0 { // root reads mode-000 files
		unreadable := filepath.Join(dir, "unreadable")
		writeFile(t, unreadable, canary)
		if err := os.Chmod(unreadable, 0); err != nil {
			t.Fatal(err)
		}
		_, err := File(unreadable).Secret(context.Background())
		if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), unreadable) {
			t.Errorf("unreadable: err = %v", err)
		}
	}
}

func TestFileRotation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret")
	writeFile(t, path, "v1\n")
	clock := newFakeClock()
	src := FileWithOptions(path, FileOptions{CheckInterval: time.Minute, Now: clock.Now})
	if got := mustSecret(t, src); got != "v1" {
		t.Fatalf("got %q", got)
	}

	// Rewritten in place with a different size: not seen until the interval
	// has passed (the hot path makes no system call), then seen.
	writeFile(t, path, "v2-longer\n")
	clock.Advance(30 * time.Second)
	if got := mustSecret(t, src); got != "v1" {
		t.Errorf("within interval: got %q, want cached v1", got)
	}
	clock.Advance(31 * time.Second)
	if got := mustSecret(t, src); got != "v2-longer" {
		t.Errorf("after interval: got %q, want v2-longer", got)
	}

	// Replaced by rename with the same size: a new inode is a change.
	replaceFile(t, path, "v3-longer\n")
	clock.Advance(time.Minute)
	if got := mustSecret(t, src); got != "v3-longer" {
		t.Errorf("after rename: got %q, want v3-longer", got)
	}

	// Rewritten in place with the same size: the modification time changes.
	writeFile(t, path, "v4-longer\n")
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if got := mustSecret(t, src); got != "v4-longer" {
		t.Errorf("after same-size rewrite: got %q, want v4-longer", got)
	}

	// Deleted: an error naming the path, not the stale value.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if _, err := src.Secret(context.Background()); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("deleted file: err = %v, want an error naming the path", err)
	}
	// Restored: recovers on the next call.
	writeFile(t, path, "v5")
	if got := mustSecret(t, src); got != "v5" {
		t.Errorf("restored: got %q", got)
	}
}

func TestFileUnchangedKeepsIdentityAndSkipsRead(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret")
	writeFile(t, path, canary)
	clock := newFakeClock()
	src := FileWithOptions(path, FileOptions{CheckInterval: time.Second, Now: clock.Now})
	a, err := src.Secret(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Second)
	b, err := src.Secret(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !a.same(b) {
		t.Error("unchanged file should yield the same Secret after a check")
	}
	// Touching the file without changing its contents forces a re-read,
	// which must still keep the Secret's identity.
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Second)
	c, _ := src.Secret(context.Background())
	if !a.same(c) {
		t.Error("re-read of equal contents should keep the Secret's identity")
	}
}

func TestFileNegativeIntervalChecksEveryCall(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret")
	writeFile(t, path, "one")
	src := FileWithOptions(path, FileOptions{CheckInterval: -1})
	if got := mustSecret(t, src); got != "one" {
		t.Fatal(got)
	}
	replaceFile(t, path, "two")
	if got := mustSecret(t, src); got != "two" {
		t.Errorf("got %q, want two", got)
	}
}

func TestFileRealClockRotation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret")
	writeFile(t, path, "first")
	src := FileWithOptions(path, FileOptions{CheckInterval: 10 * time.Millisecond})
	if got := mustSecret(t, src); got != "first" {
		t.Fatal(got)
	}
	replaceFile(t, path, "second")
	deadline := time.Now().Add(5 * time.Second)
	for mustSecret(t, src) != "second" {
		if time.Now().After(deadline) {
			t.Fatal("rotation not picked up within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFileCanceledContext(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret")
	writeFile(t, path, canary)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := File(path).Secret(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestFileConcurrentRotation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret")
	writeFile(t, path, "v0")
	src := FileWithOptions(path, FileOptions{CheckInterval: -1})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s, err := src.Secret(context.Background())
				if err != nil {
					errs <- err
					return
				}
				if v := s.Reveal(); !strings.HasPrefix(v, "v") {
					errs <- errors.New("torn or foreign value read")
					return
				}
			}
		}()
	}
	for i := 1; i <= 50; i++ {
		replaceFile(t, path, "v"+strings.Repeat("x", i))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A rewrite in place that keeps the size, on a file system whose timestamps
// are coarse (1 s on ext3 and HFS+, 2 s on FAT, a jiffy on Linux before
// multigrain timestamps), leaves size, mtime and inode unchanged. If the
// first write was that recent when the file was read, the next check must
// read it again rather than trust the stat forever.
func TestFileSameSizeRewriteWithinTimestampGranularity(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret")
	writeFile(t, path, "token-AAAA")
	// Simulate a coarse clock: both writes get the same mtime.
	mtime := time.Now().Truncate(time.Second)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	src := FileWithOptions(path, FileOptions{CheckInterval: time.Second, Now: clock.Now})
	if got := mustSecret(t, src); got != "token-AAAA" {
		t.Fatal(got)
	}
	writeFile(t, path, "token-BBBB") // in place: same inode, same size
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Second)
	if got := mustSecret(t, src); got != "token-BBBB" {
		t.Errorf("got %q after a same-size rewrite, want token-BBBB", got)
	}
}
