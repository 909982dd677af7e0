package credentials

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// recorder is an in-memory base transport that records what it was sent.
type recorder struct {
	calls atomic.Int64
	last  atomic.Pointer[http.Request]
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.calls.Add(1)
	r.last.Store(req)
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
}

func TestTransportDestination(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		url    string
		hosts  []string
		http   bool
		refuse bool
	}{
		{"https", "https://api.example.com/x", nil, false, false},
		{"http non-loopback", "http://api.example.com/x", nil, false, true},
		{"http non-loopback allowed", "http://api.example.com/x", nil, true, false},
		{"HTTP upper-case scheme", "HTTP://api.example.com/x", nil, false, true},
		{"http localhost", "http://localhost:8080/x", nil, false, false},
		{"http LOCALHOST", "http://LOCALHOST/x", nil, false, false},
		{"http 127.0.0.5", "http://127.0.0.5/x", nil, false, false},
		{"http ::1", "http://[::1]:9/x", nil, false, false},
		{"http mapped loopback", "http://[::ffff:127.0.0.1]/x", nil, false, false},
		{"http 10.0.0.1", "http://10.0.0.1/x", nil, false, true},
		{"http name resembling loopback", "http://127.0.0.1.nip.io/x", nil, false, true},
		{"other scheme", "ftp://api.example.com/x", nil, true, true},
		{"host listed", "https://api.example.com/x", []string{"api.example.com"}, false, false},
		{"host listed any port, case", "https://API.Example.com:8443/x", []string{"api.example.com"}, false, false},
		{"host:port listed", "https://api.example.com:8443/x", []string{"api.example.com:8443"}, false, false},
		{"host:port listed, other port", "https://api.example.com/x", []string{"api.example.com:8443"}, false, true},
		{"host not listed", "https://evil.example.net/x", []string{"api.example.com"}, false, true},
		{"subdomain not listed", "https://x.api.example.com/x", []string{"api.example.com"}, false, true},
		{"listed but http", "http://api.example.com/x", []string{"api.example.com"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var asked atomic.Int64
			src := SourceFunc(func(context.Context) (Secret, error) {
				asked.Add(1)
				return NewSecret("tok"), nil
			})
			base := &recorder{}
			tr, err := NewTransport(Config{Secret: src, Hosts: tc.hosts, InsecureAllowHTTP: tc.http}, base)
			if err != nil {
				t.Fatal(err)
			}
			body := &closeRecorder{Reader: strings.NewReader("x")}
			req := newReq(t, context.Background(), http.MethodPost, tc.url, body)
			resp, err := tr.RoundTrip(req)
			if !tc.refuse {
				if err != nil {
					t.Fatalf("RoundTrip: %v", err)
				}
				resp.Body.Close()
				if got := base.last.Load().Header.Get("Authorization"); got != "Bearer tok" {
					t.Errorf("sent Authorization %q", got)
				}
				return
			}
			if !errors.Is(err, ErrDestinationNotAllowed) {
				t.Fatalf("err = %v, want ErrDestinationNotAllowed", err)
			}
			if base.calls.Load() != 0 || asked.Load() != 0 {
				t.Errorf("refused request: sent %d times, source asked %d times", base.calls.Load(), asked.Load())
			}
			if !body.closed.Load() {
				t.Error("body not closed")
			}
		})
	}
}

func TestNewTransportRefusesBadHosts(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"", "https://api.example.com", "api.example.com/path", "user@api.example.com", "a b"} {
		if _, err := NewTransport(Config{Secret: Literal("x"), Hosts: []string{h}}, nil); err == nil {
			t.Errorf("Hosts [%q]: want an error", h)
		}
	}
}

// An http.Client follows redirects through its Transport. With Hosts set,
// a redirect to another host does not receive the credential.
func TestTransportRedirectToOtherHost(t *testing.T) {
	t.Parallel()
	other := newEchoServer(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/stolen", http.StatusFound)
	}))
	t.Cleanup(origin.Close)
	originHost := strings.TrimPrefix(origin.URL, "http://")

	// Without Hosts the credential follows a redirect to another port of the
	// same host name, as net/http's Authorization rule has it.
	open, _ := NewTransport(Config{Secret: Literal("tok")}, origin.Client().Transport)
	resp, err := (&http.Client{Transport: open}).Get(origin.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if other.hits.Load() != 1 {
		t.Fatalf("setup: redirect not followed (hits %d)", other.hits.Load())
	}

	bound, err := NewTransport(Config{Secret: Literal("tok"), Hosts: []string{originHost}}, origin.Client().Transport)
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&http.Client{Transport: bound}).Get(origin.URL)
	if !errors.Is(err, ErrDestinationNotAllowed) {
		t.Fatalf("err = %v, want ErrDestinationNotAllowed", err)
	}
	if other.hits.Load() != 1 {
		t.Error("the other host received the redirected request")
	}
}

// Without Hosts, a redirect an http.Client follows to another host must not
// carry the credential either: net/http drops Authorization on such a
// redirect, and a transport that sets it on every hop must not undo that.
// Redirects within the host (any port, as net/http) or to a subdomain keep it.
func TestTransportRedirectToOtherHostWithoutHosts(t *testing.T) {
	t.Parallel()
	other := newEchoServer(t)
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1) // another host name
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, otherURL+"/stolen", http.StatusFound)
		case "/here":
			http.Redirect(w, r, "/final", http.StatusFound)
		default:
			if r.Header.Get("X-Api-Key") != "tok" {
				http.Error(w, "no key", http.StatusUnauthorized)
			}
		}
	}))
	t.Cleanup(origin.Close)
	tr, err := NewTransport(Config{Scheme: Header, Header: "X-Api-Key", Secret: Literal("tok")}, origin.Client().Transport)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: tr}
	resp, err := client.Get(origin.URL + "/here")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("same-host redirect: status %d, want 200", resp.StatusCode)
	}
	_, err = client.Get(origin.URL + "/away")
	if !errors.Is(err, ErrDestinationNotAllowed) {
		t.Errorf("err = %v, want ErrDestinationNotAllowed", err)
	}
	if other.hits.Load() != 0 {
		t.Error("the other host received the redirected request with the credential")
	}
}
