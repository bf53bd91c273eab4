package wmprom

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
)

// billingDownError names its own exception type.
type billingDownError struct{}

func (billingDownError) Error() string     { return "billing down" }
func (billingDownError) ErrorType() string { return "BillingDown" }

// fanOut subscribes two handlers to "orders": audit acks every message,
// billing fails the first delivery it gets and acks the redelivery.
func fanOut(r *message.Router, ps *gochannel.GoChannel) {
	failed := new(atomic.Bool)
	addConsumer(r, "audit", "orders", ps, func(*message.Message) error { return nil })
	addConsumer(r, "billing", "orders", ps, func(*message.Message) error {
		if failed.CompareAndSwap(false, true) {
			return billingDownError{}
		}
		return nil
	})
}

// Two handlers on one topic share the topic's series by default, and get
// a series each with WithHandlerLabel(HandlerName); either way the Plugin
// creates the series at zero before the first message.
func TestHandlerLabelTellsFanOutHandlersApart(t *testing.T) {
	cases := []struct {
		name       string
		opts       []Option
		zero, want string
	}{{
		name: "by topic (the default)",
		zero: `
			received_messages_total{broker="gochannel",handler="orders"} 0
			received_processed_messages_total{broker="gochannel",handler="orders",status="acked"} 0
			received_processed_messages_total{broker="gochannel",handler="orders",status="error"} 0
			received_processed_messages_total{broker="gochannel",handler="orders",status="nacked"} 0
			received_processed_messages_total{broker="gochannel",handler="orders",status="rejected"} 0
			received_processed_messages_total{broker="gochannel",handler="orders",status="skipped"} 0`,
		want: `
			received_messages_total{broker="gochannel",handler="orders"} 3
			received_processed_messages_total{broker="gochannel",handler="orders",status="acked"} 2
			received_processed_messages_total{broker="gochannel",handler="orders",status="error"} 1
			received_processed_messages_total{broker="gochannel",handler="orders",status="nacked"} 0
			received_processed_messages_total{broker="gochannel",handler="orders",status="rejected"} 0
			received_processed_messages_total{broker="gochannel",handler="orders",status="skipped"} 0
			received_processed_messages_exceptions_total{broker="gochannel",exception_type="BillingDown",handler="orders"} 1`,
	}, {
		name: "by handler name",
		opts: []Option{WithHandlerLabel(HandlerName)},
		// The router tells no one a handler's name before its first
		// message: the series appear with it.
		zero: ``,
		want: `
			received_messages_total{broker="gochannel",handler="audit"} 1
			received_messages_total{broker="gochannel",handler="billing"} 2
			received_processed_messages_total{broker="gochannel",handler="audit",status="acked"} 1
			received_processed_messages_total{broker="gochannel",handler="audit",status="error"} 0
			received_processed_messages_total{broker="gochannel",handler="audit",status="nacked"} 0
			received_processed_messages_total{broker="gochannel",handler="audit",status="rejected"} 0
			received_processed_messages_total{broker="gochannel",handler="audit",status="skipped"} 0
			received_processed_messages_total{broker="gochannel",handler="billing",status="acked"} 1
			received_processed_messages_total{broker="gochannel",handler="billing",status="error"} 1
			received_processed_messages_total{broker="gochannel",handler="billing",status="nacked"} 0
			received_processed_messages_total{broker="gochannel",handler="billing",status="rejected"} 0
			received_processed_messages_total{broker="gochannel",handler="billing",status="skipped"} 0
			received_processed_messages_exceptions_total{broker="gochannel",exception_type="BillingDown",handler="billing"} 1`,
	}}
	families := []string{"received_messages_total", "received_processed_messages_total", "received_processed_messages_exceptions_total"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, reg := newMetrics(t, tc.opts...)
			tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
				r.AddPlugin(m.Plugin)
				fanOut(r, ps)
			})
			assertSamples(t, reg, []string{"app_name"}, tc.zero, families...)
			tr.publish(t, "orders", "order-1")
			settled(t, reg, 3)
			assertSamples(t, reg, []string{"app_name"}, tc.want, families...)
		})
	}
}

// foreignDecorator is a subscriber decorator of the application's own
// that keeps what it wraps in a field, where the Plugin finds it.
type foreignDecorator struct{ message.Subscriber }

// opaqueDecorator hides what it wraps in closures: nothing can be known
// through it before a message.
type opaqueDecorator struct {
	subscribe func(context.Context, string) (<-chan *message.Message, error)
	close     func() error
}

func hide(sub message.Subscriber) message.Subscriber {
	return opaqueDecorator{subscribe: sub.Subscribe, close: sub.Close}
}

func (d opaqueDecorator) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return d.subscribe(ctx, topic)
}

func (d opaqueDecorator) Close() error { return d.close() }

// With HandlerName, the series appear with each handler's first message
// behind any subscriber decorator of the application's, and count
// exactly.
func TestHandlerNameBehindADecorator(t *testing.T) {
	cases := []struct {
		name     string
		decorate func(message.Subscriber) message.Subscriber
		zero     string
	}{{
		name:     "a decorator with a field",
		decorate: func(sub message.Subscriber) message.Subscriber { return foreignDecorator{sub} },
	}, {
		name: "a Watermill transform decorator",
		decorate: func(sub message.Subscriber) message.Subscriber {
			d, _ := message.MessageTransformSubscriberDecorator(func(msg *message.Message) {
				msg.Metadata.Set("seen_by", "app")
			})(sub)
			return d
		},
	}, {
		name:     "a decorator that hides what it wraps",
		decorate: hide,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, reg := newMetrics(t, WithHandlerLabel(HandlerName))
			tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
				r.AddSubscriberDecorators(func(sub message.Subscriber) (message.Subscriber, error) {
					return tc.decorate(sub), nil
				})
				r.AddPlugin(m.Plugin)
				fanOut(r, ps)
			})
			assertSamples(t, reg, []string{"app_name"}, tc.zero, "received_messages_total")
			tr.publish(t, "orders", "order-1")
			settled(t, reg, 3)
			assertSamples(t, reg, []string{"app_name"}, `
				received_messages_total{broker="gochannel",handler="audit"} 1
				received_messages_total{broker="gochannel",handler="billing"} 2`, "received_messages_total")
		})
	}
}

func TestWithHandlerLabelInvalid(t *testing.T) {
	_, err := New(prometheus.NewRegistry(), WithHandlerLabel(HandlerLabel(2)))
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("got %v, want ErrInvalidConfig", err)
	}
}
