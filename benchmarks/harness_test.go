package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wmprom/wmprom"
)

// payloadSize is the body of every benchmark message: small, as most
// events are, so that the broker and the router dominate less than they
// would with large bodies and the instrumentation's share shows.
const payloadSize = 256

// drainTimeout bounds the wait for a round's last message. It is a
// deadline against hangs, not a measurement.
const drainTimeout = 2 * time.Minute

// instrumentation is one way of instrumenting a whole router, as a user
// would set it up.
type instrumentation struct {
	name string
	// add instruments r, registering its metrics with reg. It runs
	// before any handler is added.
	add func(tb testing.TB, r *message.Router, reg *prometheus.Registry)
}

// routerInstrumentations are the four setups every end-to-end benchmark
// compares, in the order benchstat shows them: the first is the base.
// "hooks" hooks into the router exactly where the wmprom Plugin does (a
// middleware, a publisher decorator and a subscriber decorator) but does
// nothing there: what wmprom costs beyond it is the cost of recording.
var routerInstrumentations = []instrumentation{
	{name: "none", add: func(testing.TB, *message.Router, *prometheus.Registry) {}},
	{name: "hooks", add: func(_ testing.TB, r *message.Router, _ *prometheus.Registry) {
		r.AddPlugin(noopPlugin)
	}},
	{name: "wmprom", add: func(tb testing.TB, r *message.Router, reg *prometheus.Registry) {
		m, err := wmprom.New(reg)
		if err != nil {
			tb.Fatal(err)
		}
		r.AddPlugin(m.Plugin)
	}},
	{name: "watermill", add: func(_ testing.TB, r *message.Router, reg *prometheus.Registry) {
		// Watermill's documented way: middleware plus publisher and
		// subscriber decorators on every handler.
		metrics.NewPrometheusMetricsBuilder(reg, "", "").AddPrometheusRouterMetrics(r)
	}},
}

// noopPlugin adds the same three hooks as wmprom's Plugin, each passing
// straight through, so that the router runs the same extra layers.
func noopPlugin(r *message.Router) error {
	addHooks(r, passThrough, func(pub message.Publisher) (message.Publisher, error) {
		return noopPublisher{pub}, nil
	})
	return nil
}

// addHooks adds mw, decorate and a pass-through subscriber decorator:
// the three places wmprom's Plugin hooks into a router.
func addHooks(r *message.Router, mw message.HandlerMiddleware, decorate message.PublisherDecorator) {
	r.AddMiddleware(mw)
	r.AddPublisherDecorators(decorate)
	r.AddSubscriberDecorators(func(sub message.Subscriber) (message.Subscriber, error) {
		return noopSubscriber{sub}, nil
	})
}

// passThrough is a middleware that adds a layer and nothing else.
func passThrough(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) { return h(msg) }
}

// noopPublisher and noopSubscriber are decorators that add a layer and
// nothing else.
type noopPublisher struct{ message.Publisher }

func (p noopPublisher) Publish(topic string, msgs ...*message.Message) error {
	return p.Publisher.Publish(topic, msgs...)
}

type noopSubscriber struct{ message.Subscriber }

func (s noopSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.Subscriber.Subscribe(ctx, topic)
}

// pipeline counts the messages a round has carried to its end and, when
// windowed, bounds how many are in flight.
type pipeline struct {
	target   int64
	done     atomic.Int64
	failed   atomic.Int64
	finished chan struct{}
	// window holds one token per message in flight; nil when the
	// messages were all loaded before the clock started.
	window chan struct{}
}

func newPipeline(n, window int) *pipeline {
	p := &pipeline{target: int64(n), finished: make(chan struct{})}
	if window > 0 {
		p.window = make(chan struct{}, window)
	}
	if n == 0 {
		close(p.finished)
	}
	return p
}

// acquire waits for room in the window before a message is sent.
func (p *pipeline) acquire() {
	if p.window != nil {
		p.window <- struct{}{}
	}
}

// complete records one message that went all the way through.
func (p *pipeline) complete() {
	if p.window != nil {
		<-p.window
	}
	if p.done.Add(1) == p.target {
		close(p.finished)
	}
}

// wait blocks until every message went through, or fails tb.
func (p *pipeline) wait(tb testing.TB) {
	tb.Helper()
	select {
	case <-p.finished:
	case <-time.After(drainTimeout):
		tb.Fatalf("only %d of %d messages went through in %s (%d publishes failed)",
			p.done.Load(), p.target, drainTimeout, p.failed.Load())
	}
	if f := p.failed.Load(); f > 0 {
		tb.Fatalf("%d publishes of produced messages failed", f)
	}
}

// countingPublisher is the handler's real publisher, innermost under any
// decorator: a produced message is done once the broker took it.
type countingPublisher struct {
	next message.Publisher
	p    *pipeline
}

func (c *countingPublisher) Publish(topic string, msgs ...*message.Message) error {
	err := c.next.Publish(topic, msgs...)
	for range msgs {
		if err != nil {
			c.p.failed.Add(1)
			continue
		}
		c.p.complete()
	}
	return err
}

func (c *countingPublisher) Close() error { return c.next.Close() }

// produce is the handler every end-to-end benchmark runs: it turns the
// consumed message into one new message, as a typical transform does.
func produce(msg *message.Message) ([]*message.Message, error) {
	return []*message.Message{message.NewMessage(watermill.NewUUID(), msg.Payload)}, nil
}

// runningRouter is a started router, stopped by stop.
type runningRouter struct {
	r    *message.Router
	done chan error
}

func newRouter(tb testing.TB) *message.Router {
	tb.Helper()
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, watermill.NopLogger{})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// start runs r until stop and waits until it is running.
func start(tb testing.TB, r *message.Router) *runningRouter {
	tb.Helper()
	rr := &runningRouter{r: r, done: make(chan error, 1)}
	go func() { rr.done <- r.Run(context.Background()) }()
	select {
	case <-r.Running():
	case err := <-rr.done:
		tb.Fatalf("router stopped before running: %v", err)
	case <-time.After(drainTimeout):
		tb.Fatal("router not running after", drainTimeout)
	}
	return rr
}

func (rr *runningRouter) stop(tb testing.TB) {
	tb.Helper()
	if err := rr.r.Close(); err != nil {
		tb.Errorf("closing router: %v", err)
	}
	if err := <-rr.done; err != nil && !errors.Is(err, context.Canceled) {
		tb.Errorf("router: %v", err)
	}
}

// clock measures one timed stretch in wall time and in CPU time of the
// whole process (every thread: router, client, GC, and the embedded
// nats-server where there is one).
type clock struct {
	wall time.Time
	cpu  time.Duration
}

func startClock() clock { return clock{wall: time.Now(), cpu: processCPU()} }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds messages per second and CPU nanoseconds per message to the
// ns/op the benchmark already reports (one op is one message through the
// whole router). CPU time is the steadier of the two on a shared machine:
// it does not count the time a thread waits for a core or for a wake-up.
func (c clock) report(b *testing.B) {
	elapsed, cpu := time.Since(c.wall), processCPU()-c.cpu
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

var topicSeq atomic.Int64

// uniqueTopic names a topic of one round, so that rounds on a broker that
// keeps messages never see each other's messages.
func uniqueTopic(prefix string) string {
	return fmt.Sprintf("wmprom_bench_%s_%d_%d", prefix, time.Now().UnixNano(), topicSeq.Add(1))
}
