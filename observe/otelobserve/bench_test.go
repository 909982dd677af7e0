package otelobserve_test

import (
	"context"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/authn/idptest"
	"github.com/mcpauth-go/mcpauth/observe"
)

// BenchmarkWarmVerify is the warm path (a token answered from the verified
// token cache) without an Observer, with a do-nothing one, and with this
// package's OpenTelemetry Observer on an SDK meter and tracer provider, in
// one run so that their ratio, not their absolute times, is compared
// (issue 12: the observer on must stay within 10 % of off).
func BenchmarkWarmVerify(b *testing.B) {
	tm := newTelemetry(b)
	idp := idptest.NewServer(b, idptest.Config{Audience: []string{resource}})
	tok := idp.Token(map[string]any{"sub": "alice"})
	for _, bc := range []struct {
		name string
		obs  *observe.Observer
	}{
		{"off", nil},
		{"nop", &observe.Observer{Verification: func(context.Context, observe.Verification) {}}},
		{"otel", tm.obs},
	} {
		v, err := authn.NewVerifier(authn.Config{
			Issuer: idp.Issuer(), Audience: []string{resource}, HTTPClient: idp.Client(),
			Logger: slog.New(slog.DiscardHandler), Observer: bc.obs,
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		_ = v.Close()
	}
}

// BenchmarkWarmVerifyInterleaved times blocks of warm verifications with
// the Observer off, a do-nothing Observer and the OpenTelemetry Observer
// alternately (rotating which goes first), so that load from other
// processes on a shared machine weighs on all alike. It reports the wall
// and, on Linux, thread CPU time per verification of each, and the ratios
// to off (nop/off, otel/off; -cpu for CPU time), which must stay below 1.10.
func BenchmarkWarmVerifyInterleaved(b *testing.B) {
	tm := newTelemetry(b)
	idp := idptest.NewServer(b, idptest.Config{Audience: []string{resource}})
	tok := idp.Token(map[string]any{"sub": "alice"})
	ctx := context.Background()
	arms := []*observe.Observer{nil, {Verification: func(context.Context, observe.Verification) {}}, tm.obs}
	vs := make([]*authn.Verifier, len(arms))
	for i, o := range arms {
		v, err := authn.NewVerifier(authn.Config{
			Issuer: idp.Issuer(), Audience: []string{resource}, HTTPClient: idp.Client(),
			Logger: slog.New(slog.DiscardHandler), Observer: o,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = v.Close() })
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
		vs[i] = v
	}
	const block = 256
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	var wall, cpu [3]time.Duration
	n := 0
	for b.Loop() {
		for j := range vs {
			a := (j + n) % len(vs)
			v := vs[a]
			c0, t0 := threadCPU(), time.Now()
			for range block {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
			c1, t1 := threadCPU(), time.Now()
			wall[a] += t1.Sub(t0)
			cpu[a] += c1 - c0
		}
		n++
	}
	ops := float64(n * block)
	for i, name := range []string{"off", "nop", "otel"} {
		b.ReportMetric(float64(wall[i].Nanoseconds())/ops, name+"-ns/op")
	}
	b.ReportMetric(float64(wall[1])/float64(wall[0]), "nop/off")
	b.ReportMetric(float64(wall[2])/float64(wall[0]), "otel/off")
	if cpu[0] > 0 {
		for i, name := range []string{"off", "nop", "otel"} {
			b.ReportMetric(float64(cpu[i].Nanoseconds())/ops, name+"-cpu-ns/op")
		}
		b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "nop/off-cpu")
		b.ReportMetric(float64(cpu[2])/float64(cpu[0]), "otel/off-cpu")
	}
}

// BenchmarkWarmVerifyParallel is the warm path from GOMAXPROCS goroutines
// at once, without an Observer and with the OpenTelemetry one, twice each
// in turn: concurrent cache hits must not contend on one counter.
func BenchmarkWarmVerifyParallel(b *testing.B) {
	tm := newTelemetry(b)
	idp := idptest.NewServer(b, idptest.Config{Audience: []string{resource}})
	tok := idp.Token(map[string]any{"sub": "alice"})
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		obs  *observe.Observer
	}{{"off", nil}, {"otel", tm.obs}, {"off-again", nil}, {"otel-again", tm.obs}} {
		v, err := authn.NewVerifier(authn.Config{
			Issuer: idp.Issuer(), Audience: []string{resource}, HTTPClient: idp.Client(),
			Logger: slog.New(slog.DiscardHandler), Observer: bc.obs,
		})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := v.Verify(ctx, tok); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		_ = v.Close()
	}
}
