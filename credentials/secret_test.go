package credentials

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const canary = "canary-s3cr3t-value"

// assertNoCanary fails if out contains the canary in plain text or in any
// common encoding.
func assertNoCanary(t *testing.T, what, out string) {
	t.Helper()
	for _, enc := range []string{
		canary,
		hex.EncodeToString([]byte(canary)),
		strings.ToUpper(hex.EncodeToString([]byte(canary))),
		fmt.Sprintf("%q", canary)[1:8], // a quoted prefix
		canary[:8],
	} {
		if strings.Contains(out, enc) {
			t.Errorf("%s reveals the secret (%q found) in %q", what, enc, out)
		}
	}
}

func TestSecretReveal(t *testing.T) {
	t.Parallel()
	s := NewSecret(canary)
	if got := s.Reveal(); got != canary {
		t.Fatalf("Reveal() = %q, want the value", got)
	}
	if s.IsZero() {
		t.Error("IsZero() = true for a non-empty secret")
	}
	var zero Secret
	if zero.Reveal() != "" || !zero.IsZero() || !NewSecret("").IsZero() {
		t.Error("zero or empty Secret: want Reveal()==\"\" and IsZero()")
	}
	if !s.Equal(NewSecret(canary)) {
		t.Error("Equal: same value in distinct Secrets should be equal")
	}
	if s.Equal(NewSecret(canary+"x")) || s.Equal(zero) {
		t.Error("Equal: different values should differ")
	}
	if !zero.Equal(NewSecret("")) {
		t.Error("Equal: zero and empty should be equal")
	}
}

type exportedHolder struct {
	Name string
	Key  Secret
	Ptr  *Secret
}

type unexportedHolder struct {
	name string
	key  Secret
	ptr  *Secret
}

func TestSecretFmtNeverReveals(t *testing.T) {
	t.Parallel()
	s := NewSecret(canary)
	values := map[string]any{
		"Secret":           s,
		"*Secret":          &s,
		"exported field":   exportedHolder{Name: "n", Key: s, Ptr: &s},
		"*exported field":  &exportedHolder{Name: "n", Key: s, Ptr: &s},
		"unexported field": unexportedHolder{name: "n", key: s, ptr: &s},
		"*unexported":      &unexportedHolder{name: "n", key: s, ptr: &s},
		"slice":            []Secret{s, s},
		"map":              map[string]Secret{"k": s},
		"any slice":        []any{s, &s},
		"nested":           struct{ Inner struct{ k Secret } }{struct{ k Secret }{s}},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%d", "%10.3s", "%-30v", "%T", "%p", "%#x", "%+q"}
	for name, v := range values {
		for _, verb := range verbs {
			assertNoCanary(t, name+" "+verb, fmt.Sprintf(verb, v))
		}
		assertNoCanary(t, name+" Sprint", fmt.Sprint(v))
		assertNoCanary(t, name+" Sprintln", fmt.Sprintln(v))
	}
}

func TestSecretFormatOutput(t *testing.T) {
	t.Parallel()
	s := NewSecret(canary)
	for _, tc := range []struct{ verb, want string }{
		{"%v", "[REDACTED]"},
		{"%+v", "[REDACTED]"},
		{"%#v", "credentials.Secret([REDACTED])"},
		{"%s", "[REDACTED]"},
		{"%q", `"[REDACTED]"`},
		{"%x", "[REDACTED]"},
		{"%d", "[REDACTED]"},
		{"%12s|", "  [REDACTED]|"},
		{"%-12v|", "[REDACTED]  |"},
	} {
		if got := fmt.Sprintf(tc.verb, s); got != tc.want {
			t.Errorf("Sprintf(%q) = %q, want %q", tc.verb, got, tc.want)
		}
	}
	if got := s.String(); got != "[REDACTED]" {
		t.Errorf("String() = %q", got)
	}
	if got := s.GoString(); got != "credentials.Secret([REDACTED])" {
		t.Errorf("GoString() = %q", got)
	}
}

func TestSecretMarshalNeverReveals(t *testing.T) {
	t.Parallel()
	s := NewSecret(canary)
	b, err := json.Marshal(exportedHolder{Name: "n", Key: s, Ptr: &s})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"Name":"n","Key":"[REDACTED]","Ptr":"[REDACTED]"}`; string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	b, err = json.Marshal(unexportedHolder{key: s})
	if err != nil {
		t.Fatal(err)
	}
	assertNoCanary(t, "json unexported", string(b))
	b, err = json.Marshal(map[string]any{"a": []Secret{s}})
	if err != nil {
		t.Fatal(err)
	}
	assertNoCanary(t, "json map", string(b))

	b, err = xml.Marshal(struct {
		XMLName xml.Name `xml:"c"`
		Key     Secret   `xml:"key"`
		Attr    Secret   `xml:"a,attr"`
	}{Key: s, Attr: s})
	if err != nil {
		t.Fatal(err)
	}
	if want := `<c a="[REDACTED]"><key>[REDACTED]</key></c>`; string(b) != want {
		t.Errorf("xml = %s, want %s", b, want)
	}
	txt, err := s.MarshalText()
	if err != nil || string(txt) != "[REDACTED]" {
		t.Errorf("MarshalText = %q, %v", txt, err)
	}

	// No Unmarshal: a redacted document must not decode into a Secret.
	var h exportedHolder
	if err := json.Unmarshal([]byte(`{"Key":"x"}`), &h); err == nil {
		t.Error("json.Unmarshal into Secret succeeded; want an error (no UnmarshalJSON by design)")
	}
}

func TestSecretSlogNeverReveals(t *testing.T) {
	t.Parallel()
	s := NewSecret(canary)
	handlers := map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	}
	for name, mk := range handlers {
		var buf bytes.Buffer
		log := slog.New(mk(&buf)).With("bound", s)
		log.Info("msg", "secret", s, "ptr", &s, "exported", exportedHolder{Key: s, Ptr: &s},
			"unexported", unexportedHolder{key: s, ptr: &s}, "slice", []Secret{s})
		log.WithGroup("g").Error("err", slog.Any("s", s), "err", fmt.Errorf("wrapped %v", s))
		out := buf.String()
		assertNoCanary(t, "slog "+name, out)
		if !strings.Contains(out, "[REDACTED]") {
			t.Errorf("slog %s: want [REDACTED] in %q", name, out)
		}
	}
	if v := s.LogValue(); v.Kind() != slog.KindString || v.String() != "[REDACTED]" {
		t.Errorf("LogValue = %v", v)
	}
}

func TestSecretInErrors(t *testing.T) {
	t.Parallel()
	s := NewSecret(canary)
	base := errors.New("boom")
	errs := []error{
		fmt.Errorf("using %v: %w", s, base),
		fmt.Errorf("using %s %q %+v %#v: %w", s, s, s, s, base),
		errors.Join(base, fmt.Errorf("key %v", exportedHolder{Key: s})),
		fmt.Errorf("holder %+v", unexportedHolder{key: s}),
	}
	for _, err := range errs {
		assertNoCanary(t, "error", err.Error())
		assertNoCanary(t, "error %+v", fmt.Sprintf("%+v", err))
	}
}
