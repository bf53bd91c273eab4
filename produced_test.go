package wmprom

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
)

// producedCase is one way the hand-over of a produced-messages status can
// go wrong. The router gets the one message "first"; handle sees each
// call of the handler for it (attempt counts from 1). want is the exact
// final state, the same in the registry of every Metrics of the case.
type producedCase struct {
	name    string
	metrics int // 1 unless the case instruments the router twice
	setup   func(t *testing.T, r *message.Router, ps *gochannel.GoChannel, ms []*Metrics, h message.HandlerFunc)
	handle  func(attempt int, msg *message.Message) ([]*message.Message, error)
	want    string
}

// producedFamilies are the families a producedCase checks.
var producedFamilies = []string{
	"received_messages_total", "received_messages_in_process",
	"received_processed_messages_total", "received_processed_messages_exceptions_total",
	"published_messages_total", "published_messages_exceptions_total",
}

func produceAlways(int, *message.Message) ([]*message.Message, error) { return produce("paid"), nil }

func TestProducedStatuses(t *testing.T) {
	cases := []producedCase{{
		name: "same Metrics decorates another publisher while the router uses Middleware alone",
		setup: func(t *testing.T, r *message.Router, ps *gochannel.GoChannel, ms []*Metrics, h message.HandlerFunc) {
			if _, err := ms[0].DecoratePublisher(nopPublisher{}); err != nil {
				t.Fatal(err)
			}
			r.AddMiddleware(ms[0].Middleware)
			r.AddHandler("orders", "orders", ps, "payments", &failOncePublisher{Publisher: ps}, h)
		},
		handle: produceAlways,
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 1, 1, 0, 0, 0) + `
			received_processed_messages_exceptions_total{exception_type="unknown",handler="orders"} 1`,
	}, {
		name: "Plugin and Middleware both on the router: counted once, by the outer layer, whose status the publish decides",
		setup: func(t *testing.T, r *message.Router, ps *gochannel.GoChannel, ms []*Metrics, h message.HandlerFunc) {
			r.AddMiddleware(ms[0].Middleware)
			r.AddPlugin(ms[0].Plugin)
			r.AddHandler("orders", "orders", ps, "payments", &failOncePublisher{Publisher: ps}, h)
		},
		handle: produceAlways,
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 1, 1, 0, 0, 0) + `
			received_processed_messages_exceptions_total{exception_type="wmprom.brokerDownError",handler="orders"} 1
			published_messages_total{destination="payments",status="error"} 1
			published_messages_total{destination="payments",status="success"} 1
			published_messages_exceptions_total{destination="payments",exception_type="wmprom.brokerDownError"} 1`,
	}, {
		name:    "two Metrics instrument one router: each decides its own",
		metrics: 2,
		setup: func(t *testing.T, r *message.Router, ps *gochannel.GoChannel, ms []*Metrics, h message.HandlerFunc) {
			r.AddPlugin(ms[0].Plugin, ms[1].Plugin)
			r.AddHandler("orders", "orders", ps, "payments", &failOncePublisher{Publisher: ps}, h)
		},
		handle: produceAlways,
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 1, 1, 0, 0, 0) + `
			received_processed_messages_exceptions_total{exception_type="wmprom.brokerDownError",handler="orders"} 1
			published_messages_total{destination="payments",status="error"} 1
			published_messages_total{destination="payments",status="success"} 1
			published_messages_exceptions_total{destination="payments",exception_type="wmprom.brokerDownError"} 1`,
	}, {
		name: "an outer middleware fails the message after the handler succeeded",
		setup: func(t *testing.T, r *message.Router, ps *gochannel.GoChannel, ms []*Metrics, h message.HandlerFunc) {
			r.AddMiddleware(failFirstSuccess(false))
			viaPlugin(r, ps, ms[0], h)
		},
		handle: produceAlways,
		want:   nackedByTheRouter,
	}, {
		name: "an outer middleware keeps the produced messages but fails",
		setup: func(t *testing.T, r *message.Router, ps *gochannel.GoChannel, ms []*Metrics, h message.HandlerFunc) {
			r.AddMiddleware(failFirstSuccess(true))
			viaPlugin(r, ps, ms[0], h)
		},
		handle: produceAlways,
		want:   nackedByTheRouter,
	}, {
		name: "Duplicator whose second call fails: the first call's status is the router's nack",
		setup: func(t *testing.T, r *message.Router, ps *gochannel.GoChannel, ms []*Metrics, h message.HandlerFunc) {
			r.AddMiddleware(middleware.Duplicator)
			viaPlugin(r, ps, ms[0], h)
		},
		handle: func(attempt int, _ *message.Message) ([]*message.Message, error) {
			if attempt == 2 {
				return nil, errors.New("boom")
			}
			return produce("paid"), nil
		},
		want: `
			received_messages_total{handler="orders"} 4
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 2, 2, 0, 0, 0) + `
			received_processed_messages_exceptions_total{exception_type="errors.errorString",handler="orders"} 1
			received_processed_messages_exceptions_total{exception_type="unknown",handler="orders"} 1
			published_messages_total{destination="payments",status="error"} 0
			published_messages_total{destination="payments",status="success"} 2`,
	}, {
		name: "the handler's publisher panics: a failed publish with exception panic",
		setup: func(t *testing.T, r *message.Router, ps *gochannel.GoChannel, ms []*Metrics, h message.HandlerFunc) {
			r.AddPlugin(ms[0].Plugin)
			r.AddHandler("orders", "orders", ps, "payments", &panicOncePublisher{Publisher: ps}, h)
		},
		handle: produceAlways,
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 1, 1, 0, 0, 0) + `
			received_processed_messages_exceptions_total{exception_type="panic",handler="orders"} 1
			published_messages_total{destination="payments",status="error"} 1
			published_messages_total{destination="payments",status="success"} 1
			published_messages_exceptions_total{destination="payments",exception_type="panic"} 1`,
	}, {
		name: "a produced slice holds a nil message: the router panics on it and nacks",
		handle: func(attempt int, _ *message.Message) ([]*message.Message, error) {
			if attempt == 1 {
				return append(produce("paid"), nil), nil
			}
			return produce("paid"), nil
		},
		want: nackedByTheRouter,
	}, {
		name: "a nil message is published while a router publish is in flight",
		setup: func(t *testing.T, r *message.Router, ps *gochannel.GoChannel, ms []*Metrics, h message.HandlerFunc) {
			audit, err := ms[0].DecoratePublisher(nopPublisher{})
			if err != nil {
				t.Fatal(err)
			}
			inFlight := &blockingPublisher{Publisher: ps, entered: make(chan struct{}), release: make(chan struct{})}
			go func() {
				<-inFlight.entered
				defer close(inFlight.release)
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("publishing a nil message panicked: %v", r)
					}
				}()
				if err := audit.Publish("audit", nil); err != nil {
					t.Errorf("publishing a nil message: %v", err)
				}
			}()
			r.AddPlugin(ms[0].Plugin)
			r.AddHandler("orders", "orders", ps, "payments", inFlight, h)
		},
		handle: produceAlways,
		want: `
			received_messages_total{handler="orders"} 1
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 1, 0, 0, 0, 0) + `
			published_messages_total{destination="audit",status="error"} 0
			published_messages_total{destination="audit",status="success"} 1
			published_messages_total{destination="payments",status="error"} 0
			published_messages_total{destination="payments",status="success"} 1`,
	}, {
		name: "empty publish topic and a failing publish: error, as the router nacks",
		setup: func(t *testing.T, r *message.Router, ps *gochannel.GoChannel, ms []*Metrics, h message.HandlerFunc) {
			r.AddPlugin(ms[0].Plugin)
			r.AddHandler("orders", "orders", ps, "", &failOncePublisher{Publisher: ps}, h)
		},
		handle: produceAlways,
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 1, 1, 0, 0, 0) + `
			received_processed_messages_exceptions_total{exception_type="wmprom.brokerDownError",handler="orders"} 1
			published_messages_total{destination="unknown",status="error"} 1
			published_messages_total{destination="unknown",status="success"} 1
			published_messages_exceptions_total{destination="unknown",exception_type="wmprom.brokerDownError"} 1`,
	}, {
		name: "3 produced messages published one by one, the 2nd fails: error",
		setup: func(t *testing.T, r *message.Router, ps *gochannel.GoChannel, ms []*Metrics, h message.HandlerFunc) {
			r.AddPublisherDecorators(oneByOne)
			r.AddPlugin(ms[0].Plugin)
			r.AddHandler("orders", "orders", ps, "payments", failMarkedPublisher{ps}, h)
		},
		handle: func(attempt int, _ *message.Message) ([]*message.Message, error) {
			out := append(append(produce("paid"), produce("invoiced")...), produce("shipped")...)
			if attempt == 1 {
				out[1].Metadata.Set(failKey, "yes")
			}
			return out, nil
		},
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 1, 1, 0, 0, 0) + `
			received_processed_messages_exceptions_total{exception_type="wmprom.brokerDownError",handler="orders"} 1
			published_messages_total{destination="payments",status="error"} 1
			published_messages_total{destination="payments",status="success"} 4
			published_messages_exceptions_total{destination="payments",exception_type="wmprom.brokerDownError"} 1`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := max(tc.metrics, 1)
			ms := make([]*Metrics, n)
			regs := make([]*prometheus.Registry, n)
			for i := range ms {
				// The broker is fixed: a second Metrics' subscriber
				// decorator would otherwise detect the first one's
				// wrapper as a broker of its own, which is not what
				// this test is about.
				ms[i], regs[i] = newMetrics(t, WithBroker("gochannel"))
			}
			var attempts atomic.Int32
			h := func(msg *message.Message) ([]*message.Message, error) {
				return tc.handle(int(attempts.Add(1)), msg)
			}
			setup := tc.setup
			if setup == nil {
				setup = func(_ *testing.T, r *message.Router, ps *gochannel.GoChannel, ms []*Metrics, h message.HandlerFunc) {
					viaPlugin(r, ps, ms[0], h)
				}
			}
			tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) { setup(t, r, ps, ms, h) })
			tr.publish(t, "orders", "first")
			for i, reg := range regs {
				waitSamples(t, reg, []string{"app_name", "broker"}, tc.want, producedFamilies...)
				if p := ms[i].undecided.pending.Load(); p != 0 {
					t.Errorf("Metrics %d: %d statuses still pending", i, p)
				}
			}
		})
	}
}

