package otlp

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

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

// The recipe as a service runs it: configured by the environment alone, it
// pushes the registry over OTLP/HTTP to the endpoint, at the interval,
// again and again.
func TestNewMeterProviderPushes(t *testing.T) {
	var pushes atomic.Int32
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/metrics" || r.Method != http.MethodPost {
			t.Errorf("%s %s, want POST /v1/metrics", r.Method, r.URL.Path)
		}
		b, _ := io.ReadAll(r.Body)
		body.Store(b)
		pushes.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "none")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "50")
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")

	reg := tracedRegistry(t)
	provider, err := NewMeterProvider(context.Background(), reg, "orders-service")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pushes.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := provider.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := pushes.Load(); n < 3 {
		t.Fatalf("%d pushes within 10 s at a 50 ms interval, want at least 3", n)
	}
	b, _ := body.Load().([]byte)
	for _, want := range []string{"faststream_received_messages_total", "orders-service", "service.instance.id", "app_name", "traced"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("the pushed request does not contain %q", want)
		}
	}
}
