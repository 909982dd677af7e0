package main

import (
	"bufio"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// results holds every benchmark figure: name (without the -GOMAXPROCS
// suffix) -> round -> unit -> value.
type results map[string]map[int]map[string]float64

// procSuffix is the -N GOMAXPROCS suffix of a benchmark name.
var procSuffix = regexp.MustCompile(`-\d+$`)

// add parses the standard benchmark output of one run in round r.
func (res results) add(r int, out io.Reader) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		vals := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			vals[f[i+1]] = v
		}
		if res[name] == nil {
			res[name] = map[int]map[string]float64{}
		}
		res[name][r] = vals
	}
}

// rounds returns the rounds in which name has unit, in order.
func (res results) rounds(name, unit string) []int {
	var rs []int
	for r, vals := range res[name] {
		if _, ok := vals[unit]; ok {
			rs = append(rs, r)
		}
	}
	slices.Sort(rs)
	return rs
}

// values returns name's unit in every round it has it.
func (res results) values(name, unit string) []float64 {
	var v []float64
	for _, r := range res.rounds(name, unit) {
		v = append(v, res[name][r][unit])
	}
	return v
}

// combine returns f(name's unit, base's unit) for every round where both
// were measured: ratios and differences within a round.
func (res results) combine(name, base, unit string, f func(x, b float64) float64) []float64 {
	var v []float64
	for _, r := range res.rounds(name, unit) {
		if b, ok := res[base][r][unit]; ok {
			v = append(v, f(res[name][r][unit], b))
		}
	}
	return v
}

func ratio(x, b float64) float64 {
	if b == 0 {
		return 0
	}
	return x / b
}

func diff(x, b float64) float64 { return x - b }

// summary is the min, median and max of a figure across rounds.
type summary struct {
	min, med, max float64
	n             int
}

func summarize(v []float64) summary {
	if len(v) == 0 {
		return summary{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return summary{min: s[0], med: med, max: s[len(s)-1], n: len(s)}
}

// spread is (max-min)/median, the noise of a figure across rounds.
func (s summary) spread() float64 {
	if s.med == 0 || s.n < 2 {
		return 0
	}
	return (s.max - s.min) / s.med
}
