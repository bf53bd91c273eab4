package wmprom

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
)

const nestedEntry = "ERROR " + logNestedMiddleware + " | err=" +
	"wmprom: one Metrics instruments the same handler or publisher twice" +
	" | handler_name=orders message_uuid=<order-1> topic=orders"

const decoratedTwiceEntry = "ERROR " + logDecoratedTwice + " | err=" +
	"wmprom: one Metrics instruments the same handler or publisher twice"

// A message that passes through two middlewares of one Metrics is
// counted once (by the outer one), and the misuse is logged once, on the
// first such message, whichever way the second middleware got there. The
// handler fails the first delivery of order-1: the router logs that, and
// the message is retried by a Retry where there is one, else redelivered.
func TestNestedMiddlewaresCountOnceAndReportOnce(t *testing.T) {
	retry := middleware.Retry{MaxRetries: 1}
	const redelivered = "ERROR Handler returned error | err=first attempt fails"
	cases := []struct {
		name    string
		logger  bool // WithLogger, else the Plugin's router logger
		opts    []Option
		setup   func(r *message.Router, m *Metrics, h *message.Handler)
		counted string
		entries []string
	}{{
		name: "the Plugin and Middleware on the router",
		setup: func(r *message.Router, m *Metrics, _ *message.Handler) {
			r.AddMiddleware(m.Middleware)
			r.AddPlugin(m.Plugin)
		},
		counted: "received 4, acked 3, error 1",
		entries: []string{nestedEntry, redelivered},
	}, {
		name: "the Plugin and Middleware, with a label computed per message",
		opts: []Option{WithLabelFunc("size", func(msg *message.Message) string { return fmt.Sprint(len(msg.Payload)) })},
		setup: func(r *message.Router, m *Metrics, _ *message.Handler) {
			r.AddMiddleware(m.Middleware)
			r.AddPlugin(m.Plugin)
		},
		counted: "received 4, acked 3, error 1",
		entries: []string{nestedEntry, redelivered},
	}, {
		name: "the Plugin and Middleware on the handler",
		setup: func(r *message.Router, m *Metrics, h *message.Handler) {
			h.AddMiddleware(m.Middleware)
			r.AddPlugin(m.Plugin)
		},
		counted: "received 4, acked 3, error 1",
		entries: []string{nestedEntry, redelivered},
	}, {
		name: "the Plugin and Middleware with a Retry between them",
		setup: func(r *message.Router, m *Metrics, _ *message.Handler) {
			r.AddMiddleware(m.Middleware, retry.Middleware)
			r.AddPlugin(m.Plugin)
		},
		counted: "received 3, acked 3, error 0", // the outer one counts deliveries
		entries: []string{nestedEntry},
	}, {
		name:    "the Plugin twice",
		setup:   func(r *message.Router, m *Metrics, _ *message.Handler) { r.AddPlugin(m.Plugin, m.Plugin) },
		counted: "received 4, acked 3, error 1",
		entries: []string{nestedEntry, redelivered}, // a consumer handler's placeholder publisher is never decorated
	}, {
		name:    "Middleware twice",
		logger:  true,
		setup:   func(r *message.Router, m *Metrics, _ *message.Handler) { r.AddMiddleware(m.Middleware, m.Middleware) },
		counted: "received 4, acked 3, error 1",
		entries: []string{nestedEntry, redelivered},
	}, {
		name: "the Plugin alone, with a Retry around it",
		setup: func(r *message.Router, m *Metrics, _ *message.Handler) {
			r.AddMiddleware(retry.Middleware)
			r.AddPlugin(m.Plugin)
		},
		counted: "received 4, acked 3, error 1", // innermost, it counts attempts
	}, {
		name:   "Middleware alone, with a Retry inside it",
		logger: true,
		setup: func(r *message.Router, m *Metrics, _ *message.Handler) {
			r.AddMiddleware(m.Middleware, retry.Middleware)
		},
		counted: "received 3, acked 3, error 0",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logger := newCaptureLogger()
			opts := append([]Option(nil), tc.opts...)
			if tc.logger {
				opts = append(opts, WithLogger(logger))
			}
			m, reg := newMetrics(t, opts...)
			failed := new(atomic.Bool)
			ps := runLoggedRouter(t, logger, func(r *message.Router, ps *gochannel.GoChannel) {
				h := addConsumer(r, "orders", "orders", ps, func(*message.Message) error {
					if failed.CompareAndSwap(false, true) {
						return errors.New("first attempt fails")
					}
					return nil
				})
				tc.setup(r, m, h)
			})
			var sent []*message.Message
			for i := 1; i <= 3; i++ {
				msg := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf("order-%d", i)))
				sent = append(sent, msg)
				if err := ps.Publish("orders", msg); err != nil {
					t.Fatal(err)
				}
				eventually(t, "acked", func() bool { return counted(t, reg, "acked") == float64(i) })
			}
			settled(t, reg, processedTotal(t, reg))
			got := fmt.Sprintf("received %v, acked %v, error %v",
				counterValue(t, reg, "faststream_received_messages_total", nil), counted(t, reg, "acked"), counted(t, reg, "error"))
			if got != tc.counted {
				t.Errorf("counted %s, want %s", got, tc.counted)
			}
			assertEntries(t, logger, strings.Join(tc.entries, "\n"), sent...)
		})
	}
}

