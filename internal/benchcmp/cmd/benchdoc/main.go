// Command benchdoc regenerates docs/benchmarks.md from a run on this
// machine. From the repository root:
//
//	go run ./internal/benchcmp/cmd/benchdoc
//
// It builds the test binaries of internal/benchcmp and tokenexchange, runs
// their benchmarks in several interleaved rounds (each round runs every
// benchmark once, so a burst of load from elsewhere hits all rows of a round
// alike), and writes one page: token verification against peer libraries as
// ratios to the bare signature check, the full stack (issue 13's A/B/C/D
// table) in process and over loopback as ratios to the bare handler, token
// exchange cached against exchanging on every request, and the machine's
// state, the Go version and the noise (spread across rounds) of every
// figure. Costs are compared on process CPU time, which a shared machine
// disturbs far less than wall time: internal/benchcmp reports it as
// cpu-ns/op, and for tokenexchange's benchmarks (wall time only) benchdoc
// measures it from outside. Ratios are computed within each round, then
// summarised.
//
// Flags:
//
//	-o          output file (default docs/benchmarks.md under the repository root)
//	-rounds     interleaved rounds (default 5)
//	-benchtime  benchtime of the in-process benchmarks (default 1s)
//	-requests   requests per loopback case per round (default 3000)
//	-quick      one short round, for trying the command (the page says so)
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "benchdoc:", err)
		}
		os.Exit(1)
	}
}

// settings are the command-line settings.
type settings struct {
	out       string
	rounds    int
	benchtime string
	requests  int
	quick     bool
}

