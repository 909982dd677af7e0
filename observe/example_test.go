package observe_test

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/observe"
)

// An Observer that counts refused tokens by cause: set only the function
// of the events you want.
func Example() {
	var refused [observe.NumCauses]atomic.Int64
	obs := &observe.Observer{
		Verification: func(_ context.Context, e observe.Verification) {
			refused[e.Cause].Add(1)
		},
	}
	v, err := authn.NewVerifier(authn.Config{
		Issuer:   "https://login.example.com",
		Audience: []string{"https://mcp.example.com/mcp"},
		Observer: obs,
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()
	_, _ = v.Verify(context.Background(), "")
	_, _ = v.Verify(context.Background(), "not-a-jwt-and-no-introspection")
	for c := range observe.NumCauses {
		if n := refused[c].Load(); n > 0 {
			fmt.Printf("%s: %d\n", observe.Cause(c), n)
		}
	}
	// Output:
	// no_token: 1
	// malformed: 1
}