// nackedByTheRouter is the state after the router nacked the first
// delivery, for a reason wmprom cannot see, and acked the second.
var nackedByTheRouter = `
	received_messages_total{handler="orders"} 2
	received_messages_in_process{handler="orders"} 0
	` + processed("orders", 1, 1, 0, 0, 0) + `
	received_processed_messages_exceptions_total{exception_type="unknown",handler="orders"} 1
	published_messages_total{destination="payments",status="error"} 0
	published_messages_total{destination="payments",status="success"} 1`

// failFirstSuccess fails the first call whose inner handler succeeds,
// returning the produced messages too when keep is set.
func failFirstSuccess(keep bool) message.HandlerMiddleware {
	var failed atomic.Bool
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			produced, err := h(msg)
			if err == nil && failed.CompareAndSwap(false, true) {
				if !keep {
					produced = nil
				}
				return produced, errors.New("outer check failed")
			}
			return produced, err
		}
	}
}

// panicOncePublisher panics in its first Publish, then delegates.
type panicOncePublisher struct {
	message.Publisher
	panicked atomic.Bool
}

func (p *panicOncePublisher) Publish(topic string, msgs ...*message.Message) error {
	if p.panicked.CompareAndSwap(false, true) {
		panic("broker client bug")
	}
	return p.Publisher.Publish(topic, msgs...)
}

