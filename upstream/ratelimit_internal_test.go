package upstream

import (
	"testing"
	"time"
)

// TestTokenBucketClockStepsBack: a clock that steps back (Config.Now
// without a monotonic reading, such as time.Now().UTC(), after an NTP or VM
// resume correction) must not stop the refill until the wall clock is past
// the last registration again: after the step, time on the new clock
// refills the bucket as before.
func TestTokenBucketClockStepsBack(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	b := newTokenBucket(1, time.Minute, t0)
	if ok, _ := b.take(t0); !ok {
		t.Fatal("the first take of a full bucket was refused")
	}
	back := t0.Add(-time.Hour) // the clock steps back an hour
	if ok, _ := b.take(back); ok {
		t.Fatal("an empty bucket gave a token")
	}
	ok, wait := b.take(back.Add(time.Minute + time.Second))
	if !ok {
		t.Fatalf("a minute after the clock stepped back the bucket is still empty (wait %v): no refill until the clock passes the last take again", wait)
	}
}

// TestTokenBucketWaitPositive: a refused take always reports a positive
// wait, so Retry-After is never 0, also when the bucket is a hair short of
// a token (float refills in nanosecond steps).
func TestTokenBucketWaitPositive(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	b := newTokenBucket(60, time.Minute, t0)
	b.tokens = 1 - 1e-12
	ok, wait := b.take(t0)
	if ok || wait <= 0 {
		t.Fatalf("take with %v tokens = %v, %v; want refused with a positive wait", 1-1e-12, ok, wait)
	}
}

// TestTokenBucketReportThrottled: refusals are reported at most once per
// period, each report counting those since the previous one, so a flood
// of refused registrations is one log line a minute.
func TestTokenBucketReportThrottled(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	b := newTokenBucket(60, time.Minute, t0)
	if n := b.report(t0); n != 1 {
		t.Fatalf("first refusal: report %d, want 1", n)
	}
	for i := range 999 {
		if n := b.report(t0.Add(time.Duration(i) * time.Millisecond)); n != 0 {
			t.Fatalf("refusal %d within the minute reported %d, want 0", i+2, n)
		}
	}
	if n := b.report(t0.Add(time.Minute)); n != 1000 {
		t.Fatalf("a minute later: report %d, want the 1000 refusals since the last report", n)
	}
}
