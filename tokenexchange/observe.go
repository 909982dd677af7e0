package tokenexchange

import (
	"context"
	"errors"
	"time"

	"github.com/mcpauth-go/mcpauth/observe"
)

// This file reports exchanges to Config.Observer. Without an Observer each
// hook is one nil check.

// observeHit reports a token served from the cache.
func (t *Transport) observeHit(ctx context.Context) {
	if o := t.cfg.Observer; o != nil && o.Exchange != nil {
		o.Exchange(ctx, observe.Exchange{Cache: observe.CacheHit})
	}
}

// fetchObserved is fetch, reported to Observer.Exchange as one STS call.
func (t *Transport) fetchObserved(ctx context.Context, r request, subjectExpiry time.Time) (*entry, error) {
	o := t.cfg.Observer
	if o == nil || o.Exchange == nil {
		return t.fetch(ctx, r, subjectExpiry)
	}
	start := time.Now()
	e, err := t.fetch(ctx, r, subjectExpiry)
	ev := observe.Exchange{Cache: observe.CacheMiss, Outcome: observe.OK, Start: start, Duration: time.Since(start)}
	if t.cache == nil {
		ev.Cache = observe.CacheNotUsed
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrRetryable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		ev.Outcome = observe.Unavailable
	default:
		ev.Outcome = observe.Failed
	}
	o.Exchange(ctx, ev)
	return e, err
}