// blockingPublisher holds its first Publish until release is closed.
type blockingPublisher struct {
	message.Publisher
	entered, release chan struct{}
	once             atomic.Bool
}

func (p *blockingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if p.once.CompareAndSwap(false, true) {
		close(p.entered)
		<-p.release
	}
	return p.Publisher.Publish(topic, msgs...)
}

// failKey marks a message failMarkedPublisher refuses.
const failKey = "test_fail"

type failMarkedPublisher struct{ message.Publisher }

func (p failMarkedPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		if msg.Metadata.Get(failKey) != "" {
			return brokerDownError{}
		}
	}
	return p.Publisher.Publish(topic, msgs...)
}

// oneByOne is an application publisher decorator that publishes a batch
// one message per call, stopping at the first error, as many broker
// clients do.
func oneByOne(pub message.Publisher) (message.Publisher, error) { return oneByOnePublisher{pub}, nil }

type oneByOnePublisher struct{ message.Publisher }

func (p oneByOnePublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		if err := p.Publisher.Publish(topic, msg); err != nil {
			return err
		}
	}
	return nil
}

// A panicking publisher is a failed publish, and its panic reaches the
// caller unchanged.
func TestPublisherPanicGoesOn(t *testing.T) {
	m, reg := newMetrics(t, withClock(newFakeClock()))
	pub, err := m.DecoratePublisher(&panicOncePublisher{Publisher: nopPublisher{}})
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r != "broker client bug" {
				t.Errorf("recovered %v, want the publisher's panic", r)
			}
		}()
		_ = pub.Publish("payments", msgs(2)...)
		t.Error("the panic did not propagate")
	}()
	assertSamples(t, reg, []string{"app_name", "broker"}, `
		published_messages_total{destination="payments",status="error"} 2
		published_messages_total{destination="payments",status="success"} 0
		published_messages_duration_seconds_count{destination="payments"} 1
		published_messages_duration_seconds_sum{destination="payments"} 0
		published_messages_exceptions_total{destination="payments",exception_type="panic"} 1`,
		"published_messages_total", "published_messages_duration_seconds", "published_messages_exceptions_total")
}

