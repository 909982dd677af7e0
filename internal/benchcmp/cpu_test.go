package benchcmp

import (
	"testing"
	"time"
)

// reportCPU reports the process CPU time used since start per iteration, as
// cpu-ns/op, beside the wall-clock ns/op: the cost of an operation even when
// other jobs keep the benchmark waiting for a core.
func reportCPU(b *testing.B, start time.Duration) {
	if start == 0 || b.N == 0 {
		return
	}
	if d := cpuTime() - start; d > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
