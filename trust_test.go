package wmprom

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// Hostile input, as a broker or an application may hand it to wmprom:
// every test here went through a real router and panicked (or lost or
// resent a message) before the label values were made valid.
const (
	badTopic      = "bad\xff\xfe-t"
	repairedTopic = "bad\uFFFD-t" // strings.ToValidUTF8 replaces each run of bad bytes
)

var (
	longText      = strings.Repeat("é", 500)
	boundedText   = strings.Repeat("é", MaxLabelValueRunes)
	longTraceID   = strings.Repeat("a", 121) // with "trace_id", 129 runes: one too many
	brokenTraceID = "4bf92f35\xff77b34da6"
)

// payloadCounts counts, per payload, how often a handler saw a message.
type payloadCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (d *payloadCounts) saw(msg *message.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[string]int{}
	}
	d.n[string(msg.Payload)]++
}

func (d *payloadCounts) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return fmt.Sprint(d.n)
}

// receiveLines renders the received and processed samples of one handler
// whose messages were all acked.
func receiveLines(handler string, acked int) string {
	return fmt.Sprintf(`
		received_messages_total{broker="gochannel",handler=%[1]q} %[2]d
		received_messages_in_process{broker="gochannel",handler=%[1]q} 0
		received_processed_messages_total{broker="gochannel",handler=%[1]q,status="acked"} %[2]d
		received_processed_messages_total{broker="gochannel",handler=%[1]q,status="error"} 0
		received_processed_messages_total{broker="gochannel",handler=%[1]q,status="nacked"} 0
		received_processed_messages_total{broker="gochannel",handler=%[1]q,status="rejected"} 0
		received_processed_messages_total{broker="gochannel",handler=%[1]q,status="skipped"} 0`, handler, acked)
}

var receiveFamilies = []string{"received_messages_total", "received_messages_in_process", "received_processed_messages_total"}

// A topic that is not valid UTF-8 is legal on Redis streams and NATS. It
// used to make Router.Run panic with the Plugin, and the middleware panic
// on every delivery without it.
func TestInvalidTopicThroughRouter(t *testing.T) {
	cases := []struct {
		name       string
		instrument func(r *message.Router, m *Metrics)
	}{
		{"Plugin", func(r *message.Router, m *Metrics) { r.AddPlugin(m.Plugin) }},
		{"Middleware alone", func(r *message.Router, m *Metrics) { r.AddMiddleware(m.Middleware) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, reg := newMetrics(t)
			var seen payloadCounts
			tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
				tc.instrument(r, m)
				addConsumer(r, "bad-handler", badTopic, ps, func(msg *message.Message) error {
					seen.saw(msg)
					return nil
				})
			})
			// GoChannel hands one message at a time to a subscriber: a
			// redelivery of "first" would come before "sentinel".
			tr.publish(t, badTopic, "first", "sentinel")
			waitSamples(t, reg, []string{"app_name"}, receiveLines(repairedTopic, 2), receiveFamilies...)
			if got := seen.String(); got != "map[first:1 sentinel:1]" {
				t.Errorf("deliveries: %s, want each message once", got)
			}
		})
	}
}

// Publishing to such a topic through a decorated publisher used to panic
// before the send: the message was lost and the caller saw a panic.
func TestInvalidTopicThroughDecoratedPublisher(t *testing.T) {
	m, reg := newMetrics(t, withClock(newFakeClock()))
	ps := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	defer ps.Close()
	pub, err := m.DecoratePublisher(ps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, err := ps.Subscribe(ctx, badTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, payload := range []string{"first", "sentinel"} {
		if err := pub.Publish(badTopic, message.NewMessage(watermill.NewUUID(), []byte(payload))); err != nil {
			t.Fatalf("Publish = %v, want GoChannel's nil", err)
		}
	}
	var seen payloadCounts
	for range 2 {
		select {
		case msg := <-in:
			seen.saw(msg)
			msg.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("only %s arrived", seen.String())
		}
	}
	if got := seen.String(); got != "map[first:1 sentinel:1]" {
		t.Errorf("deliveries: %s, want each message once", got)
	}
	assertSamples(t, reg, []string{"app_name"}, fmt.Sprintf(`
		published_messages_total{broker="gochannel",destination=%[1]q,status="error"} 0
		published_messages_total{broker="gochannel",destination=%[1]q,status="success"} 2
		published_messages_duration_seconds_count{broker="gochannel",destination=%[1]q} 2
		published_messages_duration_seconds_sum{broker="gochannel",destination=%[1]q} 0`, repairedTopic),
		"published_messages_total", "published_messages_duration_seconds")
}

// A router publishing a handler's produced messages to such a topic,
// and a second handler consuming them.
func TestInvalidPublishTopicThroughRouter(t *testing.T) {
	m, reg := newMetrics(t)
	var seen payloadCounts
	tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
		r.AddPlugin(m.Plugin)
		r.AddHandler("forward", "orders", ps, badTopic, ps, func(msg *message.Message) ([]*message.Message, error) {
			return []*message.Message{message.NewMessage(watermill.NewUUID(), msg.Payload)}, nil
		})
		addConsumer(r, "sink", badTopic, ps, func(msg *message.Message) error {
			seen.saw(msg)
			return nil
		})
	})
	tr.publish(t, "orders", "first", "sentinel")
	waitSamples(t, reg, []string{"app_name"}, receiveLines("orders", 2)+receiveLines(repairedTopic, 2)+fmt.Sprintf(`
		published_messages_total{broker="gochannel",destination=%[1]q,status="error"} 0
		published_messages_total{broker="gochannel",destination=%[1]q,status="success"} 2`, repairedTopic),
		append(receiveFamilies, "published_messages_total")...)
	if got := seen.String(); got != "map[first:1 sentinel:1]" {
		t.Errorf("deliveries: %s, want each message once", got)
	}
}

