package otlp

import (
	"bytes"
	"context"
	"encoding/hex"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	promotel "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/wmprom/wmprom"
)

const traceID = "0af7651916cd43dd8448eb211c80319c"

// tracedRegistry is a wmprom registry that has handled one message of
// trace traceID.
func tracedRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg, wmprom.WithAppName("traced"))
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage("m", []byte("{}"))
	msg.Metadata.Set("traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	if _, err := h(msg); err != nil {
		t.Fatal(err)
	}
	return reg
}

// exemplarTraceIDs returns the trace id of every exemplar the bridge
// produces from g, by metric name.
func exemplarTraceIDs(t *testing.T, g prometheus.Gatherer) map[string][][]byte {
	t.Helper()
	scopes, err := promotel.NewMetricProducer(promotel.WithGatherer(g)).Produce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][][]byte{}
	for _, s := range scopes {
		for _, m := range s.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[float64]:
				for _, dp := range d.DataPoints {
					for _, e := range dp.Exemplars {
						out[m.Name] = append(out[m.Name], e.TraceID)
					}
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					for _, e := range dp.Exemplars {
						out[m.Name] = append(out[m.Name], e.TraceID)
					}
				}
			}
		}
	}
	return out
}

// The bridge alone copies the 32 hex digits into a 32-byte trace id, which
// OTLP receivers reject; through TraceIDGatherer it sends the 16 bytes.
func TestTraceIDGatherer(t *testing.T) {
	reg := tracedRegistry(t)
	want, _ := hex.DecodeString(traceID)
	wantNames := []string{
		"faststream_received_messages_total",
		"faststream_received_processed_messages_duration_seconds",
		"faststream_received_processed_messages_total",
	}

	plain := exemplarTraceIDs(t, reg)
	for _, name := range wantNames {
		if ids := plain[name]; len(ids) != 1 || string(ids[0]) != traceID {
			t.Errorf("the bridge alone: %s exemplar trace ids %q, want the 32 characters %s (if this changed, the bridge decodes them itself)", name, ids, traceID)
		}
	}

	fixed := exemplarTraceIDs(t, TraceIDGatherer(reg))
	if len(fixed) != len(wantNames) {
		t.Errorf("exemplars on %d metrics, want %d: %v", len(fixed), len(wantNames), fixed)
	}
	for _, name := range wantNames {
		if ids := fixed[name]; len(ids) != 1 || !bytes.Equal(ids[0], want) {
			t.Errorf("through TraceIDGatherer: %s exemplar trace ids %x, want the 16 bytes %s", name, ids, traceID)
		}
	}

	// What /metrics serves is untouched.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "faststream_received_messages_total" {
			continue
		}
		e := mf.GetMetric()[0].GetCounter().GetExemplar()
		if got := e.GetLabel()[0].GetValue(); got != traceID {
			t.Errorf("after a push, the registry's exemplar has trace_id %q, want %s", got, traceID)
		}
	}
}

func TestRawIDsLeavesOthersAlone(t *testing.T) {
	for _, v := range []string{"", "abc", "zz" + traceID[2:], traceID + "00"} {
		raw, ok := decodeID(labelPair("trace_id", v))
		if ok {
			t.Errorf("trace_id %q decoded to %x, want it left alone", v, raw)
		}
	}
	if raw, ok := decodeID(labelPair("span_id", "b7ad6b7169203331")); !ok || len(raw) != 8 {
		t.Errorf("span_id: %x, %v; want 8 bytes", raw, ok)
	}
	if _, ok := decodeID(labelPair("user", traceID)); ok {
		t.Error("a label other than trace_id and span_id was decoded")
	}
}

func labelPair(name, value string) *dto.LabelPair { return &dto.LabelPair{Name: &name, Value: &value} }
