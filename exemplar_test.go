package wmprom

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

const (
	traceHex    = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceparent = "00-" + traceHex + "-00f067aa0ba902b7-01"
)

func TestTraceIDFromTraceparent(t *testing.T) {
	cases := map[string]string{
		traceparent: traceHex,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra": traceHex, // a future version may append fields
		"": "",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01": "", // upper case is invalid
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01": "", // the all-zero id is invalid
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7":    "", // too short
		"00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01": "",
		"00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01": "",
	}
	for in, want := range cases {
		if got := traceIDFromTraceparent(in); got != want {
			t.Errorf("traceIDFromTraceparent(%q) = %q, want %q", in, got, want)
		}
	}
}

func tracedMessage() *message.Message {
	msg := message.NewMessage("1", []byte("abc"))
	msg.Metadata.Set("traceparent", traceparent)
	return msg
}

// exemplars lists "family trace_id" for every exemplar in reg.
func exemplars(t *testing.T, reg prometheus.Gatherer) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	note := func(name string, e *dto.Exemplar) {
		if e == nil {
			return
		}
		for _, lp := range e.GetLabel() {
			out = append(out, strings.TrimPrefix(name, "faststream_")+" "+lp.GetName()+"="+lp.GetValue())
		}
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			note(mf.GetName(), m.GetCounter().GetExemplar())
			for _, b := range m.GetHistogram().GetBucket() {
				note(mf.GetName(), b.GetExemplar())
			}
		}
	}
	return out
}

func TestExemplars(t *testing.T) {
	handle := func(m *Metrics, err error) {
		h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, err })
		_, _ = h(tracedMessage())
		pub, _ := m.DecoratePublisher(failingPublisher{err})
		_ = pub.Publish("payments", tracedMessage())
	}
	t.Run("on by default, from the traceparent", func(t *testing.T) {
		m, reg := newMetrics(t)
		handle(m, &decodeError{})
		want := []string{
			"published_messages_duration_seconds trace_id=" + traceHex,
			"published_messages_exceptions_total trace_id=" + traceHex,
			"published_messages_total trace_id=" + traceHex,
			"received_messages_total trace_id=" + traceHex,
			"received_processed_messages_duration_seconds trace_id=" + traceHex,
			"received_processed_messages_exceptions_total trace_id=" + traceHex,
			"received_processed_messages_total trace_id=" + traceHex,
		}
		if got := exemplars(t, reg); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("exemplars:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("off", func(t *testing.T) {
		m, reg := newMetrics(t, WithExemplars(false))
		handle(m, &decodeError{})
		if got := exemplars(t, reg); len(got) != 0 {
			t.Errorf("exemplars with WithExemplars(false): %v", got)
		}
	})
	t.Run("a trace id of the application's own", func(t *testing.T) {
		m, reg := newMetrics(t, WithTraceID(func(*message.Message) string { return "abc123" }))
		handle(m, nil)
		got := exemplars(t, reg)
		if len(got) != 5 || got[0] != "published_messages_duration_seconds trace_id=abc123" {
			t.Errorf("exemplars: %v", got)
		}
	})
	t.Run("no trace, no exemplar", func(t *testing.T) {
		m, reg := newMetrics(t)
		h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		_, _ = h(message.NewMessage("1", nil))
		if got := exemplars(t, reg); len(got) != 0 {
			t.Errorf("exemplars without a trace: %v", got)
		}
	})
}

// In the OpenMetrics exposition the exemplar follows its sample, and the
// classic series the dashboard reads are all still there.
func TestExemplarsInOpenMetrics(t *testing.T) {
	clock := newFakeClock()
	m, reg := newMetrics(t, withClock(clock))
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) {
		clock.Advance(30 * time.Millisecond)
		return nil, nil
	})
	_, _ = h(tracedMessage())

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	text := string(body)
	for _, want := range []string{
		`faststream_received_messages_total{app_name="faststream",broker="unknown",handler="unknown"} 1.0 # {trace_id="` + traceHex + `"} 1.0`,
		`faststream_received_processed_messages_duration_seconds_bucket{app_name="faststream",broker="unknown",handler="unknown",le="0.05"} 1 # {trace_id="` + traceHex + `"} 0.03`,
		`faststream_received_processed_messages_duration_seconds_sum{app_name="faststream",broker="unknown",handler="unknown"} 0.03`,
		`faststream_received_processed_messages_duration_seconds_count{app_name="faststream",broker="unknown",handler="unknown"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("OpenMetrics exposition lacks\n%s\n--- got\n%s", want, text)
		}
	}
}
