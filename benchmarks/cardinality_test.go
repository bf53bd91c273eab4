package benchmarks

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wmprom/wmprom"
)

// cardinalities are the numbers of distinct handler and destination
// label values compared.
var cardinalities = []int{10, 1000, 10000}

// handlerInstrumentation instruments handlers and a publisher one by one,
// as a router does for each handler it runs.
type handlerInstrumentation struct {
	name string
	new  func(tb testing.TB, reg *prometheus.Registry) (message.HandlerMiddleware, message.PublisherDecorator)
}

var handlerInstrumentations = []handlerInstrumentation{
	{name: "none", new: func(testing.TB, *prometheus.Registry) (message.HandlerMiddleware, message.PublisherDecorator) {
		return func(h message.HandlerFunc) message.HandlerFunc { return h },
			func(p message.Publisher) (message.Publisher, error) { return p, nil }
	}},
	{name: "wmprom", new: func(tb testing.TB, reg *prometheus.Registry) (message.HandlerMiddleware, message.PublisherDecorator) {
		// Every handler its own label set: the default bound (1,000 sets)
		// would fold the larger cardinalities into one overflow set.
		m, err := wmprom.New(reg, wmprom.WithMaxLabelSets(slices.Max(cardinalities)))
		if err != nil {
			tb.Fatal(err)
		}
		return m.Middleware, m.DecoratePublisher
	}},
	{name: "watermill", new: func(_ testing.TB, reg *prometheus.Registry) (message.HandlerMiddleware, message.PublisherDecorator) {
		b := metrics.NewPrometheusMetricsBuilder(reg, "", "")
		return b.NewRouterMiddleware().Middleware, b.DecoratePublisher
	}},
}

var (
	routersMu sync.Mutex
	routers   = map[int]*routerHandlers{}
)

// routerHandlers are n handlers of a real router on a GoChannel, each
// subscribed to its own topic: for each, the context the router gave its
// first message, and the function with which the router gives every
// message that context. The context carries the handler's names, which
// the instrumentations read, and only the router can set them.
type routerHandlers struct {
	ctxs []context.Context
	// contextOf are the router's own functions (addHandlerContext, behind
	// the subscriber decorator it applies first): called on a new message,
	// each gives it a new context as the router gives every message.
	contextOf []func(*message.Message)
}

// handlerContexts returns n handlers of a real router, built once per
// size and test binary.
func handlerContexts(tb testing.TB, n int) *routerHandlers {
	tb.Helper()
	routersMu.Lock()
	defer routersMu.Unlock()
	if rh, ok := routers[n]; ok {
		return rh
	}
	begin := time.Now()
	ps := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	defer ps.Close()
	r := newRouter(tb)
	rh := &routerHandlers{ctxs: make([]context.Context, n), contextOf: make([]func(*message.Message), n)}
	var contextOfMu sync.Mutex
	r.AddSubscriberDecorators(func(sub message.Subscriber) (message.Subscriber, error) {
		contextOf := routerContextFunc(tb, sub)
		probe := message.NewMessage("", nil)
		contextOf(probe)
		var i int
		if _, err := fmt.Sscanf(message.SubscribeTopicFromCtx(probe.Context()), topicFormat, &i); err != nil {
			tb.Fatalf("router context of an unknown handler: %v", err)
		}
		contextOfMu.Lock()
		rh.contextOf[i] = contextOf
		contextOfMu.Unlock()
		return sub, nil
	})
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		topic := handlerTopic(i)
		r.AddConsumerHandler(topic, topic, ps, func(msg *message.Message) error {
			if rh.ctxs[i] == nil {
				rh.ctxs[i] = msg.Context()
				wg.Done()
			}
			return nil
		})
	}
	rr := start(tb, r)
	for i := range n {
		if err := ps.Publish(handlerTopic(i), message.NewMessage(watermill.NewUUID(), nil)); err != nil {
			tb.Fatal(err)
		}
	}
	wg.Wait()
	rr.stop(tb)
	tb.Logf("%d router handlers built in %s", n, time.Since(begin).Round(time.Millisecond))
	routers[n] = rh
	return rh
}

// routerContextFunc reads the function of the decorator the router
// applies to a handler's subscriber before any other (Watermill's
// message.MessageTransformSubscriberDecorator, which keeps it in an
// unexported field): only a test may read it so.
func routerContextFunc(tb testing.TB, sub message.Subscriber) func(*message.Message) {
	tb.Helper()
	v := reflect.ValueOf(sub)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		tb.Fatalf("the router's context decorator is a %T", sub)
	}
	f := v.Elem().FieldByName("transform")
	if !f.IsValid() || f.Type() != reflect.TypeOf((func(*message.Message))(nil)) {
		tb.Fatalf("the router's context decorator %T has no transform function", sub)
	}
	return *(*func(*message.Message))(unsafe.Pointer(f.UnsafeAddr()))
}

