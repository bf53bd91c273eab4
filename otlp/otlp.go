// Package otlp pushes a Prometheus registry, such as the one wmprom records
// into, over OTLP, for services that export their metrics with the
// OpenTelemetry SDK instead of (or as well as) serving /metrics.
//
// It is the recipe of docs/otlp.md as compiled code: the OpenTelemetry
// Prometheus bridge reads the registry as a metric producer of a periodic
// reader, whose OTLP exporter, over HTTP or gRPC, is configured by the
// standard OTEL_* environment variables. The wmprom library itself imports
// no OpenTelemetry package; this module is separate so that only services
// that push pay for the OpenTelemetry SDK.
//
// The variables read are:
//
//   - OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
//     OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT and the other
//     variables of the OTLP exporters, read by the exporters themselves;
//   - OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL:
//     "http/protobuf" (the default) or "grpc";
//   - OTEL_METRIC_EXPORT_INTERVAL and OTEL_METRIC_EXPORT_TIMEOUT, in
//     milliseconds, read by the periodic reader (default 15000, see
//     [DefaultInterval], and 30000);
//   - OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, for the resource:
//     Prometheus's OTLP receiver makes service.name (prefixed by
//     service.namespace and a slash, when set) the job label, and
//     service.instance.id the instance label.
package otlp

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promotel "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// Protocol is the OTLP transport that OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
// else OTEL_EXPORTER_OTLP_PROTOCOL, selects: "http/protobuf" when neither
// is set, or an error for a value other than "http/protobuf" and "grpc".
func Protocol() (string, error) {
	p := os.Getenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
	if p == "" {
		p = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch p {
	case "":
		return "http/protobuf", nil
	case "http/protobuf", "grpc":
		return p, nil
	}
	return "", fmt.Errorf("otlp: OTLP protocol %q is not supported: want http/protobuf or grpc", p)
}

// NewExporter returns the OTLP metric exporter of the protocol that
// [Protocol] selects, configured by the exporter's own OTEL_EXPORTER_OTLP_*
// variables.
func NewExporter(ctx context.Context) (sdkmetric.Exporter, error) {
	p, err := Protocol()
	if err != nil {
		return nil, err
	}
	if p == "grpc" {
		return otlpmetricgrpc.New(ctx)
	}
	return otlpmetrichttp.New(ctx)
}

// NewReader returns a periodic reader that pushes what gatherer gathers
// over OTLP, through the exporter of [NewExporter], at the interval of
// OTEL_METRIC_EXPORT_INTERVAL, or every [DefaultInterval] when it is
// unset. The bridge reads gatherer through [TraceIDGatherer], so that
// exemplars arrive with valid trace ids. Give the reader to the service's
// own MeterProvider with [sdkmetric.WithReader]; it pushes the
// instruments of that MeterProvider too.
func NewReader(ctx context.Context, gatherer prometheus.Gatherer) (sdkmetric.Reader, error) {
	exp, err := NewExporter(ctx)
	if err != nil {
		return nil, err
	}
	bridge := promotel.NewMetricProducer(promotel.WithGatherer(TraceIDGatherer(gatherer)))
	opts := []sdkmetric.PeriodicReaderOption{sdkmetric.WithProducer(bridge)}
	if os.Getenv(intervalVar) == "" {
		opts = append(opts, sdkmetric.WithInterval(DefaultInterval))
	}
	return sdkmetric.NewPeriodicReader(exp, opts...), nil
}

// intervalVar is the variable the periodic reader reads its interval from.
const intervalVar = "OTEL_METRIC_EXPORT_INTERVAL"

// DefaultInterval is how often [NewReader]'s reader pushes when
// OTEL_METRIC_EXPORT_INTERVAL is unset, instead of the SDK's 60 s:
// dashboard 22130 draws rate(...[1m]), which needs two samples a minute,
// and 15 s is the scrape interval most setups use.
const DefaultInterval = 15 * time.Second

// NewResource describes the service: service.name is serviceName unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES names it, and
// service.instance.id is the host name unless OTEL_RESOURCE_ATTRIBUTES
// gives one, so that Prometheus's OTLP receiver gives every series a job
// and an instance label, as a scrape would.
func NewResource(ctx context.Context, serviceName string) (*resource.Resource, error) {
	var defaults []attribute.KeyValue
	if serviceName != "" {
		defaults = append(defaults, attribute.String("service.name", serviceName))
	}
	if host, err := os.Hostname(); err == nil && host != "" {
		defaults = append(defaults, attribute.String("service.instance.id", host))
	}
	// Later options win: the environment overrides the defaults.
	return resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(defaults...),
		resource.WithFromEnv(),
	)
}

// NewMeterProvider returns a MeterProvider for a service that has none:
// its resource is [NewResource]'s for serviceName and its one reader is
// [NewReader]'s over gatherer. Shut it down when the service stops, so that
// its last push is sent.
func NewMeterProvider(ctx context.Context, gatherer prometheus.Gatherer, serviceName string) (*sdkmetric.MeterProvider, error) {
	res, err := NewResource(ctx, serviceName)
	if err != nil {
		return nil, err
	}
	reader, err := NewReader(ctx, gatherer)
	if err != nil {
		return nil, err
	}
	return sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(reader)), nil
}
