package wmprom

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// Fuzz targets for every function that turns user data into a label or
// exemplar value. Each asserts what client_golang needs (valid UTF-8,
// exemplar labels within prometheus.ExemplarMaxRunes) and what the
// dashboard needs (no empty value), and feeds the result to a real
// counter, which panics on anything client_golang refuses. The seed
// corpus is in testdata/fuzz/<target>; run one for a while with
//
//	go test -run '^$' -fuzz '^FuzzHandlerLabel$' -fuzztime 60s .

// checkLabelValue fails on a value client_golang or the dashboard would
// refuse, or that breaks the bound.
func checkLabelValue(t *testing.T, what, v string) {
	t.Helper()
	switch {
	case v == "":
		t.Fatalf("%s is empty", what)
	case !utf8.ValidString(v):
		t.Fatalf("%s %q is not valid UTF-8", what, v)
	case utf8.RuneCountInString(v) > MaxLabelValueRunes:
		t.Fatalf("%s has %d runes, more than %d", what, utf8.RuneCountInString(v), MaxLabelValueRunes)
	case strings.Contains(v, customSeparator):
		t.Fatalf("%s %q contains the custom value separator", what, v)
	}
}

// checkRegistry gathers reg, which fails on an invalid label value, and
// checks every label value in it.
func checkRegistry(t *testing.T, reg prometheus.Gatherer) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				checkLabelValue(t, mf.GetName()+" label "+lp.GetName(), lp.GetValue())
			}
		}
	}
}

// realCounter is a counter with one label, to feed values to the real
// client_golang, exemplars included.
func realCounter(t *testing.T) (*prometheus.CounterVec, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fuzz_total", Help: "x"}, []string{"value"})
	reg.MustRegister(vec)
	return vec, reg
}

func seedHostile(f *testing.F) {
	for _, s := range []string{"", "orders", badTopic, "\xff", "a\xffb", longText, boundedText, longTraceID, brokenTraceID, traceparent, "\x00", "é\xc3"} {
		f.Add(s)
	}
}

// A subscribed topic or a handler name becomes the handler label.
func FuzzHandlerLabel(f *testing.F) {
	seedHostile(f)
	f.Fuzz(func(t *testing.T, topic string) {
		v := labelValue(topic)
		checkLabelValue(t, "handler", v)
		if utf8.ValidString(topic) && topic != "" && utf8.RuneCountInString(topic) <= MaxLabelValueRunes && v != topic {
			t.Fatalf("valid %q changed to %q", topic, v)
		}
		m, reg := newMetrics(t)
		m.receiveSeries("gochannel", topic, m.customStatic).received.Inc()
		checkRegistry(t, reg)
	})
}

// A published topic becomes the destination label, through a real
// decorated publisher.
func FuzzDestinationLabel(f *testing.F) {
	seedHostile(f)
	f.Fuzz(func(t *testing.T, topic string) {
		checkLabelValue(t, "destination", destinationLabel(topic))
		m, reg := newMetrics(t)
		pub, err := m.DecoratePublisher(localPublisher{})
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish(topic, message.NewMessage("1", nil)); err != nil {
			t.Fatalf("Publish = %v, want the wrapped publisher's nil", err)
		}
		checkRegistry(t, reg)
	})
}

// A traceparent header gives the trace id of the exemplars.
func FuzzTraceparent(f *testing.F) {
	seedHostile(f)
	f.Fuzz(func(t *testing.T, tp string) {
		id := traceIDFromTraceparent(tp)
		if id != "" {
			if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" || strings.Trim(id, "0") == "" {
				t.Fatalf("trace id %q from %q is not 32 lower-case hex digits, not all zero", id, tp)
			}
		}
		addExemplar(t, id)
	})
}

