package wmprom

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// decodeError is an error type of the application's own.
type decodeError struct{}

func (*decodeError) Error() string { return "cannot decode" }

// brokerDownError is what failOncePublisher returns.
type brokerDownError struct{}

func (brokerDownError) Error() string { return "broker down" }

// failOncePublisher fails its first Publish, then delegates.
type failOncePublisher struct {
	message.Publisher
	failed atomic.Bool
}

func (p *failOncePublisher) Publish(topic string, msgs ...*message.Message) error {
	if p.failed.CompareAndSwap(false, true) {
		return brokerDownError{}
	}
	return p.Publisher.Publish(topic, msgs...)
}

// outcomeCase is one row of the outcome table: what the handler does to
// the message "first" on each delivery (attempt counts from 1), and the
// exact final samples once "first" and "sentinel" are done. The sentinel
// is always acked. The test waits for the whole final state rather than
// for one counter: a message's counters are not updated in one step.
type outcomeCase struct {
	name   string
	setup  func(r *message.Router, ps *gochannel.GoChannel, m *Metrics, h message.HandlerFunc)
	handle func(attempt int, msg *message.Message) ([]*message.Message, error)
	want   string
}

// viaPlugin is the default setup: the Plugin, one handler publishing its
// produced messages to "payments".
func viaPlugin(r *message.Router, ps *gochannel.GoChannel, m *Metrics, h message.HandlerFunc) {
	r.AddPlugin(m.Plugin)
	r.AddHandler("orders", "orders", ps, "payments", ps, h)
}

// viaPluginWithoutPublisher is viaPlugin with a handler added without a
// publisher: the router fails its produced messages before any publish.
func viaPluginWithoutPublisher(r *message.Router, ps *gochannel.GoChannel, m *Metrics, h message.HandlerFunc) {
	r.AddPlugin(m.Plugin)
	r.AddHandler("orders", "orders", ps, "payments", nil, h)
}

func produce(payload string) []*message.Message {
	return []*message.Message{message.NewMessage(watermill.NewUUID(), []byte(payload))}
}

