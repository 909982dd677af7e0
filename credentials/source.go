package credentials

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Source supplies a secret. [Transport] calls it for every outgoing request
// and [EnvPairs] once per call, so an implementation that fetches from a
// remote store should cache. Implementations must be safe for concurrent
// use and should return the same [Secret] (not a fresh NewSecret of an
// equal value) until the value changes: derived values such as the encoded
// header are cached by Secret identity.
//
// An error from Secret is wrapped into the error of the request; it must not
// contain the secret.
type Source interface {
	Secret(ctx context.Context) (Secret, error)
}

// SourceFunc adapts a function to [Source].
type SourceFunc func(ctx context.Context) (Secret, error)

// Secret calls f.
func (f SourceFunc) Secret(ctx context.Context) (Secret, error) { return f(ctx) }

// ErrEmptySecret is returned (wrapped) when a source yields an empty value:
// an unset or empty environment variable, an empty file, an empty literal.
// Sending an empty credential would only fail at the backend, later and less
// clearly, so it is refused here.
var ErrEmptySecret = errors.New("credentials: empty secret")

// Literal returns a Source that always yields s. It is the static
// implementation for tests and for values the application already holds.
// If s is empty, every call fails with [ErrEmptySecret].
func Literal(s string) Source { return literal{NewSecret(s)} }

type literal struct{ s Secret }

func (l literal) Secret(context.Context) (Secret, error) {
	if l.s.IsZero() {
		return Secret{}, fmt.Errorf("%w: literal", ErrEmptySecret)
	}
	return l.s, nil
}

// Env returns a Source that reads the environment variable name on every
// call, so a value changed with os.Setenv is picked up. An unset or empty
// variable, or an invalid name, is an error naming the variable (never a
// value); an empty value matches [ErrEmptySecret].
func Env(name string) Source { return &envSource{name: name} }

type envSource struct {
	name string
	last atomic.Pointer[Secret] // last value returned, reused while unchanged
}

func (e *envSource) Secret(context.Context) (Secret, error) {
	if err := validEnvName(e.name); err != nil {
		return Secret{}, err
	}
	v, ok := os.LookupEnv(e.name)
	if !ok {
		return Secret{}, fmt.Errorf("%w: environment variable %q is not set", ErrEmptySecret, e.name)
	}
	if v == "" {
		return Secret{}, fmt.Errorf("%w: environment variable %q is empty", ErrEmptySecret, e.name)
	}
	if last := e.last.Load(); last != nil && last.Reveal() == v {
		return *last, nil
	}
	s := NewSecret(v)
	e.last.Store(&s)
	return s, nil
}

// DefaultFileCheckInterval is how often a [File] source looks at the file
// for changes when FileOptions.CheckInterval is zero.
const DefaultFileCheckInterval = time.Second

// maxFileSize bounds how much of a secret file is read. Secrets are short;
// a large file is a misconfiguration (a wrong path), not a credential.
const maxFileSize = 64 << 10

// FileOptions tunes a [File] source. The zero value is ready to use.
type FileOptions struct {
	// CheckInterval is the minimum time between two checks of the file for
	// changes. Between checks the cached value is returned without any
	// system call. Zero means DefaultFileCheckInterval; a negative value
	// checks on every call.
	CheckInterval time.Duration
	// Now returns the current time. If nil, time.Now is used.
	Now func() time.Time
}

// File returns a Source that reads the secret from the file at path and
// re-reads it when it changes, so a rotated secret (a rewritten file, a
// Kubernetes secret volume's symlink swap) is used without a restart.
//
// The first call reads the file. Later calls return the cached value until
// DefaultFileCheckInterval has passed since the last check; then one caller
// stats the file and re-reads it if its size, modification time or identity
// (device and inode) changed, or if it had been modified less than 2 s
// before the last read (a same-size rewrite within the file system's
// timestamp granularity changes none of those). One trailing newline ("\n" or "\r\n") is
// trimmed, so files written by echo or an editor work. A missing, unreadable,
// empty or oversized (> 64 KiB) file is an error naming the path, never the
// contents; the next call tries again. Safe for concurrent use.
func File(path string) Source { return FileWithOptions(path, FileOptions{}) }

