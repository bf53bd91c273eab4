package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/wmprom/wmprom"
)

// The pipeline is the same on every broker: a generator places orders, the
// orders handler reserves stock and asks for a payment, the payments handler
// charges the card and asks for a notification, the notifications handler
// sends it. Each stage fails in its own plausible ways so that every status
// and several exception types show up on the dashboard.

// outcome is one way a stage can end; weight is its share of deliveries.
type outcome struct {
	weight float64
	err    func() error
}

// stage is one handler of the pipeline.
type stage struct {
	topic string // topic suffix; the broker name is prepended
	next  string // topic suffix the stage publishes to; "" for the last stage
	// work is how long the stage's pretend I/O takes for one message.
	work func() time.Duration
	// size is how large the message the stage produces is, in bytes.
	size func() int
	// failures are picked with their weight; the remainder of 1 is success.
	failures []outcome
	// publishFailRate is the share of produced messages whose publish fails.
	publishFailRate float64
	// slowsDown marks the stage that the pipeline's slow phase, if any, slows.
	slowsDown bool
}

var stages = []stage{
	{
		topic: "orders",
		next:  "payments",
		work:  mix(0.9, span(time.Millisecond, 20*time.Millisecond), span(20*time.Millisecond, 80*time.Millisecond)),
		size:  logUniformInt(120, 600),
		failures: []outcome{
			{0.03, func() error { return &ValidationError{Field: pick("customer_id", "items", "shipping_address")} }},
			{0.03, func() error { return wmprom.Skip(errDuplicateOrder) }},
			{0.01, func() error { return wmprom.Reject(errMalformedOrder) }},
			{0.02, func() error { return wmprom.Nack(errStockLocked) }},
		},
	},
	{
		topic: "payments",
		next:  "notifications",
		work: mix(0.8, span(5*time.Millisecond, 30*time.Millisecond),
			mix(0.85, span(30*time.Millisecond, 120*time.Millisecond), span(150*time.Millisecond, 400*time.Millisecond))),
		size: mix(0.9, logUniformInt(300, 3_000), logUniformInt(8_000, 40_000)),
		failures: []outcome{
			{0.03, func() error { return fmt.Errorf("charge card: %w", context.DeadlineExceeded) }},
			{0.02, func() error { return wmprom.Nack(errProviderThrottled) }},
		},
		publishFailRate: 0.03,
		slowsDown:       true,
	},
	{
		topic: "notifications",
		work:  mix(0.95, span(time.Millisecond, 10*time.Millisecond), span(50*time.Millisecond, 200*time.Millisecond)),
		failures: []outcome{
			{0.02, func() error { return fmt.Errorf("send receipt: %w", errSMTPUnavailable) }},
			{0.01, func() error { return wmprom.Reject(errBouncedAddress) }},
			{0.03, func() error { return wmprom.Skip(errUnsubscribed) }},
		},
	},
}

// orderSize is how large placed orders are: mostly small, sometimes tens of KB.
var orderSize = mix(0.6, logUniformInt(40, 400), mix(0.75, logUniformInt(400, 4_000), logUniformInt(4_000, 40_000)))

// pipeline wires the stages of one broker into a router.
type pipeline struct {
	prefix string
	health *pipelineHealth
	slow   *slowPhase // nil: this broker's pipeline never slows down
}

func (p *pipeline) topic(suffix string) string { return p.prefix + "-" + suffix }

func (p *pipeline) topics() []string {
	var out []string
	for _, st := range stages {
		out = append(out, p.topic(st.topic))
	}
	return out
}

func (p *pipeline) addHandlers(router *message.Router, conn *connection) error {
	for _, st := range stages {
		sub, err := conn.subscriber(p.topic(st.topic))
		if err != nil {
			return fmt.Errorf("subscriber for %s: %w", p.topic(st.topic), err)
		}
		if st.next == "" {
			router.AddConsumerHandler(p.topic(st.topic), p.topic(st.topic), sub, func(msg *message.Message) error {
				_, err := p.handle(st, msg)
				return err
			})
			continue
		}
		var pub message.Publisher = conn.publisher
		if st.publishFailRate > 0 {
			pub = &flakyPublisher{Publisher: pub, failRate: st.publishFailRate}
		}
		router.AddHandler(p.topic(st.topic), p.topic(st.topic), sub, p.topic(st.next), pub, func(msg *message.Message) ([]*message.Message, error) {
			return p.handle(st, msg)
		})
	}
	return nil
}

func (p *pipeline) handle(st stage, msg *message.Message) ([]*message.Message, error) {
	now := time.Now()
	p.health.consumed(now)
	work := st.work()
	if st.slowsDown && p.slow.active(now) {
		work = p.slow.work
	}
	timer := time.NewTimer(work)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-msg.Context().Done():
		return nil, msg.Context().Err()
	}
	if err := pickFailure(st.failures); err != nil {
		return nil, err
	}
	if st.next == "" {
		return nil, nil
	}
	out := message.NewMessage(watermill.NewUUID(), payload(st.next, msg.Metadata.Get("order_id"), st.size()))
	out.Metadata.Set("order_id", msg.Metadata.Get("order_id"))
	out.Metadata.Set(traceparentKey, childTraceparent(msg.Metadata.Get(traceparentKey)))
	return []*message.Message{out}, nil
}

