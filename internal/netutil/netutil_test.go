package netutil

import (
	"net/url"
	"strings"
	"testing"
)

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost": true, "127.0.0.1": true, "127.1.2.3": true, "::1": true,
		"::ffff:127.0.0.1": true, "::1%lo": false, "127.example.com": false, "localhost.evil": false,
		"10.0.0.1": false, "": false, "example.com": false, "::": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestCheckHTTPS(t *testing.T) {
	for _, tc := range []struct {
		url       string
		allowHTTP bool
		ok        bool
	}{
		{"https://api.example.com/x", false, true},
		{"HTTPS://api.example.com/x", false, true},
		{"http://127.0.0.1:8080/x", false, true},
		{"http://[::1]/x", false, true},
		{"http://localhost/x", false, true},
		{"http://api.example.com/x", false, false},
		{"http://api.example.com/x", true, true},
		{"http://127.0.0.1.nip.io/x", false, false},
		{"http://127.example.com/x", false, false},
		{"ftp://api.example.com/x", false, false},
		{"ftp://api.example.com/x", true, false},
		{"ws://127.0.0.1/x", false, false},
		{"//api.example.com/x", false, false},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		err = CheckHTTPS(u, tc.allowHTTP)
		if (err == nil) != tc.ok {
			t.Errorf("CheckHTTPS(%q, %v) = %v, want ok=%v", tc.url, tc.allowHTTP, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "https") {
			t.Errorf("CheckHTTPS(%q) error %q does not say what is needed", tc.url, err)
		}
	}
}
