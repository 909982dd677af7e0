package main

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// roundOutput is benchmark output for one round, with A at base ns and
// everything else derived from it.
func roundOutput(base int) string {
	return strings.Join([]string{
		"goos: linux",
		"BenchmarkPeers/RS256/raw-2   1000  " + strconv.Itoa(10*base) + " ns/op  1952 B/op  10 allocs/op",
		"BenchmarkPeers/RS256/mcpauth-2   1000  " + strconv.Itoa(12*base) + " ns/op  4008 B/op  52 allocs/op",
		"BenchmarkStack/inproc/A-bare-2   1000  " + strconv.Itoa(base) + " ns/op  500 cpu-ns/op  2544 B/op  35 allocs/op",
		"BenchmarkStack/inproc/C-authz-2   1000  " + strconv.Itoa(3*base) + " ns/op  1000 cpu-ns/op  5680 B/op  65 allocs/op",
		"BenchmarkStack/loopback/A-bare-2   3000  30000 ns/op  60000 cpu-ns/op  800.0 p50-µs  3000 p99-µs  30000 req/s  10804 B/op  133 allocs/op",
		"BenchmarkStack/loopback/C-authz-2   3000  40000 ns/op  80000 cpu-ns/op  900.0 p50-µs  3400 p99-µs  27000 req/s  15183 B/op  166 allocs/op",
		"BenchmarkCacheHitRoundTrip-2   1000  3000 ns/op  912 B/op  5 allocs/op",
		"BenchmarkBaselineExchangeEveryRequest-2   100  60000 ns/op  20538 B/op  164 allocs/op",
		"PASS",
	}, "\n")
}

// TestRatiosWithinRounds checks that ratios are taken within a round, then
// summarised: with a base that doubles between rounds, every ratio is the
// same in each round, so min, median and max agree.
func TestRatiosWithinRounds(t *testing.T) {
	res := results{}
	for r, base := range []int{1000, 2000, 4000} {
		res.add(r, strings.NewReader(roundOutput(base)))
	}
	s := summarize(res.combine("BenchmarkPeers/RS256/mcpauth", "BenchmarkPeers/RS256/raw", "ns/op", ratio))
	if s.n != 3 || s.min != 1.2 || s.med != 1.2 || s.max != 1.2 {
		t.Fatalf("mcpauth/raw ratio summary = %+v, want 1.2 in each of 3 rounds", s)
	}
	if got := summarize(res.values("BenchmarkStack/inproc/A-bare", "ns/op")); got.med != 2000 || got.spread() != 1.5 {
		t.Errorf("A summary = %+v spread %v, want median 2000, spread 1.5", got, got.spread())
	}
	if got := summarize(res.values("BenchmarkStack/loopback/C-authz", "p99-µs")); got.med != 3400 {
		t.Errorf("custom metric p99-µs = %+v", got)
	}
}

// TestRender checks the page has every section, the ratios and the
// machine state, and says when the machine was busy.
func TestRender(t *testing.T) {
	res := results{}
	for r, base := range []int{1000, 1100, 900} {
		res.add(r, strings.NewReader(roundOutput(base)))
	}
	m := machine{cpu: "Test CPU", goVersion: "go1.26 linux/amd64", commit: "abc123", cores: 2, maxprocs: 2,
		loads: []string{"3.50 2.00 1.00", "3.00 2.00 1.00", "2.50 2.00 1.00", "2.00 2.00 1.00"},
		date:  time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC), duration: time.Minute,
		settings: settings{rounds: 3, benchtime: "1s", requests: 3000}}
	page := render(m, res)
	for _, want := range []string{
		"## Token verification against other Go libraries",
		"| **mcpauth** `authn.Verifier`, cold (cache off) |",
		"1.20 / **1.20** / 1.20",
		"## The whole stack beside the bare handler",
		"| C: B + `authz`, 100 Cedar policies |",
		"2.00 / **2.00** / 2.00", // in-process C/A on CPU time, not wall time (3)
		"0.90 / **0.90** / 0.90", // loopback C/A requests per second
		"0.75 / **0.75** / 0.75", // loopback throughput from CPU: 60000/80000
		"| C − A (the whole stack on `tools/call`) | ≈ 500 ns | +30 |",
		"## Token exchange",
		"**20.00**",
		"Test CPU, 2 cores (GOMAXPROCS 2)",
		"go1.26 linux/amd64",
		"**The machine was busy**",
		"Noise: across rounds",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
}

// TestMissing names the benchmarks the page needs that a run did not
// produce, so a renamed benchmark fails the command instead of leaving a gap.
func TestMissing(t *testing.T) {
	res := results{}
	res.add(0, strings.NewReader(roundOutput(1000)))
	miss := res.missing(t.TempDir())
	for _, want := range []string{"BenchmarkPeers/ES256/jwx", "BenchmarkStack/inproc/D-list-filtered", "BenchmarkNoCacheRoundTrip"} {
		if !slices.Contains(miss, want) {
			t.Errorf("missing() = %v, lacks %s", miss, want)
		}
	}
	if slices.Contains(miss, "BenchmarkStack/inproc/A-bare") {
		t.Error("missing() lists a benchmark that ran")
	}
}