const topicFormat = "orders.%05d"

func handlerTopic(i int) string     { return fmt.Sprintf(topicFormat, i) }
func destinationTopic(i int) string { return fmt.Sprintf("invoices.%05d", i) }

// series is n instrumented handlers, each with its message, its
// instrumented publisher and its destination.
type series struct {
	ctxs      []context.Context
	contextOf []func(*message.Message) // the router's, see routerHandlers
	handlers  []message.HandlerFunc
	msgs      []*message.Message
	// pubs are the handlers' publishers: a router decorates each
	// handler's publisher on its own, so each has its own.
	pubs []message.Publisher
	// batches are what each handler publishes: one message, in a slice
	// made once so that the variadic call allocates nothing.
	batches [][]*message.Message
	topics  []string
}

// newSeries makes the messages of n handlers; instrument makes their
// handlers and publishers.
func newSeries(rh *routerHandlers) *series {
	ctxs := rh.ctxs
	n := len(ctxs)
	s := &series{
		ctxs: ctxs, contextOf: rh.contextOf, handlers: make([]message.HandlerFunc, n), msgs: make([]*message.Message, n),
		pubs: make([]message.Publisher, n), batches: make([][]*message.Message, n), topics: make([]string, n),
	}
	for i, ctx := range ctxs {
		s.msgs[i] = message.NewMessage(watermill.NewUUID(), make([]byte, payloadSize))
		s.msgs[i].SetContext(ctx)
		s.batches[i] = []*message.Message{message.NewMessage(watermill.NewUUID(), make([]byte, payloadSize))}
		s.topics[i] = destinationTopic(i)
	}
	return s
}

// instrument wraps every handler and publisher of s with in, registering
// with reg: each handler's chain is made by calling in's middleware, as
// the application would, without a router. Creating series, their heap
// and their scrape do not depend on who makes the chains.
func (s *series) instrument(tb testing.TB, in handlerInstrumentation, reg *prometheus.Registry) *series {
	tb.Helper()
	mw, decorate := in.new(tb, reg)
	for i := range s.handlers {
		s.handlers[i] = mw(emptyHandler)
	}
	return s.decorate(tb, decorate)
}

// instrumentByRouter is instrument with each handler's chain built by a
// router, as it builds them when it starts its handlers (routerChains):
// what the per-message benchmarks time. wmprom's Middleware takes its
// handler's series once in a chain the router builds, and reads every
// message's context in one built any other way.
func (s *series) instrumentByRouter(tb testing.TB, in handlerInstrumentation, reg *prometheus.Registry) *series {
	tb.Helper()
	mw, decorate := in.new(tb, reg)
	s.handlers = routerChains(tb, len(s.handlers), mw)
	return s.decorate(tb, decorate)
}

// decorate gives each handler a publisher of its own, decorated: a router
// decorates each handler's publisher on its own.
func (s *series) decorate(tb testing.TB, decorate message.PublisherDecorator) *series {
	tb.Helper()
	for i := range s.pubs {
		pub, err := decorate(nopPublisher{})
		if err != nil {
			tb.Fatal(err)
		}
		s.pubs[i] = pub
	}
	return s
}

// routerChains returns the handler chains a router builds with mw for n
// handlers, subscribed to the topics of handlerContexts' handlers. The
// router calls mw for each handler when it starts it; a handler-level
// middleware of each handler, added before mw and so run around it,
// keeps the chain mw returns. The handlers do nothing, as emptyHandler.
func routerChains(tb testing.TB, n int, mw message.HandlerMiddleware) []message.HandlerFunc {
	tb.Helper()
	ps := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	defer ps.Close()
	r := newRouter(tb)
	chains := make([]message.HandlerFunc, n)
	var built sync.WaitGroup
	built.Add(n)
	for i := range n {
		topic := handlerTopic(i)
		r.AddConsumerHandler(topic, topic, ps, func(*message.Message) error { return nil }).
			AddMiddleware(func(chain message.HandlerFunc) message.HandlerFunc {
				chains[i] = chain
				built.Done()
				return chain
			})
	}
	r.AddMiddleware(mw)
	rr := start(tb, r)
	built.Wait()
	rr.stop(tb)
	return chains
}

// handle runs handler i on its message and publishes its output to its
// destination. The published message gets the handler's context back
// each time: Watermill's publisher decorator adds a value to it on every
// publish, and skips recording a message it has already seen.
func (s *series) handle(i int) error {
	if _, err := s.handlers[i](s.msgs[i]); err != nil {
		return err
	}
	s.batches[i][0].SetContext(s.ctxs[i])
	return s.pubs[i].Publish(s.topics[i], s.batches[i]...)
}

