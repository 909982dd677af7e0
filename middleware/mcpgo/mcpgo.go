package mcpgo

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
)

// sessionHeader is the Streamable HTTP session header.
const sessionHeader = "Mcp-Session-Id"

// Defaults of [Config].
const (
	DefaultIdleTimeout = 24 * time.Hour
	DefaultMaxSessions = 100_000
)

// Config configures a [Binder]. The zero value is ready to use.
type Config struct {
	// IdleTimeout is how long a binding survives without a request for its
	// session; after it, the session id is refused (404) until the client
	// opens a new session. Set mcp-go's WithSessionIdleTTL no longer than
	// this. If zero, DefaultIdleTimeout (24 h).
	IdleTimeout time.Duration

	// MaxSessions caps the bindings held at once. When it is reached and no
	// binding has expired, a response that would hand out a new session id
	// is replaced by 503 with Retry-After. If zero, DefaultMaxSessions.
	MaxSessions int

	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Binder binds Streamable HTTP session ids to users. It is safe for
// concurrent use.
type Binder struct {
	idle time.Duration
	max  int
	now  func() time.Time

	mu       sync.Mutex
	sessions map[string]*binding
}

// binding is one session's owner and last use.
type binding struct {
	owner    string
	lastUsed time.Time
}

// New validates cfg and returns a Binder.
func New(cfg Config) (*Binder, error) {
	if cfg.IdleTimeout < 0 {
		return nil, fmt.Errorf("mcpgo: Config.IdleTimeout %v is negative", cfg.IdleTimeout)
	}
	if cfg.MaxSessions < 0 {
		return nil, fmt.Errorf("mcpgo: Config.MaxSessions %d is negative", cfg.MaxSessions)
	}
	b := &Binder{idle: cfg.IdleTimeout, max: cfg.MaxSessions, now: cfg.Now, sessions: map[string]*binding{}}
	if b.idle == 0 {
		b.idle = DefaultIdleTimeout
	}
	if b.max == 0 {
		b.max = DefaultMaxSessions
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b, nil
}

// errUserID is the cause of every identity that cannot be qualified.
var errUserID = errors.New("mcpgo: identity cannot be issuer-qualified")

// UserID returns the issuer-qualified subject "<iss>#<sub>" a session is
// bound to. It fails for an empty issuer or subject and for an issuer
// containing "#".
func UserID(info *authn.TokenInfo) (string, error) {
	switch {
	case info == nil:
		return "", fmt.Errorf("%w: no identity", errUserID)
	case info.Issuer == "":
		return "", fmt.Errorf("%w: empty issuer", errUserID)
	case strings.Contains(info.Issuer, "#"):
		return "", fmt.Errorf("%w: issuer %q contains '#'", errUserID, info.Issuer)
	case info.Subject == "":
		return "", fmt.Errorf("%w: empty subject (issuer %q)", errUserID, info.Issuer)
	}
	return info.Issuer + "#" + info.Subject, nil
}

// Middleware returns next (mcp-go's *server.StreamableHTTPServer) with its
// sessions bound to users. It must run behind authn.Middleware or
// middleware.Protect (as the handler passed to Protect): a request without
// a verified identity, or with one that cannot be qualified, gets 500 and
// never reaches next.
func (b *Binder) Middleware(next http.Handler) http.Handler {
	if next == nil {
		panic("mcpgo: Middleware: nil handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := authn.FromContext(r.Context())
		if !ok {
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		}
		user, err := UserID(info)
		if err != nil {
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		}
		sid := r.Header.Get(sessionHeader)
		if sid != "" {
			switch b.check(sid, user) {
			case unknown:
				http.Error(w, "session not found", http.StatusNotFound)
				return
			case otherUser:
				http.Error(w, "session belongs to another user", http.StatusForbidden)
				return
			}
		}
		bw := &bindingWriter{ResponseWriter: w, b: b, user: user, requestSID: sid, deleting: r.Method == http.MethodDelete}
		next.ServeHTTP(bw, r)
		bw.finish()
	})
}

// check outcomes.
const (
	owned = iota
	unknown
	otherUser
)

// check looks sid up for user and refreshes its last use if user owns it.
func (b *Binder) check(sid, user string) int {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.sessions[sid]
	switch {
	case s == nil:
		return unknown
	case now.Sub(s.lastUsed) >= b.idle:
		delete(b.sessions, sid)
		return unknown
	case s.owner != user:
		return otherUser
	}
	s.lastUsed = now
	return owned
}

// bind records user as the owner of a session id just handed out. It
// fails when the table is full, or if sid is bound to someone else (a
// session id collision, which a random id generator does not produce).
func (b *Binder) bind(sid, user string) bool {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.sessions[sid]; s != nil && now.Sub(s.lastUsed) < b.idle {
		if s.owner != user {
			return false
		}
		s.lastUsed = now
		return true
	}
	if len(b.sessions) >= b.max {
		for id, s := range b.sessions {
			if now.Sub(s.lastUsed) >= b.idle {
				delete(b.sessions, id)
			}
		}
		if len(b.sessions) >= b.max {
			return false
		}
	}
	b.sessions[sid] = &binding{owner: user, lastUsed: now}
	return true
}

// forget drops sid's binding if user owns it.
func (b *Binder) forget(sid, user string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.sessions[sid]; s != nil && s.owner == user {
		delete(b.sessions, sid)
	}
}

// Len returns the number of bindings held (expired ones included until they
// are swept).
func (b *Binder) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.sessions)
}

// bindingWriter binds a session id the handler hands out before its
// response headers leave, and forgets a session its owner deleted.
type bindingWriter struct {
	http.ResponseWriter
	b          *Binder
	user       string
	requestSID string
	deleting   bool

	wroteHeader bool
	refused     bool // the response was replaced; drop what the handler writes
}

func (w *bindingWriter) WriteHeader(status int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	h := w.Header()
	if sid := h.Get(sessionHeader); sid != "" && sid != w.requestSID {
		if !w.b.bind(sid, w.user) {
			// Nobody may use a session that could not be bound.
			w.refused = true
			h.Del(sessionHeader)
			h.Del("Content-Length")
			h.Set("Content-Type", "text/plain; charset=utf-8")
			h.Set("Retry-After", "60")
			w.ResponseWriter.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.ResponseWriter.Write([]byte("too many sessions\n"))
			return
		}
	}
	if w.deleting && w.requestSID != "" && status >= 200 && status < 300 {
		w.b.forget(w.requestSID, w.user)
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *bindingWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.refused {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Flush lets mcp-go stream (it checks for http.Flusher).
func (w *bindingWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok && !w.refused {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *bindingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish completes a response the handler left without a status.
func (w *bindingWriter) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
}
