package upstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestSessionAndPendingNeverPrintSecrets(t *testing.T) {
	s := Session{TSID: "t1", AccessToken: "secret-at", RefreshToken: "secret-rt", IDToken: "secret-idt", Expiry: time.Now()}
	p := Pending{ClientID: "c", UpstreamVerifier: "secret-verifier", Nonce: "secret-nonce"}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "s", s, "p", p, "sp", &s, "pp", &p)
	js, err := json.Marshal(map[string]any{"s": s, "p": p, "sp": &s, "pp": &p})
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%v %+v %#v %s %q %v %+v", s, s, s, s, s, &s, &p) +
		fmt.Sprintf("%v %+v %#v %s", p, p, p, &p) + buf.String() + string(js)
	for _, secret := range []string{"secret-at", "secret-rt", "secret-idt", "secret-verifier", "secret-nonce"} {
		if strings.Contains(out, secret) {
			t.Fatalf("%s printed: %s", secret, out)
		}
	}
	if !strings.Contains(out, "t1") {
		t.Fatalf("the tsid should stay visible: %s", out)
	}
}

func TestBinaryEncodingKeepsSecrets(t *testing.T) {
	s := &Session{TSID: "t1", AccessToken: "at", RefreshToken: "rt", IDToken: "idt", Expiry: time.Unix(1700000000, 0), Version: 3}
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Session
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != "at" || got.RefreshToken != "rt" || got.IDToken != "idt" || got.Version != 3 || !got.Expiry.Equal(s.Expiry) {
		t.Fatalf("round trip lost data: %+v", got.redactedCopy())
	}
	p := &Pending{UpstreamVerifier: "v", Nonce: "n", Resource: "r"}
	b, err = p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var gp Pending
	if err := gp.UnmarshalBinary(b); err != nil || gp.UpstreamVerifier != "v" || gp.Nonce != "n" || gp.Resource != "r" {
		t.Fatalf("pending round trip: %v", err)
	}
	if err := gp.UnmarshalBinary([]byte("{")); err == nil || !strings.HasPrefix(err.Error(), "upstream: ") {
		t.Fatalf("corrupt record: %v", err)
	}
}
