package otlp_test

import (
	"context"
	"log"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wmprom/wmprom"
	"github.com/wmprom/wmprom/otlp"
)

// A service that pushes wmprom's families over OTLP and serves no /metrics:
// the registry wmprom records into is read by the MeterProvider's periodic
// reader. Run it with, for example,
// OTEL_EXPORTER_OTLP_ENDPOINT=http://prometheus:9090/api/v1/otlp and
// OTEL_SERVICE_NAME=orders-service.
func ExampleNewMeterProvider() {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	metrics, err := wmprom.New(reg, wmprom.WithAppName("orders-service"))
	if err != nil {
		log.Fatal(err)
	}
	provider, err := otlp.NewMeterProvider(ctx, reg, "orders-service")
	if err != nil {
		log.Fatal(err)
	}
	// The last push happens on shutdown.
	defer func() {
		if err := provider.Shutdown(context.Background()); err != nil {
			log.Print(err)
		}
	}()

	_ = metrics // router.AddPlugin(metrics.Plugin), as with /metrics
}