// A label function returning bytes that are not UTF-8, or a 0xff byte
// (the separator of custom label values inside wmprom), or too much.
func TestInvalidLabelFuncResult(t *testing.T) {
	m, reg := newMetrics(t,
		WithLabelFunc("tenant", func(msg *message.Message) string { return msg.Metadata.Get("tenant") }),
		WithLabel("region", "eu"),
		WithLabelFunc("shard", func(msg *message.Message) string { return msg.Metadata.Get("shard") }))
	var seen payloadCounts
	tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
		r.AddPlugin(m.Plugin)
		r.AddHandler("orders", "orders", ps, "payments", ps, func(msg *message.Message) ([]*message.Message, error) {
			seen.saw(msg)
			return []*message.Message{msg.Copy()}, nil
		})
	})
	for i, md := range [][2]string{{badTopic, "\xff"}, {"a\xffb", "c"}, {longText, ""}} {
		msg := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(i)))
		msg.Metadata.Set("tenant", md[0])
		msg.Metadata.Set("shard", md[1])
		if err := tr.pubsub.Publish("orders", msg); err != nil {
			t.Fatal(err)
		}
	}
	waitSamples(t, reg, []string{"app_name", "broker"}, fmt.Sprintf(`
		received_messages_total{handler="orders",region="eu",shard=%[3]q,tenant=%[1]q} 1
		received_messages_total{handler="orders",region="eu",shard="c",tenant=%[4]q} 1
		received_messages_total{handler="orders",region="eu",shard="unknown",tenant=%[2]q} 1
		published_messages_total{destination="payments",region="eu",shard=%[3]q,status="success",tenant=%[1]q} 1
		published_messages_total{destination="payments",region="eu",shard="c",status="success",tenant=%[4]q} 1
		published_messages_total{destination="payments",region="eu",shard="unknown",status="success",tenant=%[2]q} 1
		published_messages_total{destination="payments",region="eu",shard=%[3]q,status="error",tenant=%[1]q} 0
		published_messages_total{destination="payments",region="eu",shard="c",status="error",tenant=%[4]q} 0
		published_messages_total{destination="payments",region="eu",shard="unknown",status="error",tenant=%[2]q} 0`,
		repairedTopic, boundedText, "\uFFFD", "a\uFFFDb"), "received_messages_total", "published_messages_total")
	if got := seen.String(); got != "map[0:1 1:1 2:1]" {
		t.Errorf("deliveries: %s, want each message once", got)
	}
}

// namedError names its own exception_type, badly.
type namedError struct{ kind string }

func (e namedError) Error() string     { return "named" }
func (e namedError) ErrorType() string { return e.kind }

