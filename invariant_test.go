package wmprom

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
)

// TestInvariant checks received = acked + nacked + rejected + skipped +
// error for every handler series once the router is idle, for every
// outcome of a handler, every way of instrumenting a router and every
// Watermill middleware that changes what the router does with a message.
func TestInvariant(t *testing.T) {
	boom := errors.New("boom")
	outcomes := []struct {
		name    string
		handle  func(attempt int) ([]*message.Message, error)
		publish publishFault
	}{
		{"ack", func(int) ([]*message.Message, error) { return nil, nil }, publishes},
		{"Ack with a cause", func(int) ([]*message.Message, error) { return nil, Ack(boom) }, publishes},
		{"error", onFirstAttempt(boom), publishes},
		{"Nack", onFirstAttempt(Nack(boom)), publishes},
		{"Reject", onFirstAttempt(Reject(boom)), publishes},
		{"Skip", onFirstAttempt(Skip(nil)), publishes},
		{"panic", func(attempt int) ([]*message.Message, error) {
			if attempt == 1 {
				panic("order 7 is corrupt")
			}
			return nil, nil
		}, publishes},
		{"produced, published", produceOne, publishes},
		{"produced, publish fails", produceOne, failsOnce},
		{"produced, publisher panics", produceOne, panicsOnce},
	}
	wrappers := []struct {
		name string
		mw   func(ps *gochannel.GoChannel) message.HandlerMiddleware
	}{
		{"alone", nil},
		{"Retry", func(*gochannel.GoChannel) message.HandlerMiddleware { return quickRetry.Middleware }},
		{"PoisonQueue", func(ps *gochannel.GoChannel) message.HandlerMiddleware {
			pq, err := middleware.PoisonQueue(ps, "poison")
			if err != nil {
				panic(err)
			}
			return pq
		}},
		{"Duplicator", func(*gochannel.GoChannel) message.HandlerMiddleware { return middleware.Duplicator }},
		{"Recoverer", func(*gochannel.GoChannel) message.HandlerMiddleware { return middleware.Recoverer }},
	}
	instrumentations := []struct {
		name    string
		metrics int
		// add instruments r with ms around the wrapper middlewares.
		add func(r *message.Router, ms []*Metrics, wrappers ...message.HandlerMiddleware)
	}{
		{"Plugin", 1, func(r *message.Router, ms []*Metrics, w ...message.HandlerMiddleware) {
			r.AddMiddleware(w...)
			r.AddPlugin(ms[0].Plugin)
		}},
		{"Middleware outermost", 1, func(r *message.Router, ms []*Metrics, w ...message.HandlerMiddleware) {
			r.AddMiddleware(ms[0].Middleware)
			r.AddMiddleware(w...)
			r.AddPublisherDecorators(ms[0].DecoratePublisher)
		}},
		{"Middleware and Plugin", 1, func(r *message.Router, ms []*Metrics, w ...message.HandlerMiddleware) {
			r.AddMiddleware(ms[0].Middleware)
			r.AddMiddleware(w...)
			r.AddPlugin(ms[0].Plugin)
		}},
		{"two Metrics", 2, func(r *message.Router, ms []*Metrics, w ...message.HandlerMiddleware) {
			r.AddMiddleware(w...)
			r.AddPlugin(ms[0].Plugin, ms[1].Plugin)
		}},
	}
	for _, in := range instrumentations {
		for _, w := range wrappers {
			for _, o := range outcomes {
				t.Run(in.name+"/"+w.name+"/"+o.name, func(t *testing.T) {
					ms := make([]*Metrics, in.metrics)
					regs := make([]*prometheus.Registry, in.metrics)
					for i := range ms {
						ms[i], regs[i] = newMetrics(t, WithBroker("gochannel"))
					}
					var mu sync.Mutex
					attempts := 0
					h := func(msg *message.Message) ([]*message.Message, error) {
						if string(msg.Payload) != "first" {
							return o.handle(0)
						}
						mu.Lock()
						attempts++
						attempt := attempts
						mu.Unlock()
						return o.handle(attempt)
					}
					deliveries := &deliveries{}
					tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
						var wrap []message.HandlerMiddleware
						if w.mw != nil {
							wrap = append(wrap, w.mw(ps))
						}
						r.AddSubscriberDecorators(message.MessageTransformSubscriberDecorator(deliveries.add))
						in.add(r, ms, wrap...)
						var pub message.Publisher = ps
						switch o.publish {
						case failsOnce:
							pub = &failOncePublisher{Publisher: ps}
						case panicsOnce:
							pub = &panicOncePublisher{Publisher: ps}
						}
						r.AddHandler("orders", "orders", ps, "payments", pub, h)
					})
					tr.publish(t, "orders", "first", "sentinel")
					eventually(t, "the router acks both messages", func() bool { return deliveries.acked("first", "sentinel") })
					for i, reg := range regs {
						eventually(t, "nothing in process", func() bool {
							return counterValue(t, reg, "faststream_received_messages_in_process", nil) == 0
						})
						for _, v := range invariantViolations(t, reg) {
							t.Errorf("Metrics %d: %s", i, v)
						}
						if p := ms[i].undecided.pending.Load(); p != 0 {
							t.Errorf("Metrics %d: %d statuses still pending", i, p)
						}
					}
				})
			}
		}
	}
}

// publishFault is what the handler's publisher does the first time.
type publishFault int

const (
	publishes publishFault = iota
	failsOnce
	panicsOnce
)

func produceOne(int) ([]*message.Message, error) { return produce("paid"), nil }

func onFirstAttempt(err error) func(int) ([]*message.Message, error) {
	return func(attempt int) ([]*message.Message, error) {
		if attempt == 1 {
			return nil, err
		}
		return nil, nil
	}
}

// deliveries remembers every message the router was given, to tell when
// it has acked one delivery of each payload: a message is never delivered
// again once acked, so the router is then done with it.
type deliveries struct {
	mu   sync.Mutex
	msgs []*message.Message
}

func (d *deliveries) add(msg *message.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.msgs = append(d.msgs, msg)
}

func (d *deliveries) acked(payloads ...string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range payloads {
		done := false
		for _, msg := range d.msgs {
			if string(msg.Payload) != p {
				continue
			}
			select {
			case <-msg.Acked():
				done = true
			default:
			}
		}
		if !done {
			return false
		}
	}
	return true
}

// invariantViolations gathers reg once and lists every receive series
// whose received count is not the sum of its statuses, or that is still
// in process.
func invariantViolations(t *testing.T, reg prometheus.Gatherer) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	received, statuses, inProcess := map[string]float64{}, map[string]float64{}, map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				if lp.GetName() != labelStatus {
					ls = append(ls, lp.GetName()+"="+lp.GetValue())
				}
			}
			key := strings.Join(ls, ",")
			switch strings.TrimPrefix(mf.GetName(), "faststream_") {
			case "received_messages_total":
				received[key] += m.GetCounter().GetValue()
			case "received_processed_messages_total":
				statuses[key] += m.GetCounter().GetValue()
			case "received_messages_in_process":
				inProcess[key] += m.GetGauge().GetValue()
			}
		}
	}
	if len(received) == 0 {
		return []string{"no receive series at all"}
	}
	var out []string
	for key, r := range received {
		if s := statuses[key]; s != r {
			out = append(out, fmt.Sprintf("{%s}: received %v, statuses sum to %v", key, r, s))
		}
		if p := inProcess[key]; p != 0 {
			out = append(out, fmt.Sprintf("{%s}: %v in process", key, p))
		}
	}
	sort.Strings(out)
	return out
}