// Later messages settle the statuses the router decided, without a
// scrape, however many publishes are still in flight: each message
// settles the oldest statuses the router decided and moves the first
// undecided one to the back, so that the statuses behind the in-flight
// ones are settled after one message per publish in flight.
func TestLaterMessagesSettleStatuses(t *testing.T) {
	m, _ := newMetrics(t)
	// The families alone, without the collector that sweeps at every
	// scrape: here only messages sweep.
	view := prometheus.NewRegistry()
	view.MustRegister(m.families.received, m.families.inProcess, m.families.processed, m.families.processExceptions)
	produces := m.Middleware(func(*message.Message) ([]*message.Message, error) { return produce("paid"), nil })
	plain := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	newMsg := func() *message.Message { return message.NewMessage(watermill.NewUUID(), nil) }
	const inFlight = 10
	for range inFlight {
		_, _ = produces(newMsg()) // never acked or nacked: its publish is still going on
	}
	acked, nacked := newMsg(), newMsg()
	_, _ = produces(acked)
	_, _ = produces(nacked)
	acked.Ack()
	nacked.Nack()
	const plainMessages = inFlight + 1
	for range plainMessages {
		_, _ = plain(newMsg())
	}
	assertSamples(t, view, []string{"app_name", "broker"}, fmt.Sprintf(`
		received_messages_total{handler="unknown"} %d
		received_messages_in_process{handler="unknown"} %d
		`, inFlight+2+plainMessages, inFlight)+processed("unknown", 1+plainMessages, 1, 0, 0, 0)+`
		received_processed_messages_exceptions_total{exception_type="unknown",handler="unknown"} 1`,
		"received_messages_total", "received_messages_in_process",
		"received_processed_messages_total", "received_processed_messages_exceptions_total")
	if p := m.undecided.pending.Load(); p != inFlight {
		t.Errorf("%d statuses pending, want %d", p, inFlight)
	}
}

