package wmprom

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

func TestBrokerFromTypeName(t *testing.T) {
	cases := map[string]string{
		"kafka.Subscriber":       "kafka",
		"*kafka.Publisher":       "kafka",
		"amqp.Subscriber":        "rabbit",
		"nats.Subscriber":        "nats",
		"jetstream.Subscriber":   "nats",
		"redisstream.Subscriber": "redis",
		"gochannel.GoChannel":    "gochannel",
		"sql.Subscriber":         "sql",
		"MyBus":                  "mybus", // a subscriber with a String method
		"":                       "unknown",
	}
	for name, want := range cases {
		if got := brokerFromTypeName(name); got != want {
			t.Errorf("brokerFromTypeName(%q) = %q, want %q", name, got, want)
		}
	}
}

type localPublisher struct{}

func (localPublisher) Publish(string, ...*message.Message) error { return nil }
func (localPublisher) Close() error                              { return nil }

// wrapper hides a publisher but says what it wraps.
type wrapper struct{ message.Publisher }

func (w wrapper) Unwrap() message.Publisher { return w.Publisher }

func TestPublisherBroker(t *testing.T) {
	ps := gochannel.NewGoChannel(gochannel.Config{}, nil)
	cases := []struct {
		pub  message.Publisher
		want string
	}{
		{ps, "gochannel"},
		{wrapper{ps}, "gochannel"},
		{wrapper{wrapper{ps}}, "gochannel"},
		{wrapper{nil}, "wmprom"},
		{localPublisher{}, "wmprom"},
	}
	for _, tc := range cases {
		if got := publisherBroker(tc.pub); got != tc.want {
			t.Errorf("publisherBroker(%#v) = %q, want %q", tc.pub, got, tc.want)
		}
	}
}

func TestBrokerOf(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{gochannel.NewGoChannel(gochannel.Config{}, nil), "gochannel"},
		{localPublisher{}, "wmprom"},
		{&localPublisher{}, "wmprom"},
		{nil, "unknown"},
	}
	for _, tc := range cases {
		if got := brokerOf(tc.v); got != tc.want {
			t.Errorf("brokerOf(%T) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestLabelValues(t *testing.T) {
	tenant := func(msg *message.Message) string { return msg.Metadata.Get("tenant") }
	cases := []struct {
		name string
		opts []Option
		want string
	}{{
		name: "defaults: app name is the prefix, broker detected, handler is the topic",
		want: `
			received_messages_total{app_name="faststream",broker="gochannel",handler="orders"} 2
			published_messages_total{app_name="faststream",broker="gochannel",destination="payments",status="error"} 0
			published_messages_total{app_name="faststream",broker="gochannel",destination="payments",status="success"} 2`,
	}, {
		name: "app name and broker set",
		opts: []Option{WithAppName("shop"), WithBroker("rabbit")},
		want: `
			received_messages_total{app_name="shop",broker="rabbit",handler="orders"} 2
			published_messages_total{app_name="shop",broker="rabbit",destination="payments",status="error"} 0
			published_messages_total{app_name="shop",broker="rabbit",destination="payments",status="success"} 2`,
	}, {
		name: "a static label follows the built-in ones on every family",
		opts: []Option{WithLabel("region", "eu")},
		want: `
			received_messages_total{app_name="faststream",broker="gochannel",handler="orders",region="eu"} 2
			published_messages_total{app_name="faststream",broker="gochannel",destination="payments",region="eu",status="error"} 0
			published_messages_total{app_name="faststream",broker="gochannel",destination="payments",region="eu",status="success"} 2`,
	}, {
		name: "a label computed per message, empty values become unknown",
		opts: []Option{WithLabelFunc("tenant", tenant)},
		want: `
			received_messages_total{app_name="faststream",broker="gochannel",handler="orders",tenant="acme"} 1
			received_messages_total{app_name="faststream",broker="gochannel",handler="orders",tenant="unknown"} 1
			published_messages_total{app_name="faststream",broker="gochannel",destination="payments",status="error",tenant="acme"} 0
			published_messages_total{app_name="faststream",broker="gochannel",destination="payments",status="error",tenant="unknown"} 0
			published_messages_total{app_name="faststream",broker="gochannel",destination="payments",status="success",tenant="acme"} 1
			published_messages_total{app_name="faststream",broker="gochannel",destination="payments",status="success",tenant="unknown"} 1`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, reg := newMetrics(t, tc.opts...)
			tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
				r.AddPlugin(m.Plugin)
				r.AddHandler("orders-handler", "orders", ps, "payments", ps, func(msg *message.Message) ([]*message.Message, error) {
					return []*message.Message{msg.Copy()}, nil
				})
			})
			for _, tenant := range []string{"acme", ""} {
				msg := message.NewMessage(tenant+"1", []byte("x"))
				msg.Metadata.Set("tenant", tenant)
				if err := tr.pubsub.Publish("orders", msg); err != nil {
					t.Fatal(err)
				}
			}
			waitProcessed(t, reg, 2)
			assertSamples(t, reg, nil, tc.want, "received_messages_total", "published_messages_total")
		})
	}
}

func TestPrefix(t *testing.T) {
	m, reg := newMetrics(t, WithPrefix("orders_svc"))
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	_, _ = h(message.NewMessage("1", nil))
	if got := counterValue(t, reg, "orders_svc_received_messages_total", map[string]string{"app_name": "orders_svc"}); got != 1 {
		t.Errorf("orders_svc_received_messages_total = %v", got)
	}
}

// Outside a router there is no topic: the handler label falls back to
// "unknown" rather than an empty value the dashboard would hide.
func TestNoLabelIsEmpty(t *testing.T) {
	m, reg := newMetrics(t)
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	_, _ = h(message.NewMessage("1", nil))
	pub, _ := m.DecoratePublisher(localPublisher{})
	_ = pub.Publish("", message.NewMessage("2", nil))
	assertSamples(t, reg, nil, `
		received_messages_total{app_name="faststream",broker="unknown",handler="unknown"} 1
		published_messages_total{app_name="faststream",broker="wmprom",destination="unknown",status="error"} 0
		published_messages_total{app_name="faststream",broker="wmprom",destination="unknown",status="success"} 1`,
		"received_messages_total", "published_messages_total")
}
