package wmprom

import (
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// Middleware records the six receive families around h, as a router-level
// or handler-level message.HandlerMiddleware: added first it counts one
// delivery as one message whatever Retry or PoisonQueue do inside it; the
// Plugin's, innermost, counts every attempt. A message whose handler
// returns produced messages stays in process until the router publishes
// them: error if the router then nacks it, else acked, decided by
// DecoratePublisher's publish (with its error's type as the exception) or
// else by the message's ack or nack at the next message or scrape
// (exception type "unknown"). Causes of Reject, Skip and Ack go to
// WithLogger's logger only. A message already inside a middleware of the
// same Metrics passes through uncounted (see ErrInstrumentedTwice).
func (m *Metrics) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return m.instrument(h, m.cfg.logger)
}

// instrument is Middleware with logger for the causes the router is not
// told and for misuse reports. The closure keeps one reception, whose
// methods do the work: its frame is beneath everything the handler does.
func (m *Metrics) instrument(h message.HandlerFunc, logger watermill.LoggerAdapter) message.HandlerFunc {
	// A router builds one chain per handler: the last message's series
	// are almost always the next one's.
	var last atomic.Pointer[chainSeries]
	return func(msg *message.Message) ([]*message.Message, error) {
		r := reception{m: m, msg: msg, logger: logger}
		if !r.receive(&last) {
			return h(msg)
		}
		defer r.done()
		produced, err := h(msg)
		r.returned = true
		return r.end(produced, err)
	}
}

// chainSeries are the series of the last message through a chain, with
// the router's names they were found by.
type chainSeries struct {
	subscriber, handler string
	series              *receiveSeries
}

// receiveSeriesFor finds the series of the handler msg was delivered to.
// The raw names from its context are compared with the last message's,
// and made label values only when they differ.
func (m *Metrics) receiveSeriesFor(msg *message.Message, last *atomic.Pointer[chainSeries]) *receiveSeries {
	ctx := msg.Context()
	handler := m.handlerOf(ctx)
	subscriber := message.SubscriberNameFromCtx(ctx)
	if m.dynamic {
		return m.receiveSeries(m.receiveBroker(subscriber, message.SubscribeTopicFromCtx(ctx)), handler, customValues(m.cfg.custom, msg))
	}
	if c := last.Load(); c != nil && c.handler == handler && c.subscriber == subscriber {
		return c.series
	}
	s := m.receiveSeries(m.receiveBroker(subscriber, message.SubscribeTopicFromCtx(ctx)), handler, m.customStatic)
	last.Store(&chainSeries{subscriber: subscriber, handler: handler, series: s})
	return s
}

// reception is one message through the middleware.
type reception struct {
	m              *Metrics
	msg            *message.Message
	logger         watermill.LoggerAdapter
	s              *receiveSeries
	ex             prometheus.Labels
	start          time.Duration
	poisonedBefore bool
	returned       bool // the handler returned rather than panicked
}

// receive records the arrival of the message and starts its clock; false
// means an enclosing middleware of the same Metrics counts it already.
func (r *reception) receive(last *atomic.Pointer[chainSeries]) bool {
	m, msg := r.m, r.msg
	s := m.receiveSeriesFor(msg, last)
	if !s.nesting.enter(msg) {
		m.reportNested(r.logger, msg)
		return false
	}
	m.sweep(false)
	m.observeAge(s, msg)
	ex := m.exemplar(msg)
	s.inProcess.Inc()
	add(s.received, 1, ex)
	// No exemplar: the size of a message says nothing its trace would explain.
	s.size.Observe(float64(len(msg.Payload)))
	r.s, r.ex, r.poisonedBefore, r.start = s, ex, poisoned(msg), m.elapsed()
	return true
}

// done runs when the handler has returned or panicked. A panic is counted
// and goes on: recovering is the business of a Recoverer or the router.
func (r *reception) done() {
	if !r.returned {
		observe(r.s.duration, (r.m.elapsed() - r.start).Seconds(), r.ex)
		r.m.record(r.s, statusError, exceptionPanic, r.ex)
	}
	r.s.nesting.leave(r.msg)
}

// end records what the handler did with the message, or leaves it to the
// publish of its produced messages, and returns what the router is told.
func (r *reception) end(produced []*message.Message, err error) ([]*message.Message, error) {
	m := r.m
	observe(r.s.duration, (m.elapsed() - r.start).Seconds(), r.ex)
	if err != nil && r.logger != nil {
		logOutcome(r.logger, r.msg, err)
	}
	v := decide(r.msg, err, r.poisonedBefore)
	if v.dropped {
		produced = nil
	}
	if v.routerErr == nil && !v.ownAck && len(produced) > 0 {
		// A handler added without a publisher makes the router fail with
		// ErrOutputInNoPublisherHandler before any publish.
		if message.PublisherNameFromCtx(r.msg.Context()) != "<nil>" {
			m.await(r, produced, v.status)
			return produced, nil
		}
		v.status, v.exception = statusError, message.ErrOutputInNoPublisherHandler
	}
	exception := ""
	if v.exception != nil {
		exception = m.processExceptionTypes.of(v.exception)
	}
	m.record(r.s, v.status, exception, r.ex)
	return produced, v.routerErr
}

// record counts one processed message of s, with an exception when
// exceptionType is not empty, and takes it out of the in-process gauge
// last: once the gauge is down, everything about the message is recorded.
func (m *Metrics) record(s *receiveSeries, st status, exceptionType string, ex prometheus.Labels) {
	if exceptionType != "" {
		add(s.exceptions.WithLabelValues(exceptionType), 1, ex)
	}
	add(s.statuses[st], 1, ex)
	s.inProcess.Dec()
}