// handleFresh is handle as a router runs a handler: the message is new,
// given the handler's context by the router's own function, and so is the
// message it publishes; the router acks the message once the publish has
// returned. A router makes every message it hands a handler just before,
// so what the message holds is in the CPU's caches when the handler
// chain reads it, whichever handler it is for: handle instead keeps one
// message per handler, which with thousands of handlers is as cold as
// the handler's series.
func (s *series) handleFresh(i int) error {
	msg := message.NewMessage(freshUUID, freshPayload)
	s.contextOf[i](msg)
	if _, err := s.handlers[i](msg); err != nil {
		return err
	}
	out := message.NewMessage(freshUUID, freshPayload)
	s.contextOf[i](out)
	err := s.pubs[i].Publish(s.topics[i], out)
	msg.Ack()
	return err
}

// The UUID and payload of every message handleFresh makes: the
// instrumentations read neither the UUID nor the payload's bytes, only
// its length.
var (
	freshUUID    = watermill.NewUUID()
	freshPayload = make([]byte, payloadSize)
)

// touch records one message of every handler and one publish to every
// destination: after it, every series exists.
func (s *series) touch(tb testing.TB) {
	for i := range s.handlers {
		if err := s.handle(i); err != nil {
			tb.Fatal(err)
		}
	}
}

func emptyHandler(*message.Message) ([]*message.Message, error) { return nil, nil }

type nopPublisher struct{}

func (nopPublisher) Publish(string, ...*message.Message) error { return nil }
func (nopPublisher) Close() error                              { return nil }

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// exposedSamples counts the samples one scrape of reg exposes.
func exposedSamples(tb testing.TB, reg *prometheus.Registry) (samples int, body []byte) {
	tb.Helper()
	rec := scrape(reg)
	body = rec.Body.Bytes()
	for line := range bytes.Lines(body) {
		if len(line) > 0 && line[0] != '#' {
			samples++
		}
	}
	return samples, body
}

var scrapeRequest = httptest.NewRequest(http.MethodGet, "/metrics", nil)

// scrape serves one /metrics request the way Prometheus' text scrape
// does, uncompressed.
func scrape(reg *prometheus.Registry) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, scrapeRequest)
	return rec
}

// BenchmarkCardinalityCreate times instrumenting n handlers and their
// publishers, their first message and their first publish to n
// destinations, which create their series, and measures the heap this
// keeps: ns/handler and B/handler are per handler and destination pair,
// B/sample per exposed sample (a histogram bucket, sum or count is one
// sample, as Prometheus stores it). Without instrumentation there is
// nothing to create, so it is not in the comparison.
func BenchmarkCardinalityCreate(b *testing.B) {
	for _, n := range cardinalities {
		ctxs := handlerContexts(b, n)
		for _, in := range handlerInstrumentations[1:] {
			b.Run(fmt.Sprintf("series=%d/instr=%s", n, in.name), func(b *testing.B) {
				// The heap is measured once: a full collection before and
				// after each round would take far longer than the round.
				// The messages are made before, so only what the
				// instrumentation keeps is counted.
				s := newSeries(ctxs)
				reg := prometheus.NewRegistry()
				before := heapInUse()
				s.instrument(b, in, reg).touch(b)
				heap := heapInUse() - before
				samples, _ := exposedSamples(b, reg)
				runtime.KeepAlive(s)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					s.instrument(b, in, prometheus.NewRegistry()).touch(b)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/handler")
				b.ReportMetric(float64(heap)/float64(n), "B/handler")
				b.ReportMetric(float64(samples)/float64(n), "samples/handler")
				if samples > 0 {
					b.ReportMetric(float64(heap)/float64(samples), "B/sample")
				}
			})
		}
	}
}

// BenchmarkCardinalitySteady is the steady-state cost of one message once
// every series exists: one message to each of n handlers in turn, in an
// order that looks random (busyOrder), each handler with its own
// middleware chain, built by a router, and its own decorated publisher,
// each publishing to a destination of its own. One op is one handled
// message plus one publish. With n handlers busy in turn, the series of
// all n are the working set the CPU caches must hold.
func BenchmarkCardinalitySteady(b *testing.B) {
	benchmarkSteady(b, (*series).handle, func(n int) int { return n })
}

// BenchmarkCardinalityFresh is BenchmarkCardinalitySteady with messages
// made as a router makes them (handleFresh): one op is a new message
// handled, a new message published and the first acked. The cold
// messages of BenchmarkCardinalitySteady charge the instrumentations
// with cache misses on messages that a router would have just written;
// here only their own state per handler is cold.
func BenchmarkCardinalityFresh(b *testing.B) {
	benchmarkSteady(b, (*series).handleFresh, func(n int) int { return n })
}

