package tokenexchange

import "time"

// entry is a cached exchanged token.
type entry struct {
	tok     *Token
	value   string    // header value: "Bearer <token>" or the bare token
	expires time.Time // zero: not cacheable
}