func run(args []string, log io.Writer) error {
	var s settings
	fs := flag.NewFlagSet("benchdoc", flag.ContinueOnError)
	fs.SetOutput(log)
	fs.StringVar(&s.out, "o", "", "output file (default docs/benchmarks.md under the repository root)")
	fs.IntVar(&s.rounds, "rounds", 5, "interleaved rounds")
	fs.StringVar(&s.benchtime, "benchtime", "1s", "benchtime of the in-process benchmarks")
	fs.IntVar(&s.requests, "requests", 3000, "requests per loopback case per round")
	fs.BoolVar(&s.quick, "quick", false, "one short round, to try the command")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if s.quick {
		s.rounds, s.benchtime, s.requests = 1, "100ms", 200
	}
	if s.rounds < 1 || s.requests < 1 {
		return errors.New("-rounds and -requests must be positive")
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if s.out == "" {
		s.out = filepath.Join(root, "docs", "benchmarks.md")
	}
	tmp, err := os.MkdirTemp("", "benchdoc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	bins := map[string]string{
		"benchcmp":      "./internal/benchcmp",
		"tokenexchange": "./tokenexchange",
	}
	for name, pkg := range bins {
		fmt.Fprintf(log, "building %s\n", pkg)
		bin := filepath.Join(tmp, name+".test")
		cmd := exec.Command("go", "test", "-c", "-o", bin, pkg)
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, log, log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building %s: %w", pkg, err)
		}
		bins[name] = bin
	}

	m := machineState(root)
	res := results{}
	started := time.Now()
	for r := range s.rounds {
		load := loadAvg()
		m.loads = append(m.loads, load)
		fmt.Fprintf(log, "round %d/%d (load %s)\n", r+1, s.rounds, load)
		for _, b := range []struct{ bin, dir, bench, benchtime string }{
			{bins["benchcmp"], "internal/benchcmp", "^BenchmarkPeers$", s.benchtime},
			{bins["benchcmp"], "internal/benchcmp", "^BenchmarkStack$/^inproc$", s.benchtime},
			{bins["benchcmp"], "internal/benchcmp", "^BenchmarkStack$/^loopback$", fmt.Sprintf("%dx", s.requests)},
			{bins["tokenexchange"], "tokenexchange", exchangeBenchmarks, s.benchtime},
		} {
			cmd := exec.Command(b.bin, "-test.run", "^$", "-test.bench", b.bench,
				"-test.benchtime", b.benchtime, "-test.count", "1", "-test.timeout", "20m")
			cmd.Dir = filepath.Join(root, b.dir)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, log), log
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("%s -test.bench %s: %w", filepath.Base(b.bin), b.bench, err)
			}
			res.add(r, &out)
		}
		// tokenexchange's benchmarks report wall time only; measure their
		// CPU time from outside.
		for _, row := range exchangeRows {
			if err := res.measureCPU(r, bins["tokenexchange"], filepath.Join(root, "tokenexchange"), row.name); err != nil {
				return err
			}
		}
	}
	if miss := res.missing(root); len(miss) > 0 {
		// A renamed or removed benchmark must not leave a silent gap.
		return fmt.Errorf("no results for %s", strings.Join(miss, ", "))
	}
	m.loads = append(m.loads, loadAvg())
	m.duration = time.Since(started).Round(time.Second)
	m.settings = s

	page := render(m, res)
	if err := os.MkdirAll(filepath.Dir(s.out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(s.out, []byte(page), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(log, "wrote %s in %s\n", s.out, m.duration)
	return nil
}

// measureCPU adds cpu-ns/op for benchmark name in round r, from the CPU time
// (user + system) of two runs of the test binary: one of a fixed count n
// and one of a single iteration. Their difference is n iterations plus one
// more benchmark setup, which is small beside n iterations of about half a
// second; process start-up cancels out. n is set from the wall time per
// operation this round already measured.
func (res results) measureCPU(r int, bin, dir, name string) error {
	wall, ok := res[name][r]["ns/op"]
	if !ok || wall <= 0 {
		return nil
	}
	n := max(100, int(5e8/wall))
	cpu := func(count int) (time.Duration, error) {
		cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", "^"+name+"$",
			"-test.benchtime", fmt.Sprintf("%dx", count), "-test.count", "1", "-test.timeout", "10m")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("%s -test.bench %s: %w\n%s", filepath.Base(bin), name, err, out)
		}
		return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
	}
	many, err := cpu(n)
	if err != nil {
		return err
	}
	one, err := cpu(1)
	if err != nil {
		return err
	}
	if d := many - one; d > 0 {
		res[name][r][cpuUnit] = float64(d.Nanoseconds()) / float64(n)
	}
	return nil
}

// exchangeBenchmarks are tokenexchange's benchmarks shown on the page.
const exchangeBenchmarks = "^(BenchmarkSHA256Subject|BenchmarkCacheHitRoundTrip|BenchmarkNoCacheRoundTrip|BenchmarkBaselineExchangeEveryRequest)$"

// repoRoot is the directory of the go.work file in use.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOWORK: %w", err)
	}
	work := strings.TrimSpace(string(out))
	if work == "" || work == "off" {
		return "", errors.New("run from inside the repository (no go.work found)")
	}
	return filepath.Dir(work), nil
}

// machine is the state of the machine and the run, for the page.
type machine struct {
	cpu, goVersion, commit, kernel string
	cores, maxprocs                int
	loads                          []string // load average before each round and at the end
	date                           time.Time
	duration                       time.Duration
	settings                       settings
}

func machineState(root string) machine {
	m := machine{cores: runtime.NumCPU(), maxprocs: runtime.GOMAXPROCS(0), date: time.Now().UTC(), cpu: "unknown"}
	if out, err := exec.Command("go", "env", "GOVERSION", "GOOS", "GOARCH").Output(); err == nil {
		f := strings.Fields(string(out))
		if len(f) == 3 {
			m.goVersion = f[0] + " " + f[1] + "/" + f[2]
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	cmd := exec.Command("git", "describe", "--always", "--dirty")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		m.commit = strings.TrimSpace(string(out))
	}
	return m
}

// loadAvg returns the 1, 5 and 15 minute load averages, or "unknown".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
