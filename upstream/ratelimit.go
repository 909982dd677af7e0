package upstream

import (
	"math"
	"sync"
	"time"
)

// tokenBucket is a token bucket of capacity n refilled at n per period,
// so bursts up to n pass and the sustained rate is n per period.
type tokenBucket struct {
	mu     sync.Mutex
	n      float64
	per    time.Duration
	tokens float64
	last   time.Time

	refused int       // refusals not yet reported (see report)
	logged  time.Time // when report last returned a count
}

func newTokenBucket(n int, per time.Duration, now time.Time) *tokenBucket {
	return &tokenBucket{n: float64(n), per: per, tokens: float64(n), last: now}
}

// take spends one token if there is one; otherwise it reports how long
// until there will be.
func (b *tokenBucket) take(now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(b.n, b.tokens+b.n*float64(elapsed)/float64(b.per))
	}
	// Also when the clock stepped back (a Config.Now without a monotonic
	// reading): the refill restarts from now instead of waiting for the
	// clock to pass the last take again.
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	// Rounded up: a bucket a hair short of a token still waits (and
	// Retry-After is never 0).
	return false, time.Duration(math.Ceil((1 - b.tokens) * float64(b.per) / b.n))
}

// report counts one refusal and returns how many to log now: all those
// since the last report, at most once per period, else 0. A flood of
// refused requests is then one log line per period, not one per request.
func (b *tokenBucket) report(now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refused++
	if since := now.Sub(b.logged); !b.logged.IsZero() && since >= 0 && since < b.per {
		return 0
	}
	n := b.refused
	b.refused, b.logged = 0, now
	return n
}
