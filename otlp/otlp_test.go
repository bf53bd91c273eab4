package otlp

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
)

func TestProtocol(t *testing.T) {
	for _, tc := range []struct {
		metrics, all, want string
		fails              bool
	}{
		{want: "http/protobuf"},
		{all: "grpc", want: "grpc"},
		{all: "http/protobuf", want: "http/protobuf"},
		{metrics: "grpc", all: "http/protobuf", want: "grpc"},
		{metrics: "http/protobuf", all: "grpc", want: "http/protobuf"},
		{all: "http/json", fails: true},
	} {
		t.Setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", tc.metrics)
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", tc.all)
		got, err := Protocol()
		if (err != nil) != tc.fails || got != tc.want {
			t.Errorf("metrics %q, all %q: Protocol() = %q, %v; want %q, error %v", tc.metrics, tc.all, got, err, tc.want, tc.fails)
		}
	}
}

func TestNewResource(t *testing.T) {
	attr := func(t *testing.T, name string) string {
		t.Helper()
		res, err := NewResource(context.Background(), "orders-service")
		if err != nil {
			t.Fatal(err)
		}
		v, _ := res.Set().Value(attribute.Key(name))
		return v.AsString()
	}
	t.Run("defaults", func(t *testing.T) {
		t.Setenv("OTEL_SERVICE_NAME", "")
		t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
		if got := attr(t, "service.name"); got != "orders-service" {
			t.Errorf("service.name %q, want the default orders-service", got)
		}
		if got := attr(t, "service.instance.id"); got == "" {
			t.Error("no service.instance.id: Prometheus would store no instance label")
		}
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv("OTEL_SERVICE_NAME", "billing")
		t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=pod-7,service.name=ignored")
		if got := attr(t, "service.name"); got != "billing" {
			t.Errorf("service.name %q, want OTEL_SERVICE_NAME's billing", got)
		}
		if got := attr(t, "service.instance.id"); got != "pod-7" {
			t.Errorf("service.instance.id %q, want OTEL_RESOURCE_ATTRIBUTES's pod-7", got)
		}
	})
}

func TestNewReaderRejectsUnknownProtocol(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json")
	if _, err := NewReader(context.Background(), nil); err == nil {
		t.Fatal("NewReader accepted OTLP protocol http/json")
	}
}