// WithTraceID's result, whatever it is, gives an exemplar or none.
func FuzzTraceID(f *testing.F) {
	seedHostile(f)
	f.Fuzz(func(t *testing.T, id string) {
		ex := addExemplar(t, id)
		if ex != nil && ex[exemplarLabel] != id {
			t.Fatalf("trace id %q changed to %q: a cut id points nowhere", id, ex[exemplarLabel])
		}
		m, _ := newMetrics(t, WithTraceID(func(*message.Message) string { return id }))
		h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		if _, err := h(message.NewMessage("1", nil)); err != nil {
			t.Fatal(err)
		}
		pub, _ := m.DecoratePublisher(localPublisher{})
		if err := pub.Publish("payments", message.NewMessage("1", nil)); err != nil {
			t.Fatalf("Publish = %v, want the wrapped publisher's nil", err)
		}
	})
}

// addExemplar checks the exemplar labels of id and adds them to a real
// counter and histogram, which panic on invalid ones.
func addExemplar(t *testing.T, id string) prometheus.Labels {
	t.Helper()
	ex := exemplarLabels(id)
	if ex != nil {
		runes := 0
		for k, v := range ex {
			runes += utf8.RuneCountInString(k) + utf8.RuneCountInString(v)
			if !utf8.ValidString(v) || v == "" {
				t.Fatalf("exemplar value %q", v)
			}
		}
		if runes > prometheus.ExemplarMaxRunes {
			t.Fatalf("exemplar of %d runes", runes)
		}
	}
	vec, _ := realCounter(t)
	add(vec.WithLabelValues("x"), 1, ex)
	observe(prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Help: "h"}), 1, ex)
	return ex
}

// WithLabelFunc results, two of them around a static label, through the
// middleware and a decorated publisher.
func FuzzLabelFunc(f *testing.F) {
	for _, s := range []string{"", "acme", badTopic, "\xff", "a\xffb", longText} {
		f.Add(s, "\xff"+s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		m, reg := newMetrics(t,
			WithLabelFunc("a", func(*message.Message) string { return a }),
			WithLabel("region", "eu"),
			WithLabelFunc("b", func(*message.Message) string { return b }))
		h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		if _, err := h(message.NewMessage("1", nil)); err != nil {
			t.Fatal(err)
		}
		pub, _ := m.DecoratePublisher(localPublisher{})
		if err := pub.Publish("payments", message.NewMessage("1", nil)); err != nil {
			t.Fatal(err)
		}
		values := splitCustomValues(customValues(m.cfg.custom, message.NewMessage("1", nil)), 3)
		if len(values) != 3 || values[0] != labelValue(a) || values[1] != "eu" || values[2] != labelValue(b) {
			t.Fatalf("custom values %q from %q, %q", values, a, b)
		}
		checkRegistry(t, reg)
	})
}

// An ErrorType method's result and a WithErrorType function's result
// become the exception_type label, on both sides.
func FuzzErrorType(f *testing.F) {
	seedHostile(f)
	f.Fuzz(func(t *testing.T, kind string) {
		for _, classify := range []func(error) string{nil, func(error) string { return kind }} {
			types := newExceptionTypes(classify, 3)
			v := types.of(namedError{kind})
			checkLabelValue(t, "exception_type", v)
			vec, reg := realCounter(t)
			vec.WithLabelValues(v).Inc()
			checkRegistry(t, reg)
		}
		m, reg := newMetrics(t, WithErrorType(func(error) string { return kind }))
		pub, _ := m.DecoratePublisher(failingPublisher{namedError{kind}})
		if err := pub.Publish("payments", message.NewMessage("1", nil)); !errors.Is(err, namedError{kind}) {
			t.Fatalf("Publish = %v, want the publisher's own error", err)
		}
		h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, namedError{kind} })
		_, _ = h(message.NewMessage("1", nil))
		checkRegistry(t, reg)
	})
}

// A type name, or a subscriber's String method, gives the broker label.
func FuzzBrokerName(f *testing.F) {
	seedHostile(f)
	f.Add("*kafka.Subscriber")
	f.Add("redisstream.\xff")
	f.Fuzz(func(t *testing.T, name string) {
		v := brokerFromTypeName(name)
		checkLabelValue(t, "broker", v)
		checkLabelValue(t, "receive broker", (&Metrics{cfg: &config{}}).receiveBroker(name, "orders"))
		vec, reg := realCounter(t)
		vec.WithLabelValues(v).Inc()
		checkRegistry(t, reg)
	})
}