// BenchmarkCardinalityHot is BenchmarkCardinalitySteady with all n
// handlers' series in the registry but only 10 of the handlers busy:
// what the number of series costs by itself, apart from the working set.
func BenchmarkCardinalityHot(b *testing.B) {
	benchmarkSteady(b, (*series).handle, func(n int) int { return min(n, 10) })
}

func benchmarkSteady(b *testing.B, handle func(s *series, i int) error, active func(n int) int) {
	for _, n := range cardinalities {
		ctxs := handlerContexts(b, n)
		for _, in := range append(handlerInstrumentations, floorHandlerInstrumentation) {
			b.Run(fmt.Sprintf("series=%d/instr=%s", n, in.name), func(b *testing.B) {
				s := newSeries(ctxs).instrumentByRouter(b, in, prometheus.NewRegistry())
				s.touch(b)
				order := busyOrder(active(n))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					_ = handle(s, order[i])
					if i++; i == len(order) {
						i = 0
					}
				}
			})
		}
	}
}

// busyOrder is the order in which the per-message benchmarks give n busy
// handlers a message each, the same in every run: a permutation that
// looks random, as messages reach a busy service's handlers. Handlers in
// index order would have the CPU prefetch the next handler's state,
// which sits next to this one's when it was made in a loop: at 10,000
// handlers that hid most of the cache misses a service pays.
func busyOrder(n int) []int {
	return rand.New(rand.NewPCG(1, 2)).Perm(n)
}

// BenchmarkCardinalityScrape times one /metrics scrape (text format,
// uncompressed) of a registry holding n handlers' and destinations'
// series; bytes/scrape is the size of the response.
func BenchmarkCardinalityScrape(b *testing.B) {
	for _, n := range cardinalities {
		ctxs := handlerContexts(b, n)
		for _, in := range handlerInstrumentations[1:] {
			b.Run(fmt.Sprintf("series=%d/instr=%s", n, in.name), func(b *testing.B) {
				reg := prometheus.NewRegistry()
				s := newSeries(ctxs).instrument(b, in, reg)
				s.touch(b)
				samples, body := exposedSamples(b, reg)
				b.ReportAllocs()
				for b.Loop() {
					scrape(reg)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(samples), "ns/sample")
				b.ReportMetric(float64(len(body)), "bytes/scrape")
				b.ReportMetric(float64(samples), "samples/scrape")
			})
		}
	}
}

// TestCardinalityMessagesAreInstrumented checks that both ways the
// cardinality benchmarks handle a message (handle, handleFresh) go
// through the instrumentation with the router's names, once per message:
// each of three handlers handles one message each way and once more
// fresh.
func TestCardinalityMessagesAreInstrumented(t *testing.T) {
	const n = 3
	reg := prometheus.NewRegistry()
	s := newSeries(handlerContexts(t, n)).instrumentByRouter(t, handlerInstrumentations[1], reg)
	for i := range n {
		for _, handle := range []func(*series, int) error{(*series).handle, (*series).handleFresh, (*series).handleFresh} {
			if err := handle(s, i); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The publishers' broker label is the package of the publisher they
	// wrap, nopPublisher's; the handlers' is their router subscriber's.
	var want strings.Builder
	want.WriteString("# HELP faststream_published_messages_total Messages published, by status: success or error.\n" +
		"# TYPE faststream_published_messages_total counter\n")
	for i := range n {
		for _, st := range []struct {
			name  string
			count int
		}{{"error", 0}, {"success", 3}} {
			fmt.Fprintf(&want, "faststream_published_messages_total{app_name=\"faststream\",broker=\"benchmarks\",destination=%q,status=%q} %d\n",
				destinationTopic(i), st.name, st.count)
		}
	}
	want.WriteString("# HELP faststream_received_processed_messages_total Messages processed, by status: acked, nacked, rejected, skipped or error.\n" +
		"# TYPE faststream_received_processed_messages_total counter\n")
	for i := range n {
		for _, st := range []string{"acked", "error", "nacked", "rejected", "skipped"} {
			count := 0
			if st == "acked" {
				count = 3
			}
			fmt.Fprintf(&want, "faststream_received_processed_messages_total{app_name=\"faststream\",broker=\"gochannel\",handler=%q,status=%q} %d\n",
				handlerTopic(i), st, count)
		}
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want.String()),
		"faststream_published_messages_total", "faststream_received_processed_messages_total"); err != nil {
		t.Error(err)
	}
}
