package wmprom

import (
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// Series created at zero must be the ones messages will count on: a
// series at zero that never moves is a dead tile on the dashboard.

// An application's own subscriber decorator, added before the Plugin,
// used to stop broker detection at its type and leave a dead
// broker="wmprom" series beside the real one.
func TestAppSubscriberDecorator(t *testing.T) {
	decorate := func(sub message.Subscriber) (message.Subscriber, error) { return appSubscriber{sub}, nil }
	cases := []struct {
		name  string
		setup func(r *message.Router, ps *gochannel.GoChannel, m *Metrics)
	}{
		{"added with AddSubscriberDecorators before the Plugin", func(r *message.Router, ps *gochannel.GoChannel, m *Metrics) {
			r.AddSubscriberDecorators(decorate)
			r.AddPlugin(m.Plugin)
			addConsumer(r, "orders", "orders", ps, func(*message.Message) error { return nil })
		}},
		{"given to AddHandler", func(r *message.Router, ps *gochannel.GoChannel, m *Metrics) {
			r.AddPlugin(m.Plugin)
			addConsumer(r, "orders", "orders", appSubscriber{ps}, func(*message.Message) error { return nil })
		}},
		{"with an Unwrap method, given to AddHandler", func(r *message.Router, ps *gochannel.GoChannel, m *Metrics) {
			r.AddPlugin(m.Plugin)
			addConsumer(r, "orders", "orders", &unwrappingSubscriber{appSubscriber{ps}}, func(*message.Message) error { return nil })
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, reg := newMetrics(t)
			tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) { tc.setup(r, ps, m) })
			assertSamples(t, reg, []string{"app_name"}, receiveLines("orders", 0), receiveFamilies...)
			tr.publish(t, "orders", "x")
			waitSamples(t, reg, []string{"app_name"}, receiveLines("orders", 1), receiveFamilies...)
		})
	}
}

// Watermill v1.5 gives a consumer-only handler a placeholder publisher,
// not nil: it used to get declared destinations' series with
// broker="message", which no message ever moves.
func TestConsumerHandlerPublisherHasNoSeries(t *testing.T) {
	appPublisher := func(pub message.Publisher) (message.Publisher, error) { return wrapper{pub}, nil }
	for _, withAppDecorator := range []bool{false, true} {
		m, reg := newMetrics(t, WithDestinations("payments"))
		runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
			if withAppDecorator {
				r.AddPublisherDecorators(appPublisher)
			}
			r.AddPlugin(m.Plugin)
			addConsumer(r, "orders", "orders", ps, func(*message.Message) error { return nil })
		})
		if got := samples(t, reg, nil, "published_messages_total", "published_messages_duration_seconds"); got != "" {
			t.Errorf("app decorator %v: publish series of a handler that cannot publish:\n%s", withAppDecorator, got)
		}
	}
}

// fieldPublisher keeps what it wraps in a named, unexported field.
type fieldPublisher struct {
	next message.Publisher
}

func (p *fieldPublisher) Publish(topic string, msgs ...*message.Message) error {
	return p.next.Publish(topic, msgs...)
}
func (p *fieldPublisher) Close() error { return p.next.Close() }

