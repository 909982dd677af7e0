package observe

import "testing"

// Every outcome and cause has its own non-empty label (CauseNone's is
// empty), so adapters never merge two of them.
func TestLabels(t *testing.T) {
	seen := map[string]bool{}
	for o := range numOutcomes {
		l := o.String()
		if l == "" || l == "unknown" || seen[l] {
			t.Errorf("outcome %d label %q", o, l)
		}
		seen[l] = true
	}
	seen = map[string]bool{}
	for c := range numCauses {
		l := c.String()
		if (l == "") != (c == CauseNone) || seen[l] {
			t.Errorf("cause %d label %q", c, l)
		}
		seen[l] = true
		want := Invalid
		switch c {
		case CauseNone:
			want = OK
		case CauseUnavailable:
			want = Unavailable
		}
		if c.Outcome() != want {
			t.Errorf("cause %q outcome %v", l, c.Outcome())
		}
	}
	if Outcome(200).String() != "unknown" || Cause(200).String() != "other" {
		t.Error("out-of-range values")
	}
	if CacheHit.String() != "hit" || CacheMiss.String() != "miss" || CacheNotUsed.String() != "" {
		t.Error("cache result labels")
	}
}
