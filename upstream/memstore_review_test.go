package upstream_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/upstream"
)

// TestMemoryStorePrintsNoRecords: a MemoryStore printed (logged by
// mistake, or in a %+v of a struct holding it) while in use shows no
// record keys (session IDs, code hashes) and does not read its maps
// behind its lock (a data race, and a fatal concurrent map access).
func TestMemoryStorePrintsNoRecords(t *testing.T) {
	s := upstream.NewMemoryStore()
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = s.PutSession(ctx, &upstream.Session{TSID: fmt.Sprint("SECRETTSID-", i%50)}, time.Minute)
		}
	}()
	var out string
	for range 200 {
		out = fmt.Sprintf("%v %+v %#v", s, s, s)
	}
	close(stop)
	wg.Wait()
	if strings.Contains(out, "SECRETTSID") {
		t.Fatalf("printed MemoryStore shows record keys: %.300s", out)
	}
}
