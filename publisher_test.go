package wmprom

import (
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

type failingPublisher struct{ err error }

func (p failingPublisher) Publish(string, ...*message.Message) error { return p.err }
func (p failingPublisher) Close() error                              { return errors.New("closed twice") }

// slowPublisher takes d of the fake clock per call.
type slowPublisher struct {
	clock *fakeClock
	d     time.Duration
}

func (p slowPublisher) Publish(string, ...*message.Message) error { p.clock.Advance(p.d); return nil }
func (p slowPublisher) Close() error                              { return nil }

func msgs(n int) []*message.Message {
	out := make([]*message.Message, n)
	for i := range out {
		out[i] = message.NewMessage("m", []byte("abc"))
	}
	return out
}

// One call observes one duration, counts every message, and on failure
// one exception.
func TestPublisher(t *testing.T) {
	clock := newFakeClock()
	m, reg := newMetrics(t, withClock(clock))
	ok, _ := m.DecoratePublisher(slowPublisher{clock, 30 * time.Millisecond})
	bad, _ := m.DecoratePublisher(failingPublisher{brokerDownError{}})
	if err := ok.Publish("payments", msgs(3)...); err != nil {
		t.Fatal(err)
	}
	if err := ok.Publish("payments"); err != nil {
		t.Fatal(err)
	}
	if err := bad.Publish("payments", msgs(2)...); !errors.Is(err, brokerDownError{}) {
		t.Fatalf("the publisher's error must come back unchanged, got %v", err)
	}
	assertSamples(t, reg, []string{"app_name", "broker"}, `
		published_messages_total{destination="payments",status="error"} 2
		published_messages_total{destination="payments",status="success"} 3
		published_messages_duration_seconds_count{destination="payments"} 3
		published_messages_duration_seconds_sum{destination="payments"} 0.06
		published_messages_exceptions_total{destination="payments",exception_type="wmprom.brokerDownError"} 1`,
		"published_messages_total", "published_messages_duration_seconds", "published_messages_exceptions_total")
	if err := bad.Close(); err == nil || err.Error() != "closed twice" {
		t.Errorf("Close must return the wrapped publisher's error, got %v", err)
	}
}

func TestDecoratePublisherNilStaysNil(t *testing.T) {
	m, _ := newMetrics(t)
	pub, err := m.DecoratePublisher(nil)
	if pub != nil || err != nil {
		t.Errorf("DecoratePublisher(nil) = %v, %v", pub, err)
	}
}

// Decorating twice with the same Metrics must not count twice.
func TestDecoratePublisherTwice(t *testing.T) {
	m, reg := newMetrics(t, WithLogger(watermill.NopLogger{}))
	once, _ := m.DecoratePublisher(localPublisher{})
	twice, _ := m.DecoratePublisher(once)
	_ = twice.Publish("t", msgs(1)...)
	if got := counterValue(t, reg, "faststream_published_messages_total", map[string]string{"destination": "t", "status": "success"}); got != 1 {
		t.Errorf("published %v, want 1", got)
	}
	other, _ := newMetrics(t)
	wrapped, _ := other.DecoratePublisher(once)
	if wrapped == once {
		t.Error("another Metrics must wrap, not reuse")
	}
	_ = reg
}
