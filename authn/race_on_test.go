//go:build race

package authn

// raceEnabled: under the race detector sync.Pool drops items at random,
// so allocation counts of pooled paths are not asserted.
const raceEnabled = true
