package credentials

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 7 item 10: with CheckAtStart, a misconfigured file or environment
// source fails NewTransport with an error naming the field, the file or
// variable and what is wrong, never the value. Environment variables make
// these tests serial (t.Setenv).
func TestCheckAtStart(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	writeFile(t, good, "backend-token\n")
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, "\n")
	spaced := filepath.Join(dir, "spaced")
	writeFile(t, spaced, "not a b64token "+canary+"\n")
	missing := filepath.Join(dir, "missing")
	t.Setenv("CHECK_AT_START_GOOD", "backend-token")
	t.Setenv("CHECK_AT_START_EMPTY", "")
	t.Setenv("CHECK_AT_START_BAD_USER", "svc:"+canary)
	t.Setenv("CHECK_AT_START_PASSWORD", canary)
	os.Unsetenv("CHECK_AT_START_UNSET")

	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // substrings of the error; nil means success
	}{
		{"file ok", Config{Secret: File(good)}, nil},
		{"env ok", Config{Secret: Env("CHECK_AT_START_GOOD")}, nil},
		{"basic ok", Config{Scheme: Basic, Username: Literal("svc"), Password: Env("CHECK_AT_START_PASSWORD")}, nil},
		{"missing file", Config{Secret: File(missing)}, []string{"Secret", missing, "no such file"}},
		{"empty file", Config{Secret: File(empty)}, []string{"Secret", empty, "empty"}},
		{"file value not a bearer token", Config{Secret: File(spaced)}, []string{"Secret", spaced, "b64token"}},
		{"unset variable", Config{Secret: Env("CHECK_AT_START_UNSET")}, []string{"Secret", "CHECK_AT_START_UNSET", "not set"}},
		{"empty variable", Config{Secret: Env("CHECK_AT_START_EMPTY")}, []string{"Secret", "CHECK_AT_START_EMPTY", "empty"}},
		{"user-id with a colon", Config{Scheme: Basic, Username: Env("CHECK_AT_START_BAD_USER"), Password: Env("CHECK_AT_START_PASSWORD")},
			[]string{"Username", "CHECK_AT_START_BAD_USER", "colon"}},
		{"unset password", Config{Scheme: Basic, Username: Literal("svc"), Password: Env("CHECK_AT_START_UNSET")},
			[]string{"Password", "CHECK_AT_START_UNSET", "not set"}},
		{"header value with a control character", Config{Scheme: Header, Header: "X-Api-Key", Secret: Literal("a\x01" + canary)},
			[]string{"Secret", "literal", "not a valid X-Api-Key header value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Without the option, construction never calls the source.
			if _, err := NewTransport(tc.cfg, nil); err != nil {
				t.Fatalf("without CheckAtStart: %v", err)
			}
			tc.cfg.CheckAtStart = true
			tr, err := NewTransport(tc.cfg, nil)
			if tc.want == nil {
				if err != nil || tr == nil {
					t.Fatalf("NewTransport = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("NewTransport succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), "backend-token") {
				t.Errorf("error %q reveals the value", err)
			}
			if n := strings.Count(err.Error(), "credentials: "); n != 1 {
				t.Errorf("error %q names the prefix %d times", err, n)
			}
		})
	}
}

// Issue 7 item 13: no error of this package names its prefix twice
// ("credentials: … credentials: …"), whichever path wraps whichever.
func TestErrorsDoNotDoublePrefix(t *testing.T) {
	dir := t.TempDir()
	emptyFile := filepath.Join(dir, "empty")
	writeFile(t, emptyFile, "")
	os.Unsetenv("DOUBLE_PREFIX_UNSET")
	t.Setenv("DOUBLE_PREFIX_EMPTY", "")
	ctx := withToken(inboundToken)

	var errs []error
	roundTrip := func(cfg Config, url string, hdr ...string) {
		tr, err := NewTransport(cfg, &recorder{})
		if err != nil {
			errs = append(errs, err)
			return
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		_, err = tr.RoundTrip(req)
		errs = append(errs, err)
	}
	roundTrip(Config{Secret: Env("DOUBLE_PREFIX_UNSET")}, "https://b/")
	roundTrip(Config{Secret: Env("DOUBLE_PREFIX_EMPTY")}, "https://b/")
	roundTrip(Config{Secret: Env("BAD=NAME")}, "https://b/")
	roundTrip(Config{Secret: File(emptyFile)}, "https://b/")
	roundTrip(Config{Secret: File(filepath.Join(dir, "missing"))}, "https://b/")
	roundTrip(Config{Secret: Literal("")}, "https://b/")
	roundTrip(Config{Scheme: Basic, Username: Literal("svc"), Password: Env("DOUBLE_PREFIX_UNSET")}, "https://b/")
	roundTrip(Config{Secret: Literal("k")}, "http://api.example.com/")
	roundTrip(Config{Secret: Literal("k"), Hosts: []string{"a.example"}}, "https://b/")
	roundTrip(Config{Secret: Literal("k")}, "https://b/", "X-Fwd", "Bearer "+inboundToken)
	roundTrip(Config{Secret: Literal("k"), Hosts: []string{"a/b"}}, "https://b/")
	roundTrip(Config{Scheme: Header, Header: "Connection", Secret: Literal("k")}, "https://b/")
	roundTrip(Config{Secret: Env("DOUBLE_PREFIX_UNSET"), CheckAtStart: true}, "https://b/")
	_, err := EnvPairs(context.Background(), map[string]Source{"A": Env("DOUBLE_PREFIX_UNSET")})
	errs = append(errs, err)
	_, err = EnvPairs(context.Background(), map[string]Source{"A": File(emptyFile)})
	errs = append(errs, err)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://b/?t="+inboundToken, nil)
	errs = append(errs, CheckPassthrough(req))

	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: no error", i)
			continue
		}
		if n := strings.Count(err.Error(), "credentials: "); n != 1 {
			t.Errorf("case %d: %q names the prefix %d times", i, err, n)
		}
	}
	// The sentinels still match through the rewording.
	if !errors.Is(errs[0], ErrEmptySecret) || !errors.Is(errs[13], ErrEmptySecret) {
		t.Errorf("ErrEmptySecret lost: %v / %v", errs[0], errs[13])
	}
}
