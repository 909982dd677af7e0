package otelobserve_test

import (
	"context"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/observe/otelobserve"
)

// New's Observer set in an authn.Config: the verifications it reports are
// read from the meter provider like any other metric (here with a
// ManualReader; in production, the Prometheus or OTLP exporter's reader).
func ExampleNew() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	obs, err := otelobserve.New(otelobserve.Config{MeterProvider: mp})
	if err != nil {
		panic(err)
	}
	v, err := authn.NewVerifier(authn.Config{
		Issuer:   "https://login.example.com",
		Audience: []string{"https://mcp.example.com/mcp"},
		Observer: obs,
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()
	_, _ = v.Verify(context.Background(), "not-a-jwt")

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "mcpauth.authn.verifications" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				cause, _ := dp.Attributes.Value(otelobserve.KeyCause)
				outcome, _ := dp.Attributes.Value(otelobserve.KeyOutcome)
				fmt.Printf("%s %s/%s: %d\n", m.Name, outcome.AsString(), cause.AsString(), dp.Value)
			}
		}
	}
	// Output:
	// mcpauth.authn.verifications invalid/malformed: 1
}