// FileWithOptions is [File] with options.
func FileWithOptions(path string, opts FileOptions) Source {
	if opts.CheckInterval == 0 {
		opts.CheckInterval = DefaultFileCheckInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &fileSource{path: path, opts: opts}
}

type fileSource struct {
	path string
	opts FileOptions

	mu    sync.Mutex                // serialises checks and reads
	state atomic.Pointer[fileState] // last successful read; nil before the first
}

type fileState struct {
	secret  Secret
	info    os.FileInfo // stat of the file the secret was read from
	checked time.Time   // when the file was last looked at
	// racy: the file had been modified less than racyWindow before it was
	// read, so a same-size rewrite in place may have kept its mtime (coarse
	// file system timestamps); the next check re-reads instead of trusting
	// an unchanged stat.
	racy bool
}

// racyWindow is the coarsest file modification time granularity allowed for
// (FAT's 2 s; ext3 and HFS+ have 1 s, Linux before multigrain timestamps a
// clock tick).
const racyWindow = 2 * time.Second

func (f *fileSource) Secret(ctx context.Context) (Secret, error) {
	now := f.opts.Now()
	if st := f.state.Load(); st != nil && f.fresh(st, now) {
		return st.secret, nil // hot path: one atomic load, no system call
	}
	if err := ctx.Err(); err != nil {
		return Secret{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.state.Load()
	if st != nil && f.fresh(st, now) {
		return st.secret, nil // another caller checked while we waited
	}
	if st != nil {
		info, err := os.Stat(f.path)
		if err != nil {
			return Secret{}, f.errorf(err)
		}
		if unchanged(st.info, info) && !st.racy {
			f.state.Store(&fileState{secret: st.secret, info: st.info, checked: now})
			return st.secret, nil
		}
	}
	next, err := f.read(now)
	if err != nil {
		return Secret{}, err
	}
	if st != nil && st.secret.Reveal() == next.secret.Reveal() {
		next.secret = st.secret // keep identity so derived caches stay valid
	}
	f.state.Store(next)
	return next.secret, nil
}

func (f *fileSource) fresh(st *fileState, now time.Time) bool {
	return f.opts.CheckInterval > 0 && now.Sub(st.checked) < f.opts.CheckInterval && !now.Before(st.checked)
}

// read opens the file and stats the open handle before reading, so the
// recorded stat never describes newer contents than the ones read: a write
// racing with the read is seen as a change at the next check.
func (f *fileSource) read(now time.Time) (*fileState, error) {
	// The wall clock, not opts.Now: it is compared with the file's mtime.
	readAt := time.Now()
	// Refuse a non-regular file before opening it: opening a named pipe
	// blocks until a writer appears, with f.mu held. The handle is checked
	// again below, in case the path is swapped in between.
	if info, err := os.Stat(f.path); err == nil && !info.Mode().IsRegular() {
		return nil, fmt.Errorf("credentials: secret file %q is not a regular file", f.path)
	}
	file, err := os.Open(f.path)
	if err != nil {
		return nil, f.errorf(err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return nil, f.errorf(err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("credentials: secret file %q is not a regular file", f.path)
	}
	b, err := io.ReadAll(io.LimitReader(file, maxFileSize+1))
	if err != nil {
		return nil, f.errorf(err)
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("credentials: secret file %q is larger than %d bytes", f.path, maxFileSize)
	}
	b = trimNewline(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: file %q is empty", ErrEmptySecret, f.path)
	}
	racy := info.ModTime().After(readAt.Add(-racyWindow))
	return &fileState{secret: NewSecret(string(b)), info: info, checked: now, racy: racy}, nil
}

// errorf wraps a file system error. *fs.PathError already names the path;
// other errors get it added. File contents never appear in either.
func (f *fileSource) errorf(err error) error {
	if strings.Contains(err.Error(), f.path) {
		return fmt.Errorf("credentials: secret file: %w", err)
	}
	return fmt.Errorf("credentials: secret file %q: %w", f.path, err)
}

func unchanged(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

func trimNewline(b []byte) []byte {
	if bytes.HasSuffix(b, []byte("\r\n")) {
		return b[:len(b)-2]
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

// describe names a source in an error without revealing its value.
func describe(s Source) string {
	switch s := s.(type) {
	case *envSource:
		return fmt.Sprintf("environment variable %q", s.name)
	case *fileSource:
		return fmt.Sprintf("file %q", s.path)
	case literal:
		return "literal"
	}
	return "custom source"
}