func counted(t *testing.T, reg prometheus.Gatherer, status string) float64 {
	return counterValue(t, reg, "faststream_received_processed_messages_total", map[string]string{"status": status})
}

// DecoratePublisher given a publisher it already decorates, directly or
// behind a wrapper, returns it as it is, and says so once.
func TestDecoratePublisherTwiceIsReportedOnce(t *testing.T) {
	logger := newCaptureLogger()
	m, reg := newMetrics(t, WithLogger(logger))
	once, _ := m.DecoratePublisher(localPublisher{})
	for i := 0; i < 3; i++ {
		for _, pub := range []message.Publisher{once, wrapper{once}} {
			again, err := m.DecoratePublisher(pub)
			if again != pub || err != nil {
				t.Fatalf("DecoratePublisher(%T) = %v, %v; want it unchanged", pub, again, err)
			}
		}
	}
	if err := once.Publish("payments", msgs(1)...); err != nil {
		t.Fatal(err)
	}
	assertSamples(t, reg, []string{"app_name"}, `
		published_messages_total{broker="wmprom",destination="payments",status="error"} 0
		published_messages_total{broker="wmprom",destination="payments",status="success"} 1`,
		"published_messages_total")
	assertEntries(t, logger, decoratedTwiceEntry)
}

// The Plugin together with router.AddPublisherDecorators(m.DecoratePublisher)
// counts each produced message once and says so once, on the router's
// logger.
func TestPluginAndPublisherDecoratorReportedOnce(t *testing.T) {
	logger := newCaptureLogger()
	m, reg := newMetrics(t)
	ps := runLoggedRouter(t, logger, func(r *message.Router, ps *gochannel.GoChannel) {
		r.AddPublisherDecorators(m.DecoratePublisher)
		r.AddPlugin(m.Plugin)
		for _, name := range []string{"orders", "refunds"} {
			r.AddHandler(name, name, ps, "payments", ps, func(msg *message.Message) ([]*message.Message, error) {
				return []*message.Message{message.NewMessage(watermill.NewUUID(), msg.Payload)}, nil
			})
		}
	})
	for _, topic := range []string{"orders", "refunds"} {
		if err := ps.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(topic))); err != nil {
			t.Fatal(err)
		}
	}
	settled(t, reg, 2)
	assertSamples(t, reg, []string{"app_name", "broker"}, `
		published_messages_total{destination="payments",status="error"} 0
		published_messages_total{destination="payments",status="success"} 2`,
		"published_messages_total")
	assertEntries(t, logger, decoratedTwiceEntry)
}

// Two Metrics on one router are two sets of metrics, not a misuse.
func TestTwoMetricsOnOneRouterAreNoMisuse(t *testing.T) {
	logger := newCaptureLogger()
	reg := prometheus.NewRegistry()
	a, err := New(reg, WithAppName("a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(reg, WithAppName("b"))
	if err != nil {
		t.Fatal(err)
	}
	ps := runLoggedRouter(t, logger, func(r *message.Router, ps *gochannel.GoChannel) {
		r.AddPlugin(a.Plugin, b.Plugin)
		addConsumer(r, "orders", "orders", ps, func(*message.Message) error { return nil })
	})
	msg := message.NewMessage(watermill.NewUUID(), []byte("order-1"))
	if err := ps.Publish("orders", msg); err != nil {
		t.Fatal(err)
	}
	settled(t, reg, 2)
	assertSamples(t, reg, nil, `
		received_messages_total{app_name="a",broker="gochannel",handler="orders"} 1
		received_messages_total{app_name="b",broker="gochannel",handler="orders"} 1`, "received_messages_total")
	assertEntries(t, logger, "", msg)
}

// Cause logging and misuse detection cost a plain message no allocation.
func TestPluginMiddlewareDoesNotAllocate(t *testing.T) {
	m, _ := newMetrics(t)
	h := m.instrument(func(*message.Message) ([]*message.Message, error) { return nil, nil }, newCaptureLogger())
	msg := message.NewMessage("1", []byte("order"))
	if n := testing.AllocsPerRun(1000, func() { _, _ = h(msg) }); n != 0 {
		t.Errorf("%v allocations per message, want 0", n)
	}
}