func TestOutcomes(t *testing.T) {
	boom := errors.New("boom")
	cases := []outcomeCase{{
		name:   "returns nil: acked",
		handle: func(int, *message.Message) ([]*message.Message, error) { return nil, nil },
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 2, 0, 0, 0, 0),
	}, {
		name: "returns an ordinary error: error, exception by type, redelivered",
		handle: func(attempt int, _ *message.Message) ([]*message.Message, error) {
			if attempt == 1 {
				return nil, boom
			}
			return nil, nil
		},
		want: `
			received_messages_total{handler="orders"} 3
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 2, 1, 0, 0, 0) + `
			received_processed_messages_exceptions_total{exception_type="errors.errorString",handler="orders"} 1`,
	}, {
		name: "returns a wrapped error of its own type: exception is the inner type",
		handle: func(attempt int, _ *message.Message) ([]*message.Message, error) {
			if attempt == 1 {
				return nil, fmt.Errorf("order 7: %w", &decodeError{})
			}
			return nil, nil
		},
		want: `
			received_messages_total{handler="orders"} 3
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 2, 1, 0, 0, 0) + `
			received_processed_messages_exceptions_total{exception_type="wmprom.decodeError",handler="orders"} 1`,
	}, {
		name: "returns Nack: nacked, no exception, redelivered",
		handle: func(attempt int, _ *message.Message) ([]*message.Message, error) {
			if attempt == 1 {
				return nil, Nack(boom)
			}
			return nil, nil
		},
		want: `
			received_messages_total{handler="orders"} 3
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 2, 0, 1, 0, 0),
	}, {
		name:   "returns Reject: rejected, not redelivered",
		handle: onFirst(Reject(boom)),
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 1, 0, 0, 1, 0),
	}, {
		name:   "returns a wrapped Reject: rejected",
		handle: onFirst(fmt.Errorf("order 7: %w", Reject(nil))),
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 1, 0, 0, 1, 0),
	}, {
		name:   "returns Skip: skipped, acked by the router",
		handle: onFirst(Skip(nil)),
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 1, 0, 0, 0, 1),
	}, {
		name:   "returns Ack with a cause: acked, no exception",
		handle: onFirst(Ack(boom)),
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 2, 0, 0, 0, 0),
	}, {
		name: "calls msg.Nack itself and returns nil: nacked, redelivered",
		handle: func(attempt int, msg *message.Message) ([]*message.Message, error) {
			if attempt == 1 {
				msg.Nack()
			}
			return nil, nil
		},
		want: `
			received_messages_total{handler="orders"} 3
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 2, 0, 1, 0, 0),
	}, {
		name: "calls msg.Ack itself and returns an error: acked, exception counted",
		handle: func(attempt int, msg *message.Message) ([]*message.Message, error) {
			if attempt == 1 {
				msg.Ack()
				return nil, boom
			}
			return nil, nil
		},
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 2, 0, 0, 0, 0) + `
			received_processed_messages_exceptions_total{exception_type="errors.errorString",handler="orders"} 1`,
	}, {
		name:   "panics with no Recoverer: error, exception panic, the router nacks",
		handle: panicOnFirst,
		want:   panicked,
	}, {
		name: "panics under an inner Recoverer (Middleware added first)",
		setup: func(r *message.Router, ps *gochannel.GoChannel, m *Metrics, h message.HandlerFunc) {
			r.AddMiddleware(m.Middleware, middleware.Recoverer)
			r.AddPublisherDecorators(m.DecoratePublisher)
			r.AddHandler("orders", "orders", ps, "payments", ps, h)
		},
		handle: panicOnFirst,
		want:   panicked,
	}, {
		name: "panics under an outer Recoverer (Plugin, so Middleware innermost)",
		setup: func(r *message.Router, ps *gochannel.GoChannel, m *Metrics, h message.HandlerFunc) {
			r.AddMiddleware(middleware.Recoverer)
			viaPlugin(r, ps, m, h)
		},
		handle: panicOnFirst,
		want:   panicked,
	}, {
		name: "an outer Retry (Plugin, so Middleware innermost): every attempt counts",
		setup: func(r *message.Router, ps *gochannel.GoChannel, m *Metrics, h message.HandlerFunc) {
			r.AddMiddleware(quickRetry.Middleware)
			viaPlugin(r, ps, m, h)
		},
		handle: failTwice,
		want: `
			received_messages_total{handler="orders"} 4
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 2, 2, 0, 0, 0) + `
			received_processed_messages_exceptions_total{exception_type="errors.errorString",handler="orders"} 2`,
	}, {
		name: "an inner Retry (Middleware added first): one delivery is one message",
		setup: func(r *message.Router, ps *gochannel.GoChannel, m *Metrics, h message.HandlerFunc) {
			r.AddMiddleware(m.Middleware, quickRetry.Middleware)
			r.AddHandler("orders", "orders", ps, "payments", ps, h)
		},
		handle: failTwice,
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 2, 0, 0, 0, 0),
	}, {
		name: "an inner PoisonQueue dead-letters the message: rejected, no exception",
		setup: func(r *message.Router, ps *gochannel.GoChannel, m *Metrics, h message.HandlerFunc) {
			pq, err := middleware.PoisonQueue(ps, "poison")
			if err != nil {
				panic(err)
			}
			r.AddMiddleware(m.Middleware, pq)
			r.AddHandler("orders", "orders", ps, "payments", ps, h)
			addConsumer(r, "poison", "poison", ps, func(*message.Message) error { return nil })
		},
		handle: onFirst(boom),
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_total{handler="poison"} 1
			received_messages_in_process{handler="orders"} 0
			received_messages_in_process{handler="poison"} 0
			` + processed("orders", 1, 0, 0, 1, 0) + `
			` + processed("poison", 1, 0, 0, 0, 0),
	}, {
		name: "an outer PoisonQueue (Plugin innermost): error with its exception, then dead-lettered",
		setup: func(r *message.Router, ps *gochannel.GoChannel, m *Metrics, h message.HandlerFunc) {
			pq, err := middleware.PoisonQueue(ps, "poison")
			if err != nil {
				panic(err)
			}
			r.AddMiddleware(pq)
			viaPlugin(r, ps, m, h)
		},
		handle: onFirst(boom),
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 1, 1, 0, 0, 0) + `
			received_processed_messages_exceptions_total{exception_type="errors.errorString",handler="orders"} 1`,
	}, {
		name: "returns produced messages whose publish fails: error with the publish error's type, redelivered",
		setup: func(r *message.Router, ps *gochannel.GoChannel, m *Metrics, h message.HandlerFunc) {
			r.AddPlugin(m.Plugin)
			r.AddHandler("orders", "orders", ps, "payments", &failOncePublisher{Publisher: ps}, h)
		},
		handle: func(int, *message.Message) ([]*message.Message, error) { return produce("paid"), nil },
		want: `
			received_messages_total{handler="orders"} 3
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 2, 1, 0, 0, 0) + `
			received_processed_messages_exceptions_total{exception_type="wmprom.brokerDownError",handler="orders"} 1
			published_messages_total{destination="payments",status="error"} 1
			published_messages_total{destination="payments",status="success"} 2
			published_messages_exceptions_total{destination="payments",exception_type="wmprom.brokerDownError"} 1`,
	}, {
		name: "acks itself and returns produced messages whose publish fails: acked, as the router cannot nack it any more",
		setup: func(r *message.Router, ps *gochannel.GoChannel, m *Metrics, h message.HandlerFunc) {
			r.AddPlugin(m.Plugin)
			r.AddHandler("orders", "orders", ps, "payments", &failOncePublisher{Publisher: ps}, h)
		},
		handle: func(_ int, msg *message.Message) ([]*message.Message, error) {
			msg.Ack()
			return produce("paid"), nil
		},
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 2, 0, 0, 0, 0) + `
			published_messages_total{destination="payments",status="error"} 1
			published_messages_total{destination="payments",status="success"} 1
			published_messages_exceptions_total{destination="payments",exception_type="wmprom.brokerDownError"} 1`,
	}, {
		name:  "returns produced messages with no publisher at all: error, redelivered",
		setup: viaPluginWithoutPublisher,
		handle: func(attempt int, _ *message.Message) ([]*message.Message, error) {
			if attempt == 1 {
				return produce("paid"), nil
			}
			return nil, nil
		},
		want: `
			received_messages_total{handler="orders"} 3
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 2, 1, 0, 0, 0) + `
			received_processed_messages_exceptions_total{exception_type="errors.fundamental",handler="orders"} 1`,
	}, {
		// The first attempt fills the handler chain's cache, which then
		// tells the second that the handler has no publisher.
		name:  "returns produced messages with no publisher after a message without: error, redelivered",
		setup: viaPluginWithoutPublisher,
		handle: func(attempt int, _ *message.Message) ([]*message.Message, error) {
			switch attempt {
			case 1:
				return nil, brokerDownError{}
			case 2:
				return produce("paid"), nil
			}
			return nil, nil
		},
		want: `
			received_messages_total{handler="orders"} 4
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 2, 2, 0, 0, 0) + `
			received_processed_messages_exceptions_total{exception_type="errors.fundamental",handler="orders"} 1
			received_processed_messages_exceptions_total{exception_type="wmprom.brokerDownError",handler="orders"} 1`,
	}, {
		name: "returns produced messages without a decorated publisher: acked once the router acks it",
		setup: func(r *message.Router, ps *gochannel.GoChannel, m *Metrics, h message.HandlerFunc) {
			r.AddMiddleware(m.Middleware)
			r.AddHandler("orders", "orders", ps, "payments", ps, h)
		},
		handle: func(int, *message.Message) ([]*message.Message, error) { return produce("paid"), nil },
		want: `
			received_messages_total{handler="orders"} 2
			received_messages_in_process{handler="orders"} 0
			` + processed("orders", 2, 0, 0, 0, 0),
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, reg := newMetrics(t)
			var attempts atomic.Int32
			h := func(msg *message.Message) ([]*message.Message, error) {
				if string(msg.Payload) != "first" {
					return tc.handle(0, msg)
				}
				return tc.handle(int(attempts.Add(1)), msg)
			}
			setup := tc.setup
			if setup == nil {
				setup = viaPlugin
			}
			tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) { setup(r, ps, m, h) })
			tr.publish(t, "orders", "first", "sentinel")
			waitSamples(t, reg, []string{"app_name", "broker"}, tc.want,
				"received_messages_total", "received_messages_in_process",
				"received_processed_messages_total", "received_processed_messages_exceptions_total",
				"published_messages_total", "published_messages_exceptions_total")
		})
	}
}

// processed renders the five status lines of one handler: acked, error,
// nacked, rejected and skipped, in that order.
func processed(handler string, acked, errored, nacked, rejected, skipped int) string {
	var b strings.Builder
	for i, st := range []string{"acked", "error", "nacked", "rejected", "skipped"} {
		fmt.Fprintf(&b, "\nreceived_processed_messages_total{handler=%q,status=%q} %d\n", handler, st,
			[]int{acked, errored, nacked, rejected, skipped}[i])
	}
	return b.String()
}

// onFirst returns err on the first delivery of "first", nil otherwise.
func onFirst(err error) func(int, *message.Message) ([]*message.Message, error) {
	return func(attempt int, _ *message.Message) ([]*message.Message, error) {
		if attempt == 1 {
			return nil, err
		}
		return nil, nil
	}
}

// quickRetry retries twice, 1 ms apart.
var quickRetry = middleware.Retry{MaxRetries: 2, InitialInterval: time.Millisecond, Multiplier: 1}

func failTwice(attempt int, _ *message.Message) ([]*message.Message, error) {
	if attempt == 1 || attempt == 2 {
		return nil, errors.New("boom")
	}
	return nil, nil
}

func panicOnFirst(attempt int, _ *message.Message) ([]*message.Message, error) {
	if attempt == 1 {
		panic("order 7 is corrupt")
	}
	return nil, nil
}

var panicked = `
	received_messages_total{handler="orders"} 3
	received_messages_in_process{handler="orders"} 0
	` + processed("orders", 2, 1, 0, 0, 0) + `
	received_processed_messages_exceptions_total{exception_type="panic",handler="orders"} 1`

// A panic must go on past the middleware when nothing recovers it.
func TestPanicIsNotSwallowed(t *testing.T) {
	m, reg := newMetrics(t)
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) { panic("corrupt") })
	func() {
		defer func() {
			if r := recover(); r != "corrupt" {
				t.Errorf("recovered %v, want the handler's panic", r)
			}
		}()
		_, _ = h(message.NewMessage("1", []byte("abc")))
		t.Error("the panic did not propagate")
	}()
	assertSamples(t, reg, []string{"app_name", "broker"}, `
		received_messages_total{handler="unknown"} 1
		received_messages_in_process{handler="unknown"} 0
		`+processed("unknown", 0, 1, 0, 0, 0)+`
		received_processed_messages_exceptions_total{exception_type="panic",handler="unknown"} 1`,
		"received_messages_total", "received_messages_in_process",
		"received_processed_messages_total", "received_processed_messages_exceptions_total")
}

// What the router is told decides redelivery: only errors and Nack nack.
func TestMiddlewareTellsTheRouter(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		returned error
		wantErr  bool
	}{
		{nil, false}, {boom, true}, {Nack(boom), true}, {Reject(boom), false},
		{Skip(boom), false}, {Ack(boom), false}, {fmt.Errorf("w: %w", Nack(nil)), true},
	}
	for _, tc := range cases {
		m, _ := newMetrics(t)
		h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return produce("x"), tc.returned })
		produced, err := h(message.NewMessage("1", nil))
		if (err != nil) != tc.wantErr || (err != nil && err != tc.returned) {
			t.Errorf("returned %v: router told %v", tc.returned, err)
		}
		o := outcomeOf(tc.returned)
		dropped := o != nil && (o.status == statusRejected || o.status == statusSkipped)
		if dropped != (produced == nil) {
			t.Errorf("returned %v: produced %v", tc.returned, produced)
		}
	}
}

// The gauge counts messages inside the handler while they are there.
func TestInProcessWhileHandling(t *testing.T) {
	m, reg := newMetrics(t)
	entered, release := make(chan struct{}), make(chan struct{})
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) {
		entered <- struct{}{}
		<-release
		return nil, nil
	})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = h(message.NewMessage(watermill.NewUUID(), nil)) }()
	}
	for range 3 {
		<-entered
	}
	inProcess := func() float64 {
		return counterValue(t, reg, "faststream_received_messages_in_process", nil)
	}
	if got := inProcess(); got != 3 {
		t.Errorf("in process while 3 handlers wait: %v", got)
	}
	close(release)
	wg.Wait()
	if got := inProcess(); got != 0 {
		t.Errorf("in process after: %v", got)
	}
}

// A handler function wrapped once and given to two handlers keeps the
// first handler's series in its chain and still counts each message under
// its own handler.
func TestMiddlewareSharedByHandlers(t *testing.T) {
	m, reg := newMetrics(t)
	shared := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
		for _, topic := range []string{"orders", "refunds"} {
			addConsumer(r, topic, topic, ps, func(msg *message.Message) error {
				_, err := shared(msg)
				return err
			})
		}
	})
	tr.publish(t, "orders", "1", "2")
	tr.publish(t, "refunds", "3", "4", "5")
	tr.publish(t, "orders", "6")
	waitSamples(t, reg, []string{"app_name", "broker"}, `
		received_messages_total{handler="orders"} 3
		received_messages_total{handler="refunds"} 3`,
		"received_messages_total")
}