func TestPublisherDetectionLooksThroughDecorators(t *testing.T) {
	ps := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	transformed, _ := message.MessageTransformPublisherDecorator(func(*message.Message) {})(ps)
	cases := []struct {
		name string
		pub  message.Publisher
		want string
	}{
		{"embedded", &failOncePublisher{Publisher: ps}, "gochannel"},
		{"in a named field", &fieldPublisher{next: ps}, "gochannel"},
		{"Watermill's transform decorator", transformed, "gochannel"},
		{"three deep", &fieldPublisher{next: wrapper{&failOncePublisher{Publisher: ps}}}, "gochannel"},
		{"nothing inside", &fieldPublisher{}, "wmprom"},
	}
	for _, tc := range cases {
		if got := publisherBroker(tc.pub); got != tc.want {
			t.Errorf("%s: publisherBroker = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// otherBrokerPublisher stands for a second broker's publisher: its
// package, wmprom, is its broker label.
type otherBrokerPublisher struct{}

func (otherBrokerPublisher) Publish(string, ...*message.Message) error { return nil }
func (otherBrokerPublisher) Close() error                              { return nil }

// A service that consumes from one broker and publishes to two: each
// publisher gets series only for the topics declared for its broker.
func TestTwoBrokersWithDestinations(t *testing.T) {
	m, reg := newMetrics(t,
		WithBrokerDestinations("gochannel", "payments"),
		WithBrokerDestinations("wmprom", "audit"))
	tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
		r.AddPlugin(m.Plugin)
		r.AddHandler("orders", "orders", ps, "payments", ps, func(msg *message.Message) ([]*message.Message, error) {
			return []*message.Message{msg.Copy()}, nil
		})
		r.AddHandler("audit", "orders", ps, "audit", otherBrokerPublisher{}, func(msg *message.Message) ([]*message.Message, error) {
			return []*message.Message{msg.Copy()}, nil
		})
		addConsumer(r, "payments", "payments", ps, func(*message.Message) error { return nil })
	})
	const atZero = `
		published_messages_total{broker="gochannel",destination="payments",status="error"} 0
		published_messages_total{broker="gochannel",destination="payments",status="success"} %d
		published_messages_total{broker="wmprom",destination="audit",status="error"} 0
		published_messages_total{broker="wmprom",destination="audit",status="success"} %d`
	assertSamples(t, reg, []string{"app_name"}, fmt.Sprintf(atZero, 0, 0), "published_messages_total")
	tr.publish(t, "orders", "x")
	waitSamples(t, reg, []string{"app_name"}, fmt.Sprintf(atZero, 1, 1), "published_messages_total")
}

// Declared destinations of every broker (WithDestinations) and of one
// broker (WithBrokerDestinations) add up, each label set once.
func TestDestinationsOfAnyAndOneBroker(t *testing.T) {
	m, reg := newMetrics(t, WithDestinations("payments"), WithBrokerDestinations("wmprom", "payments", "audit"))
	if _, err := m.DecoratePublisher(localPublisher{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.DecoratePublisher(gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})); err != nil {
		t.Fatal(err)
	}
	assertSamples(t, reg, []string{"app_name"}, `
		published_messages_total{broker="gochannel",destination="payments",status="error"} 0
		published_messages_total{broker="gochannel",destination="payments",status="success"} 0
		published_messages_total{broker="wmprom",destination="audit",status="error"} 0
		published_messages_total{broker="wmprom",destination="audit",status="success"} 0
		published_messages_total{broker="wmprom",destination="payments",status="error"} 0
		published_messages_total{broker="wmprom",destination="payments",status="success"} 0`,
		"published_messages_total")
}

// panickyPublisher's Unwrap panics, as a careless one may on a zero value.
type panickyPublisher struct{ localPublisher }

func (panickyPublisher) Unwrap() message.Publisher { panic("not configured") }

// Detection runs at router start: neither a typed nil nor a panicking
// Unwrap may crash it.
func TestPublisherDetectionSurvivesBadWrappers(t *testing.T) {
	cases := []struct {
		name string
		pub  message.Publisher
		want string
	}{
		{"a typed nil", (*fieldPublisher)(nil), "wmprom"},
		{"a typed nil inside", &fieldPublisher{next: (*fieldPublisher)(nil)}, "wmprom"},
		{"a typed nil with Unwrap", (*unwrappingPublisher)(nil), "wmprom"},
		{"an Unwrap that panics", panickyPublisher{}, "wmprom"},
	}
	for _, tc := range cases {
		if got := publisherBroker(tc.pub); got != tc.want {
			t.Errorf("%s: publisherBroker = %q, want %q", tc.name, got, tc.want)
		}
	}
	m, _ := newMetrics(t)
	if _, err := m.DecoratePublisher((*fieldPublisher)(nil)); err != nil {
		t.Fatal(err)
	}
}

// unwrappingPublisher dereferences itself in Unwrap.
type unwrappingPublisher struct{ next message.Publisher }

func (u *unwrappingPublisher) Publish(topic string, msgs ...*message.Message) error {
	return u.next.Publish(topic, msgs...)
}
func (u *unwrappingPublisher) Close() error              { return u.next.Close() }
func (u *unwrappingPublisher) Unwrap() message.Publisher { return u.next }

// One wrapper type given to AddHandler around subscribers of two brokers:
// the router names both alike, so the broker is remembered per name and
// topic, and each handler's series carry its own broker.
func TestOneWrapperTypeAroundTwoBrokers(t *testing.T) {
	for range 5 { // the router subscribes its handlers in map order
		m, reg := newMetrics(t)
		tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
			r.AddPlugin(m.Plugin)
			addConsumer(r, "a", "a", appSubscriber{ps}, func(*message.Message) error { return nil })
			addConsumer(r, "b", "b", appSubscriber{opaqueSubscriber{ps.Subscribe}}, func(*message.Message) error { return nil })
		})
		const want = `
			received_messages_total{broker="gochannel",handler="a"} %d
			received_messages_total{broker="wmprom",handler="b"} %d`
		assertSamples(t, reg, []string{"app_name"}, fmt.Sprintf(want, 0, 0), "received_messages_total")
		tr.publish(t, "a", "x")
		tr.publish(t, "b", "x")
		waitSamples(t, reg, []string{"app_name"}, fmt.Sprintf(want, 1, 1), "received_messages_total")
	}
}

// panickyWrapper is an application's publisher decorator whose Unwrap
// panics, around a working publisher.
type panickyWrapper struct{ message.Publisher }

func (panickyWrapper) Unwrap() message.Publisher { panic("not configured") }

// A publisher decorator of the application's whose Unwrap panics crashes
// nothing, wherever wmprom meets it: given to DecoratePublisher, to a
// router's handler under the Plugin, or to a router's handler under
// Middleware with DecoratePublisher as the router's publisher decorator.
// Every message is counted.
func TestPanickingUnwrap(t *testing.T) {
	const want = `
		published_messages_total{destination="paid",status="error"} 0
		published_messages_total{destination="paid",status="success"} 1`
	t.Run("DecoratePublisher", func(t *testing.T) {
		m, reg := newMetrics(t)
		pub, err := m.DecoratePublisher(panickyWrapper{localPublisher{}})
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish("paid", message.NewMessage("1", nil)); err != nil {
			t.Fatal(err)
		}
		assertSamples(t, reg, []string{"app_name", "broker"}, want, "published_messages_total")
	})
	for _, tc := range []struct {
		name  string
		setup func(m *Metrics, r *message.Router)
	}{
		{"the Plugin", func(m *Metrics, r *message.Router) { r.AddPlugin(m.Plugin) }},
		{"the router", func(m *Metrics, r *message.Router) {
			r.AddMiddleware(m.Middleware)
			r.AddPublisherDecorators(m.DecoratePublisher)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, reg := newMetrics(t)
			tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
				tc.setup(m, r)
				r.AddHandler("orders", "orders", ps, "paid", panickyWrapper{ps},
					func(*message.Message) ([]*message.Message, error) { return produce("paid"), nil })
			})
			tr.publish(t, "orders", "order-1")
			waitProcessed(t, reg, 1)
			assertSamples(t, reg, []string{"app_name", "broker"}, want+
				processed("orders", 1, 0, 0, 0, 0), "published_messages_total", "received_processed_messages_total")
		})
	}
}
