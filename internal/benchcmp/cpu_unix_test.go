//go:build unix

package benchcmp

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user + system, every thread, the garbage
// collector's included) this process has used so far, or 0 if unknown. On a
// shared machine it moves far less than wall time: time spent waiting for a
// core is not counted.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
