//go:build !unix

package benchcmp

import "time"

// cpuTime is unknown here: the cpu-ns/op metric is not reported.
func cpuTime() time.Duration { return 0 }
