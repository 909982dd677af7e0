//go:build !linux

package authn

import "time"

// threadCPU is unavailable here: BenchmarkVerifyInterleaved reports wall
// time only.
func threadCPU() time.Duration { return 0 }