// An ErrorType method or a WithErrorType function returning invalid
// UTF-8 or 500 runes: the handler's error is still counted, and Publish
// still returns the broker's own error, not a panic.
func TestInvalidErrorTypes(t *testing.T) {
	cases := []struct {
		name     string
		opts     []Option
		err      error
		wantType string
	}{
		{"ErrorType, not UTF-8", nil, namedError{badTopic}, repairedTopic},
		{"ErrorType, 500 runes", nil, namedError{longText}, boundedText},
		{"WithErrorType, not UTF-8", []Option{WithErrorType(func(error) string { return badTopic })}, errors.New("x"), repairedTopic},
		{"WithErrorType, 500 runes", []Option{WithErrorType(func(error) string { return longText })}, errors.New("x"), boundedText},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, reg := newMetrics(t, tc.opts...)
			var seen payloadCounts
			var publishErr error
			var mu sync.Mutex
			tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
				r.AddPlugin(m.Plugin)
				addConsumer(r, "orders", "orders", ps, func(msg *message.Message) error {
					seen.saw(msg)
					if string(msg.Payload) != "first" {
						return nil
					}
					pub, _ := m.DecoratePublisher(failingPublisher{tc.err})
					mu.Lock()
					defer mu.Unlock()
					publishErr = pub.Publish("payments", message.NewMessage("p", nil))
					return Reject(tc.err) // counted, not redelivered
				})
			})
			tr.publish(t, "orders", "first", "sentinel")
			waitSamples(t, reg, []string{"app_name", "broker"}, fmt.Sprintf(`
				received_messages_total{handler="orders"} 2
				received_messages_in_process{handler="orders"} 0
				`+processed("orders", 1, 0, 0, 1, 0)+`
				published_messages_total{destination="payments",status="error"} 1
				published_messages_total{destination="payments",status="success"} 0
				published_messages_exceptions_total{destination="payments",exception_type=%q} 1`, tc.wantType),
				"received_messages_total", "received_messages_in_process", "received_processed_messages_total",
				"published_messages_total", "published_messages_exceptions_total")
			mu.Lock()
			defer mu.Unlock()
			if publishErr != tc.err {
				t.Errorf("Publish returned %v, want the publisher's own error", publishErr)
			}
			if got := seen.String(); got != "map[first:1 sentinel:1]" {
				t.Errorf("deliveries: %s, want each message once", got)
			}
		})
	}
	t.Run("in the handler", func(t *testing.T) {
		m, reg := newMetrics(t)
		var seen payloadCounts
		var firsts atomic.Int32
		tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
			r.AddPlugin(m.Plugin)
			addConsumer(r, "orders", "orders", ps, func(msg *message.Message) error {
				seen.saw(msg)
				if string(msg.Payload) == "first" && firsts.Add(1) == 1 {
					return namedError{badTopic} // nacked once, then redelivered
				}
				return nil
			})
		})
		tr.publish(t, "orders", "first", "sentinel")
		waitSamples(t, reg, []string{"app_name", "broker"}, fmt.Sprintf(`
			received_messages_total{handler="orders"} 3
			received_messages_in_process{handler="orders"} 0
			`+processed("orders", 2, 1, 0, 0, 0)+`
			received_processed_messages_exceptions_total{exception_type=%q,handler="orders"} 1`, repairedTopic),
			"received_messages_total", "received_messages_in_process", "received_processed_messages_total",
			"received_processed_messages_exceptions_total")
		if got := seen.String(); got != "map[first:2 sentinel:1]" {
			t.Errorf("deliveries: %s, want first twice (nacked once), sentinel once", got)
		}
	})
}

// A trace id that cannot make a valid exemplar drops the exemplar, never
// the message: it used to panic, on the publish side after the real send.
func TestInvalidTraceIDs(t *testing.T) {
	for _, id := range []string{longTraceID, brokenTraceID} {
		t.Run(fmt.Sprintf("%.12q", id), func(t *testing.T) {
			m, reg := newMetrics(t, WithTraceID(func(*message.Message) string { return id }))
			var seen payloadCounts
			tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
				r.AddPlugin(m.Plugin)
				r.AddHandler("orders", "orders", ps, "payments", ps, func(msg *message.Message) ([]*message.Message, error) {
					seen.saw(msg)
					return []*message.Message{msg.Copy()}, nil
				})
				addConsumer(r, "payments", "payments", ps, func(msg *message.Message) error {
					seen.saw(msg)
					return nil
				})
			})
			tr.publish(t, "orders", "first")
			// The application's own publish: it used to panic after the
			// real send, so the caller saw a failure for a sent message.
			pub, _ := m.DecoratePublisher(tr.pubsub)
			if err := pub.Publish("payments", message.NewMessage(watermill.NewUUID(), []byte("direct"))); err != nil {
				t.Errorf("Publish = %v, want GoChannel's nil", err)
			}
			waitSamples(t, reg, []string{"app_name"}, receiveLines("orders", 1)+receiveLines("payments", 2)+`
				published_messages_total{broker="gochannel",destination="payments",status="error"} 0
				published_messages_total{broker="gochannel",destination="payments",status="success"} 2`,
				append(receiveFamilies, "published_messages_total")...)
			if got := seen.String(); got != "map[direct:1 first:2]" {
				t.Errorf("deliveries: %s, want first once in each handler, direct once", got)
			}
			if got := exemplars(t, reg); len(got) != 0 {
				t.Errorf("exemplars: %v, want none", got)
			}
		})
	}
	t.Run("120 runes, the longest that fits, is kept", func(t *testing.T) {
		id := strings.Repeat("a", 120)
		m, reg := newMetrics(t, WithTraceID(func(*message.Message) string { return id }))
		h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		_, _ = h(message.NewMessage("1", nil))
		if got := exemplars(t, reg); len(got) != 3 || got[0] != "received_messages_total trace_id="+id {
			t.Errorf("exemplars: %v", got)
		}
	})
}