// The hand-over costs a message nothing the application would see: no
// allocation beyond what the same handler and publisher allocate without
// wmprom, and the produced messages keep the context their handler gave
// them.
func TestProducedHandOverAllocatesNothing(t *testing.T) {
	type produceKey struct{}
	handlerCtx := context.WithValue(context.Background(), produceKey{}, "handler's")
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("produced=%d", n), func(t *testing.T) {
			m, reg := newMetrics(t)
			var last []*message.Message
			run := func(mw message.HandlerMiddleware, decorate message.PublisherDecorator) func() {
				pub, err := decorate(nopPublisher{})
				if err != nil {
					t.Fatal(err)
				}
				h := mw(func(*message.Message) ([]*message.Message, error) {
					out := make([]*message.Message, n)
					for i := range out {
						out[i] = message.NewMessage("produced", nil)
						out[i].SetContext(handlerCtx)
					}
					return out, nil
				})
				return func() {
					msg := message.NewMessage("consumed", nil)
					produced, err := h(msg)
					if err == nil {
						err = pub.Publish("payments", produced...)
					}
					if err != nil {
						t.Fatal(err)
					}
					msg.Ack()
					last = produced
				}
			}
			const runs = 1000
			without := testing.AllocsPerRun(runs, run(
				func(h message.HandlerFunc) message.HandlerFunc { return h },
				func(p message.Publisher) (message.Publisher, error) { return p, nil }))
			with := testing.AllocsPerRun(runs, run(m.Middleware, m.DecoratePublisher))
			if with != without {
				t.Errorf("a message costs %v allocations with wmprom, %v without", with, without)
			}
			for i, p := range last {
				if p.Context() != handlerCtx {
					t.Errorf("produced message %d has context %v, want the handler's", i, p.Context())
				}
			}
			// AllocsPerRun runs once more than it is told, to warm up.
			assertSamples(t, reg, []string{"app_name", "broker"}, `
				received_messages_in_process{handler="unknown"} 0
				`+processed("unknown", runs+1, 0, 0, 0, 0),
				"received_messages_in_process", "received_processed_messages_total")
			if p := m.undecided.pending.Load(); p != 0 {
				t.Errorf("%d statuses pending after every publish returned", p)
			}
		})
	}
}

// failEvenPublisher fails the publish of every other message it is given.
type failEvenPublisher struct{ calls int }

func (p *failEvenPublisher) Publish(string, ...*message.Message) error {
	p.calls++
	if p.calls%2 == 0 {
		return namedError{kind: "BrokerDown"}
	}
	return nil
}

func (*failEvenPublisher) Close() error { return nil }

// With thousands of statuses undecided at once (a broker whose publishes
// are slow), each publish still finds its own: every status is decided
// when its publish returns, in any order, with the publish error's type,
// and nothing is left for the backstop.
func TestProducedManyInFlight(t *testing.T) {
	m, reg := newMetrics(t)
	pub, err := m.DecoratePublisher(&failEvenPublisher{})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return produce("paid"), nil })
	const inFlight = 3000
	outputs := make([][]*message.Message, inFlight)
	for i := range outputs {
		if outputs[i], err = h(message.NewMessage(watermill.NewUUID(), nil)); err != nil {
			t.Fatal(err)
		}
	}
	if p := m.undecided.pending.Load(); p != inFlight {
		t.Fatalf("%d statuses pending, want %d", p, inFlight)
	}
	for i := inFlight - 1; i >= 0; i-- { // newest first: the oldest wait longest
		_ = pub.Publish("payments", outputs[i]...)
		if p := m.undecided.pending.Load(); p != int64(i) {
			t.Fatalf("%d statuses pending after %d publishes, want %d", p, inFlight-i, i)
		}
	}
	assertSamples(t, reg, []string{"app_name", "broker"}, `
		received_messages_in_process{handler="unknown"} 0
		`+processed("unknown", inFlight/2, inFlight/2, 0, 0, 0)+`
		received_processed_messages_exceptions_total{exception_type="BrokerDown",handler="unknown"} 1500`,
		"received_messages_in_process", "received_processed_messages_total", "received_processed_messages_exceptions_total")
	if n := len(m.undecided.byProduced); n != 0 {
		t.Errorf("%d produced messages still indexed", n)
	}
}
