package wmprom

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// With the Plugin, a running router exposes every handler's series at
// zero before any message arrives.
func TestPluginCreatesHandlerSeriesAtZero(t *testing.T) {
	m, reg := newMetrics(t, WithLabel("region", "eu"))
	tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
		r.AddPlugin(m.Plugin)
		addConsumer(r, "orders-handler", "orders", ps, func(*message.Message) error { return nil })
		addConsumer(r, "payments-handler", "payments", ps, func(*message.Message) error { return nil })
	})
	// Router.Running is closed after every handler has subscribed.
	assertSamples(t, reg, []string{"app_name", "region"}, `
		received_messages_total{broker="gochannel",handler="orders"} 0
		received_messages_total{broker="gochannel",handler="payments"} 0
		received_messages_in_process{broker="gochannel",handler="orders"} 0
		received_messages_in_process{broker="gochannel",handler="payments"} 0
		received_messages_size_bytes_count{broker="gochannel",handler="orders"} 0
		received_messages_size_bytes_sum{broker="gochannel",handler="orders"} 0
		received_messages_size_bytes_count{broker="gochannel",handler="payments"} 0
		received_messages_size_bytes_sum{broker="gochannel",handler="payments"} 0
		received_processed_messages_duration_seconds_count{broker="gochannel",handler="orders"} 0
		received_processed_messages_duration_seconds_sum{broker="gochannel",handler="orders"} 0
		received_processed_messages_duration_seconds_count{broker="gochannel",handler="payments"} 0
		received_processed_messages_duration_seconds_sum{broker="gochannel",handler="payments"} 0
		received_processed_messages_total{broker="gochannel",handler="orders",status="acked"} 0
		received_processed_messages_total{broker="gochannel",handler="orders",status="error"} 0
		received_processed_messages_total{broker="gochannel",handler="orders",status="nacked"} 0
		received_processed_messages_total{broker="gochannel",handler="orders",status="rejected"} 0
		received_processed_messages_total{broker="gochannel",handler="orders",status="skipped"} 0
		received_processed_messages_total{broker="gochannel",handler="payments",status="acked"} 0
		received_processed_messages_total{broker="gochannel",handler="payments",status="error"} 0
		received_processed_messages_total{broker="gochannel",handler="payments",status="nacked"} 0
		received_processed_messages_total{broker="gochannel",handler="payments",status="rejected"} 0
		received_processed_messages_total{broker="gochannel",handler="payments",status="skipped"} 0`,
		"received_messages_total", "received_messages_in_process", "received_messages_size_bytes",
		"received_processed_messages_duration_seconds", "received_processed_messages_total")

	// The first message counts on the series that already exists: the
	// labels the middleware computes match the early ones.
	tr.publish(t, "orders", "x")
	waitProcessed(t, reg, 1)
	assertSamples(t, reg, []string{"app_name"}, `
		received_messages_total{broker="gochannel",handler="orders",region="eu"} 1
		received_messages_total{broker="gochannel",handler="payments",region="eu"} 0`,
		"received_messages_total")
}

// namedSubscriber names itself: the router then labels it by that name,
// which the subscriber decorator cannot know in advance.
type namedSubscriber struct{ *gochannel.GoChannel }

func (namedSubscriber) String() string { return "Bus" }

// appSubscriber is an application's own subscriber decorator, of a
// package that is no broker's: detection must look through it.
type appSubscriber struct{ next message.Subscriber }

func (a appSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return a.next.Subscribe(ctx, topic)
}
func (a appSubscriber) Close() error { return a.next.Close() }

// unwrappingSubscriber says what it wraps, and hides it otherwise.
type unwrappingSubscriber struct{ appSubscriber }

func (u *unwrappingSubscriber) Unwrap() message.Subscriber { return u.next }

// opaqueSubscriber keeps what it wraps behind a func: nothing to look
// through, so its own package names the broker.
type opaqueSubscriber struct {
	subscribe func(context.Context, string) (<-chan *message.Message, error)
}

func (o opaqueSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return o.subscribe(ctx, topic)
}
func (opaqueSubscriber) Close() error { return nil }

