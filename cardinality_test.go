package wmprom

import (
	"fmt"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// Past WithMaxLabelSets, handlers are counted as "other", through a real
// router: topics per tenant cannot flood Prometheus.
func TestMaxLabelSetsOfHandlers(t *testing.T) {
	m, reg := newMetrics(t, WithMaxLabelSets(2))
	tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
		r.AddMiddleware(m.Middleware) // no Plugin: series are made in the order messages come
		for _, topic := range []string{"t1", "t2", "t3", "t4"} {
			addConsumer(r, topic, topic, ps, func(*message.Message) error { return nil })
		}
	})
	want := ""
	for i, topic := range []string{"t1", "t2", "t3", "t4"} {
		tr.publish(t, topic, "x")
		switch {
		case i < 2:
			want += fmt.Sprintf("received_messages_total{handler=%q} 1\n", topic)
		case i == 2:
			want += "received_messages_total{handler=\"other\"} 1\n"
		default:
			want = want[:len(want)-2] + "2\n"
		}
		waitSamples(t, reg, []string{"app_name", "broker"}, want, "received_messages_total")
	}
}

// Publish label sets are bounded apart from receive ones, and label sets
// are counted, not series: one destination is one set however many
// series its three families have.
func TestMaxLabelSetsOfDestinations(t *testing.T) {
	m, reg := newMetrics(t, WithMaxLabelSets(2))
	pub, _ := m.DecoratePublisher(localPublisher{})
	for _, topic := range []string{"d1", "d1", "d2", "d3", "d4", "d2"} {
		if err := pub.Publish(topic, message.NewMessage("1", nil)); err != nil {
			t.Fatal(err)
		}
	}
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	_, _ = h(message.NewMessage("1", nil))
	assertSamples(t, reg, []string{"app_name", "broker"}, `
		published_messages_total{destination="d1",status="error"} 0
		published_messages_total{destination="d1",status="success"} 2
		published_messages_total{destination="d2",status="error"} 0
		published_messages_total{destination="d2",status="success"} 2
		published_messages_total{destination="other",status="error"} 0
		published_messages_total{destination="other",status="success"} 2
		received_messages_total{handler="unknown"} 1`,
		"published_messages_total", "received_messages_total")
}

// A label function's values past the bound read "other"; a static
// label keeps its value, as it is not what overflowed.
func TestMaxLabelSetsOfLabelFuncValues(t *testing.T) {
	m, reg := newMetrics(t, WithMaxLabelSets(2), WithLabel("region", "eu"),
		WithLabelFunc("tenant", func(msg *message.Message) string { return msg.Metadata.Get("tenant") }))
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	for _, tenant := range []string{"a", "b", "c", "d", "a"} {
		msg := message.NewMessage("1", nil)
		msg.Metadata.Set("tenant", tenant)
		_, _ = h(msg)
	}
	assertSamples(t, reg, []string{"app_name", "broker"}, `
		received_messages_total{handler="unknown",region="eu",tenant="a"} 2
		received_messages_total{handler="unknown",region="eu",tenant="b"} 1
		received_messages_total{handler="other",region="eu",tenant="other"} 2`,
		"received_messages_total")
}

// However many goroutines race for new label sets, exactly the bound is
// created, plus the overflow set.
func TestMaxLabelSetsUnderRace(t *testing.T) {
	const max, goroutines, each = 10, 8, 50
	m, reg := newMetrics(t, WithMaxLabelSets(max))
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m.receiveSeries("b", fmt.Sprintf("h%d-%d", g, i), m.customStatic).received.Inc()
			}
		}()
	}
	wg.Wait()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sets, total, other := 0, 0.0, 0.0
	for _, mf := range mfs {
		if mf.GetName() != "faststream_received_messages_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			sets++
			total += s.GetCounter().GetValue()
			for _, lp := range s.GetLabel() {
				if lp.GetName() == "handler" && lp.GetValue() == "other" {
					other = s.GetCounter().GetValue()
				}
			}
		}
	}
	if sets != max+1 || total != goroutines*each || other != goroutines*each-max {
		t.Errorf("%d label sets, %v messages, %v as other; want %d, %d, %d", sets, total, other, max+1, goroutines*each, goroutines*each-max)
	}
}
