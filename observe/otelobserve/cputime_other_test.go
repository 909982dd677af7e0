//go:build !linux

package otelobserve_test

import "time"

// threadCPU is unavailable here: BenchmarkWarmVerifyInterleaved reports
// wall time only.
func threadCPU() time.Duration { return 0 }