func TestDetectSubscriber(t *testing.T) {
	ps := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	inRouter := func(sub message.Subscriber) message.Subscriber {
		wrapped, err := message.MessageTransformSubscriberDecorator(func(*message.Message) {})(sub)
		if err != nil {
			t.Fatal(err)
		}
		return wrapped
	}
	cases := []struct {
		name string
		sub  message.Subscriber
		want detectedSubscriber
	}{
		{"a plain subscriber, outside a router", ps, detectedSubscriber{named: "", broker: "gochannel"}},
		{"inside the router's context decorator", inRouter(ps), detectedSubscriber{named: "gochannel.GoChannel", broker: "gochannel"}},
		{"an application decorator added before the Plugin", appSubscriber{inRouter(ps)}, detectedSubscriber{named: "gochannel.GoChannel", broker: "gochannel"}},
		{"two application decorators, one with Unwrap", &unwrappingSubscriber{appSubscriber{appSubscriber{inRouter(ps)}}}, detectedSubscriber{named: "gochannel.GoChannel", broker: "gochannel"}},
		{"an application decorator given to AddHandler", inRouter(appSubscriber{ps}), detectedSubscriber{named: "wmprom.appSubscriber", broker: "gochannel"}},
		{"a decorator with Unwrap given to AddHandler", inRouter(&unwrappingSubscriber{appSubscriber{ps}}), detectedSubscriber{named: "wmprom.unwrappingSubscriber", broker: "gochannel"}},
		{"a subscriber with a String method", inRouter(namedSubscriber{ps}), detectedSubscriber{named: "", broker: "gochannel"}},
		{"a decorator hiding what it wraps", inRouter(opaqueSubscriber{ps.Subscribe}), detectedSubscriber{named: "wmprom.opaqueSubscriber", broker: "wmprom"}},
	}
	for _, tc := range cases {
		if got := detectSubscriber(tc.sub); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// Where the label values are not known before a message, nothing is
// created early: a series with guessed values would stay at zero forever.
func TestNoEarlySeriesWhenValuesAreUnknown(t *testing.T) {
	tenant := func(msg *message.Message) string { return msg.Metadata.Get("tenant") }
	cases := []struct {
		name string
		opts []Option
		sub  func(*gochannel.GoChannel) message.Subscriber
	}{
		{"a label computed per message", []Option{WithLabelFunc("tenant", tenant)}, func(ps *gochannel.GoChannel) message.Subscriber { return ps }},
		{"a subscriber with a String method", nil, func(ps *gochannel.GoChannel) message.Subscriber { return namedSubscriber{ps} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, reg := newMetrics(t, tc.opts...)
			ps := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
			sub, _ := m.decorateSubscriber(tc.sub(ps))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if _, err := sub.Subscribe(ctx, "orders"); err != nil {
				t.Fatal(err)
			}
			if got := samples(t, reg, nil, "received_messages_total"); got != "" {
				t.Errorf("created early: %s", got)
			}
		})
	}
}

func TestWithDestinations(t *testing.T) {
	m, reg := newMetrics(t, WithDestinations("payments", "refunds"))
	if got := samples(t, reg, nil, "published_messages_total"); got != "" {
		t.Errorf("before any publisher is decorated: %s", got)
	}
	if _, err := m.DecoratePublisher(localPublisher{}); err != nil {
		t.Fatal(err)
	}
	assertSamples(t, reg, []string{"app_name"}, `
		published_messages_total{broker="wmprom",destination="payments",status="error"} 0
		published_messages_total{broker="wmprom",destination="payments",status="success"} 0
		published_messages_total{broker="wmprom",destination="refunds",status="error"} 0
		published_messages_total{broker="wmprom",destination="refunds",status="success"} 0
		published_messages_duration_seconds_count{broker="wmprom",destination="payments"} 0
		published_messages_duration_seconds_sum{broker="wmprom",destination="payments"} 0
		published_messages_duration_seconds_count{broker="wmprom",destination="refunds"} 0
		published_messages_duration_seconds_sum{broker="wmprom",destination="refunds"} 0`,
		"published_messages_total", "published_messages_duration_seconds")
}
