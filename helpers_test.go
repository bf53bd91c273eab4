package wmprom

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// brokerOf detects the broker of a publisher or subscriber value.
func brokerOf(v any) string { return brokerOfType(reflect.TypeOf(v)) }

// withClock makes durations exact: the middleware and the publisher read
// time only through it.
func withClock(c *fakeClock) Option {
	return func(cfg *config) {
		cfg.now = c.Now
		cfg.since = func(t time.Time) time.Duration { return c.Now().Sub(t) }
	}
}

// fakeClock stands still until a test advances it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newMetrics(t *testing.T, opts ...Option) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, reg
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testRouter is a running router on an in-memory GoChannel.
type testRouter struct {
	*message.Router
	pubsub *gochannel.GoChannel
}

// runRouter builds a router with setup, runs it until the test ends and
// waits until it is running.
func runRouter(t *testing.T, setup func(r *message.Router, ps *gochannel.GoChannel)) *testRouter {
	t.Helper()
	return runRouterWithLogger(t, watermill.NopLogger{}, setup)
}

// runRouterWithLogger is runRouter with logger as the router's logger.
func runRouterWithLogger(t *testing.T, logger watermill.LoggerAdapter, setup func(r *message.Router, ps *gochannel.GoChannel)) *testRouter {
	t.Helper()
	ps := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, logger)
	if err != nil {
		t.Fatal(err)
	}
	setup(r, ps)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		// Close, not just cancel: Watermill v1.4's router misses a cancel
		// whose handlers stop before its watcher of them starts, and then
		// never returns from Run.
		if err := r.Close(); err != nil {
			t.Errorf("close router: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("router: %v", err)
		}
		_ = ps.Close()
	})
	select {
	case <-r.Running():
	case err := <-done:
		t.Fatalf("router stopped before running: %v", err)
	}
	return &testRouter{Router: r, pubsub: ps}
}

func (tr *testRouter) publish(t *testing.T, topic string, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		if err := tr.pubsub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(p))); err != nil {
			t.Fatal(err)
		}
	}
}

// samples renders every sample of the named families (without the
// "faststream_" prefix), one per line, sorted, leaving out the labels in
// omit. Histograms render as _count and _sum only.
func samples(t *testing.T, reg prometheus.Gatherer, omit []string, families ...string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, f := range families {
		want[f] = true
	}
	skip := map[string]bool{}
	for _, o := range omit {
		skip[o] = true
	}
	var lines []string
	for _, mf := range mfs {
		name := strings.TrimPrefix(mf.GetName(), "faststream_")
		if !want[name] {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				if !skip[lp.GetName()] {
					ls = append(ls, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
				}
			}
			labels := "{" + strings.Join(ls, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				lines = append(lines, name+labels+" "+num(m.GetCounter().GetValue()))
			case dto.MetricType_GAUGE:
				lines = append(lines, name+labels+" "+num(m.GetGauge().GetValue()))
			case dto.MetricType_HISTOGRAM:
				lines = append(lines, name+"_count"+labels+" "+fmt.Sprint(m.GetHistogram().GetSampleCount()))
				lines = append(lines, name+"_sum"+labels+" "+num(m.GetHistogram().GetSampleSum()))
			}
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func num(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%g", v)
}

// dedent trims a table's literal expectation to the form samples gives.
func dedent(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func assertSamples(t *testing.T, reg prometheus.Gatherer, omit []string, want string, families ...string) {
	t.Helper()
	if got := samples(t, reg, omit, families...); got != dedent(want) {
		t.Errorf("samples differ\n--- got\n%s\n--- want\n%s", got, dedent(want))
	}
}

// counterValue sums the counter family name over series matching labels.
func counterValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

func processedTotal(t *testing.T, reg prometheus.Gatherer) float64 {
	return counterValue(t, reg, "faststream_received_processed_messages_total", nil)
}

//lint:file-ignore SA1019 AddNoPublisherHandler, deprecated in Watermill v1.5, is the name that v1.4, the oldest supported, also has

// addConsumer adds a handler without a publisher. The tests run on the
// oldest Watermill the library supports (v1.4) as well as on the newest,
// and AddConsumerHandler only came with v1.5: AddNoPublisherHandler is the
// name both know.
func addConsumer(r *message.Router, name, topic string, sub message.Subscriber, h message.NoPublishHandlerFunc) *message.Handler {
	return r.AddNoPublisherHandler(name, topic, sub, h)
}

// waitSamples polls until the samples of families are exactly want: the
// whole recorded state, not one counter of it, so that nothing recorded
// a moment later is checked too early. A state that never comes fails
// with the last difference.
func waitSamples(t *testing.T, reg prometheus.Gatherer, omit []string, want string, families ...string) {
	t.Helper()
	want = dedent(want)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := samples(t, reg, omit, families...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("samples never became the expected ones\n--- got\n%s\n--- want\n%s", got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitProcessed waits until n messages have a status and none is in
// process any more. The gauge is read only once the n statuses are seen:
// taking a message out of the gauge is the last thing recording it does,
// so the gauge at zero after that means every count of the n messages is
// there. (Read in the same scrape, the gauge could have been collected
// before the last message even came in.)
func waitProcessed(t *testing.T, reg prometheus.Gatherer, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d processed", n), func() bool { return processedTotal(t, reg) == float64(n) })
	eventually(t, "nothing in process", func() bool {
		return counterValue(t, reg, "faststream_received_messages_in_process", nil) == 0
	})
}
