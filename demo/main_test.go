package main

import (
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wmprom/wmprom"
)

func TestParseConfigDefaults(t *testing.T) {
	for _, k := range []string{"DEMO_ADDR", "DEMO_BROKERS", "DEMO_APP_NAME", "KAFKA_BROKERS", "AMQP_URL", "NATS_URL", "REDIS_ADDR"} {
		t.Setenv(k, "")
	}
	cfg, err := parseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.addr != ":8000" || !slices.Equal(cfg.brokers, []string{"gochannel"}) || cfg.appName != "wmprom-demo" ||
		cfg.rate != 10 || cfg.stall != 20*time.Second ||
		!slices.Equal(cfg.kafkaAddrs, []string{"localhost:9092"}) || cfg.amqpURL != "amqp://guest:guest@localhost:5672/" ||
		cfg.natsURL != "nats://localhost:4222" || cfg.redisAddr != "localhost:6379" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestParseConfigEnvAndFlags(t *testing.T) {
	t.Setenv("DEMO_BROKERS", "kafka, redis,kafka")
	t.Setenv("KAFKA_BROKERS", "k1:9092,k2:9092")
	t.Setenv("REDIS_ADDR", "r:6379")
	cfg, err := parseConfig([]string{"-redis-addr", "flag:1", "-rate", "2.5"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.brokers, []string{"kafka", "redis"}) {
		t.Errorf("brokers %v, want [kafka redis] (env, trimmed, deduplicated)", cfg.brokers)
	}
	if !slices.Equal(cfg.kafkaAddrs, []string{"k1:9092", "k2:9092"}) {
		t.Errorf("kafka addrs %v", cfg.kafkaAddrs)
	}
	if cfg.redisAddr != "flag:1" || cfg.rate != 2.5 {
		t.Errorf("flags must win over env: %+v", cfg)
	}
}

func TestParseConfigErrors(t *testing.T) {
	t.Setenv("DEMO_BROKERS", "")
	for args, want := range map[string]string{
		"-brokers kafak":       `unknown broker "kafak"`,
		"-brokers ,":           "-brokers is empty",
		"-rate 0":              "-rate must be positive",
		"-stall-timeout -1s":   "-stall-timeout must be positive",
		"-addr :1 extra":       "unexpected arguments",
		"-no-such-flag":        "flag provided but not defined",
		"-rate not-a-number":   "invalid value",
		"-brokers nats,sqlite": `unknown broker "sqlite"`,
	} {
		_, err := parseConfig(strings.Fields(args))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseConfig(%s) = %v, want an error containing %q", args, err, want)
		}
	}
}

func TestMetricsURL(t *testing.T) {
	for in, want := range map[string]string{
		"[::]:8000":       "http://localhost:8000/metrics",
		"0.0.0.0:8000":    "http://localhost:8000/metrics",
		"127.0.0.1:41234": "http://127.0.0.1:41234/metrics",
	} {
		if got := metricsURL(in); got != want {
			t.Errorf("metricsURL(%s) = %s, want %s", in, got, want)
		}
	}
}

// The simulated failures must land in the statuses and exception types the
// dashboard shows: run each once through wmprom's middleware and count.
func TestStagesCoverEveryStatus(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg, wmprom.WithAppName("test"), wmprom.WithBroker("test"))
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stages {
		total := 0.0
		for _, f := range st.failures {
			total += f.weight
			failure := f.err()
			h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, failure })
			_, _ = h(message.NewMessage("id", []byte("{}")))
		}
		if total <= 0 || total >= 0.2 {
			t.Errorf("stage %s fails %.0f%% of messages; the demo should be mostly acked", st.topic, total*100)
		}
	}
	statuses := map[string]float64{}
	exceptions := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				switch {
				case f.GetName() == "faststream_received_processed_messages_total" && l.GetName() == "status":
					statuses[l.GetValue()] += metric.GetCounter().GetValue()
				case f.GetName() == "faststream_received_processed_messages_exceptions_total" && l.GetName() == "exception_type":
					exceptions[l.GetValue()] += metric.GetCounter().GetValue()
				}
			}
		}
	}
	wantStatuses := map[string]float64{"acked": 0, "error": 3, "nacked": 2, "rejected": 2, "skipped": 2}
	if !maps.Equal(statuses, wantStatuses) {
		t.Errorf("statuses %v, want %v", statuses, wantStatuses)
	}
	wantExceptions := map[string]float64{"ValidationError": 1, "context.DeadlineExceeded": 1, "errors.errorString": 1}
	if !maps.Equal(exceptions, wantExceptions) {
		t.Errorf("exception types %v, want %v", exceptions, wantExceptions)
	}
}

func TestSizesAndDurationsStayInRange(t *testing.T) {
	for range 2000 {
		if n := orderSize(); n < 40 || n >= 40_000 {
			t.Fatalf("order size %d outside [40, 40000)", n)
		}
		for _, st := range stages {
			if d := st.work(); d < time.Millisecond || d >= 400*time.Millisecond {
				t.Fatalf("stage %s work %v outside [1ms, 400ms)", st.topic, d)
			}
		}
	}
	p := payload("order", "o-1", 5000)
	if math.Abs(float64(len(p)-5000)) > 2 {
		t.Errorf("payload of %d bytes, want about 5000", len(p))
	}
}
