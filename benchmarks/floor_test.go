package benchmarks

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// floorRecorder is the least that any recorder of FastStream's receive
// and publish families does per message, hooked in where the no-op hooks
// are: per handler call two clock readings, the received count, a size
// and a duration observation and the processed count; per publish two
// clock readings, a duration observation and the published count. Each
// handler chain and each publisher has counters of its own, as wmprom's
// series are per handler and destination. It has no labels, no statuses
// waiting on the publish, no exemplars and no exposition: what wmprom
// costs beyond it is everything but the recording itself.
type floorRecorder struct {
	epoch time.Time
	mu    sync.Mutex
	all   []*floorCounts // every chain's and publisher's, for the test
}

// floorCounts are one handler's or one publisher's counters. Sizes and
// durations go to a histogram of as many buckets as wmprom's defaults,
// found the same way.
type floorCounts struct {
	calls    atomic.Uint64 // received, or published
	done     atomic.Uint64 // processed; publishes that returned
	size     floorHistogram
	duration floorHistogram
}

type floorHistogram struct {
	buckets [16]atomic.Uint64
	sum     atomic.Uint64 // bytes or nanoseconds
}

// Bounds of the same lengths as wmprom's default size and duration
// buckets: a bucket search costs the same.
var (
	floorSizeBounds     = []float64{1 << 4, 1 << 6, 1 << 8, 1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24}
	floorDurationBounds = []float64{.005, .01, .025, .05, .075, .1, .25, .5, .75, 1, 2.5, 5, 7.5, 10}
)

func (h *floorHistogram) observe(bounds []float64, v float64, sum uint64) {
	i := len(bounds)
	for j, b := range bounds {
		if v <= b {
			i = j
			break
		}
	}
	h.buckets[i].Add(1)
	h.sum.Add(sum)
}

func newFloorRecorder() *floorRecorder { return &floorRecorder{epoch: time.Now()} }

// floorInstrumentation is the floor as one more setup of the GoChannel
// benchmark, whose pipeline is short enough for its cost to show.
var floorInstrumentation = instrumentation{name: "floor", add: func(_ testing.TB, r *message.Router, _ *prometheus.Registry) {
	r.AddPlugin(newFloorRecorder().plugin)
}}

// floorHandlerInstrumentation is the floor in the per-message cardinality
// benchmarks: the counters of each handler chain and each publisher are
// the least state per handler that a recorder reads and writes per
// message, so at 10,000 busy handlers it pays the cache misses that no
// per-handler recording avoids.
var floorHandlerInstrumentation = handlerInstrumentation{name: "floor", new: func(testing.TB, *prometheus.Registry) (message.HandlerMiddleware, message.PublisherDecorator) {
	f := newFloorRecorder()
	return f.middleware, f.decorate
}}

func (f *floorRecorder) counts() *floorCounts {
	c := new(floorCounts)
	f.mu.Lock()
	f.all = append(f.all, c)
	f.mu.Unlock()
	return c
}

// plugin adds the floor's middleware and publisher decorator, and the
// same pass-through subscriber decorator as the no-op hooks.
func (f *floorRecorder) plugin(r *message.Router) error {
	addHooks(r, f.middleware, f.decorate)
	return nil
}

// decorate is the floor's publisher decorator: counters of its own for
// each publisher it wraps.
func (f *floorRecorder) decorate(pub message.Publisher) (message.Publisher, error) {
	return &floorPublisher{next: pub, f: f, c: f.counts()}, nil
}

func (f *floorRecorder) middleware(h message.HandlerFunc) message.HandlerFunc {
	c := f.counts()
	return func(msg *message.Message) ([]*message.Message, error) {
		c.calls.Add(1)
		n := len(msg.Payload)
		c.size.observe(floorSizeBounds, float64(n), uint64(n))
		start := time.Since(f.epoch)
		produced, err := h(msg)
		c.observeDuration(time.Since(f.epoch) - start)
		return produced, err
	}
}

func (c *floorCounts) observeDuration(d time.Duration) {
	c.duration.observe(floorDurationBounds, d.Seconds(), uint64(d))
	c.done.Add(1)
}

// total sums calls and done over every chain and publisher.
func (f *floorRecorder) total() (calls, done uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.all {
		calls += c.calls.Load()
		done += c.done.Load()
	}
	return calls, done
}

type floorPublisher struct {
	next message.Publisher
	f    *floorRecorder
	c    *floorCounts
}

func (p *floorPublisher) Publish(topic string, msgs ...*message.Message) error {
	start := time.Since(p.f.epoch)
	err := p.next.Publish(topic, msgs...)
	p.c.calls.Add(uint64(len(msgs)))
	p.c.observeDuration(time.Since(p.f.epoch) - start)
	return err
}

func (p *floorPublisher) Close() error { return p.next.Close() }
