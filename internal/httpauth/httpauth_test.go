package httpauth

import "testing"

func TestIsToken68(t *testing.T) {
	for s, want := range map[string]bool{
		"abc": true, "a-b.c_d~e+f/g": true, "YWJj==": true, "eyJ.x.y": true,
		"": false, "=": false, "a=b": false, "a b": false, "a,b": false, "a\"b": false, "é": false, "a:b": false,
	} {
		if got := IsToken68(s); got != want {
			t.Errorf("IsToken68(%q) = %v, want %v", s, got, want)
		}
	}
}
