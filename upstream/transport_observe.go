package upstream

import (
	"context"
	"errors"
	"time"

	"github.com/mcpauth-go/mcpauth/observe"
)

// refreshObserved is refresh, reported to TransportConfig.Observer.Refresh.
// Without an Observer it is one nil check.
func (t *Transport) refreshObserved(ctx context.Context, tsid string) (*Session, error) {
	o := t.obs
	if o == nil || o.Refresh == nil {
		return t.refresh(ctx, tsid)
	}
	start := time.Now()
	s, err := t.refresh(ctx, tsid)
	e := observe.Refresh{Outcome: observe.OK, Start: start, Duration: time.Since(start)}
	switch {
	case err == nil:
	case errors.Is(err, ErrReauthenticate):
		e.Outcome = observe.Failed
	default:
		e.Outcome = observe.Unavailable
	}
	o.Refresh(ctx, e)
	return s, err
}
