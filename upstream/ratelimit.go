package upstream

import (
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
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) * float64(b.per) / b.n)
}