// generate places orders at about rate per second until ctx ends. Arrivals are
// random (exponential gaps) so that the dashboard's rates look like real traffic.
func (p *pipeline) generate(ctx context.Context, pub message.Publisher, rate float64, log *slog.Logger) {
	topic := p.topic("orders")
	var failingSince, lastReport time.Time
	for n := 1; ; n++ {
		gap := time.Duration(rand.ExpFloat64() / rate * float64(time.Second))
		select {
		case <-ctx.Done():
			return
		case <-time.After(gap):
		}
		orderID := fmt.Sprintf("o-%d-%s", n, watermill.NewShortUUID()[:6])
		msg := message.NewMessage(watermill.NewUUID(), payload("order", orderID, orderSize()))
		msg.Metadata.Set("order_id", orderID)
		msg.Metadata.Set(traceparentKey, newTraceparent())

		p.health.publishing(time.Now())
		err := pub.Publish(topic, msg)
		now := time.Now()
		p.health.published(now, err)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && failingSince.IsZero():
			failingSince, lastReport = now, now
			log.Warn("publishing orders fails", "topic", topic, "err", err.Error())
		case err != nil && now.Sub(lastReport) > 10*time.Second:
			lastReport = now
			log.Warn("publishing orders still fails", "topic", topic, "for", now.Sub(failingSince).Round(time.Second), "err", err.Error())
		case err == nil && !failingSince.IsZero():
			log.Info("publishing orders recovered", "topic", topic, "after", now.Sub(failingSince).Round(time.Second))
			failingSince = time.Time{}
		}
	}
}

// pipelineHealth notices a broker session that its client library cannot
// repair by itself: publishes that fail or hang, or published orders that
// never come back to a handler.
type pipelineHealth struct {
	publishDeadAfter time.Duration
	consumeDeadAfter time.Duration

	mu               sync.Mutex
	inFlightSince    time.Time // start of the publish call still running, if any
	failingSince     time.Time // first failed publish since the last success
	lastErr          error
	unconsumedSince  time.Time // first successful publish since the last consumed message
	lastConsumedTime time.Time
}

func (h *pipelineHealth) publishing(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inFlightSince = now
}

func (h *pipelineHealth) published(now time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inFlightSince = time.Time{}
	if err != nil {
		h.lastErr = err
		if h.failingSince.IsZero() {
			h.failingSince = now
		}
		return
	}
	h.failingSince = time.Time{}
	if h.unconsumedSince.IsZero() {
		h.unconsumedSince = now
	}
}

func (h *pipelineHealth) consumed(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastConsumedTime = now
	h.unconsumedSince = time.Time{}
}

// check returns why the session should be restarted, or nil if it looks alive.
func (h *pipelineHealth) check(now time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case !h.inFlightSince.IsZero() && now.Sub(h.inFlightSince) > h.publishDeadAfter:
		return fmt.Errorf("a publish has hung for %s", now.Sub(h.inFlightSince).Round(time.Second))
	case !h.failingSince.IsZero() && now.Sub(h.failingSince) > h.publishDeadAfter:
		return fmt.Errorf("publishing has failed for %s: %w", now.Sub(h.failingSince).Round(time.Second), h.lastErr)
	case !h.unconsumedSince.IsZero() && now.Sub(h.unconsumedSince) > h.consumeDeadAfter:
		return fmt.Errorf("no message consumed for %s although publishing works", now.Sub(h.unconsumedSince).Round(time.Second))
	}
	return nil
}

// payload builds a JSON document of about size bytes; the padding stands in
// for line items, addresses or a rendered e-mail.
func payload(kind, orderID string, size int) []byte {
	doc := map[string]any{
		"kind":         kind,
		"order_id":     orderID,
		"customer_id":  fmt.Sprintf("c-%04d", rand.N(5000)),
		"amount_cents": 100 + rand.N(50_000),
		"created_at":   time.Now().UTC().Format(time.RFC3339Nano),
	}
	base, _ := json.Marshal(doc)
	if pad := size - len(base) - len(`,"details":""`); pad > 0 {
		doc["details"] = strings.Repeat("x", pad)
		base, _ = json.Marshal(doc)
	}
	return base
}

func pickFailure(failures []outcome) error {
	r := rand.Float64()
	for _, f := range failures {
		if r < f.weight {
			return f.err()
		}
		r -= f.weight
	}
	return nil
}

func pick(options ...string) string { return options[rand.N(len(options))] }

// span draws uniformly from [lo, hi).
func span(lo, hi time.Duration) func() time.Duration {
	return func() time.Duration { return lo + rand.N(hi-lo) }
}

// mix draws from a with probability p, else from b: a cheap way to give
// latency and size distributions the long tail real traffic has.
func mix[T any](p float64, a, b func() T) func() T {
	return func() T {
		if rand.Float64() < p {
			return a()
		}
		return b()
	}
}

// logUniformInt draws sizes spread evenly over orders of magnitude in [lo, hi).
func logUniformInt(lo, hi int) func() int {
	return func() int {
		return int(float64(lo) * math.Pow(float64(hi)/float64(lo), rand.Float64()))
	}
}
