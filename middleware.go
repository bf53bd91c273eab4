package wmprom

import (
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// Middleware records the six receive families around h. Use it as a
// router-level message.HandlerMiddleware: the router builds one handler
// chain per handler, and each chain caches its handler's series.
//
// Watermill runs the first middleware added outermost. Added first,
// Middleware sees one delivery as one message whatever Retry,
// PoisonQueue or Recoverer do inside it; added last (which is what
// Plugin does, since plugins run at Router.Run), it counts every attempt
// those middlewares make.
//
// Add DecoratePublisher as a publisher decorator too (Plugin does both),
// so that a failure to publish a handler's produced messages counts the
// message as an error, as it is then nacked. Middleware logs the causes
// of Reject, Skip and Ack only when WithLogger gives it a logger. Inside
// another middleware of the same Metrics (the Plugin's, say), it passes
// messages through uncounted and reports ErrInstrumentedTwice once.
func (m *Metrics) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return m.instrument(h, m.cfg.logger)
}

// instrument is Middleware with logger for the causes the router is not
// told (logging.go) and for a nested middleware of m (misuse.go), which
// passes messages through uncounted once it finds itself nested.
func (m *Metrics) instrument(h message.HandlerFunc, logger watermill.LoggerAdapter) message.HandlerFunc {
	last := new(atomic.Pointer[lastReceive])
	logged := logCauses(h, logger)
	nested := new(atomic.Bool)
	return func(msg *message.Message) ([]*message.Message, error) {
		if nested.Load() {
			return h(msg)
		}
		s := m.receiveSeriesFor(msg, last)
		if !s.nesting.enter(msg) {
			nested.Store(true)
			m.reportNested(logger, msg)
			return h(msg)
		}
		defer s.nesting.leave(msg)
		return m.handle(logged, s, msg)
	}
}

func (m *Metrics) handle(h message.HandlerFunc, s *receiveSeries, msg *message.Message) (produced []*message.Message, err error) {
	ex := m.exemplar(msg)
	add(s.received, 1, ex)
	s.size.Observe(float64(len(msg.Payload)))
	s.inProcess.Inc()
	poisonedBefore := poisoned(msg)
	start := m.cfg.now()
	returned := false
	defer func() {
		observe(s.duration, m.cfg.since(start).Seconds(), ex)
		s.inProcess.Dec()
		if !returned {
			// The handler panicked. Count it and let the panic go on
			// unrecovered: recovering is the business of a Recoverer
			// middleware or of the router.
			add(s.processed[statusError], 1, ex)
			add(s.exceptions.WithLabelValues(exceptionPanic), 1, ex)
		}
	}()
	produced, err = h(msg)
	returned = true

	v := decide(msg, err, poisonedBefore)
	if v.dropped {
		produced = nil
	}
	if v.routerErr == nil && !v.ownAck && len(produced) > 0 {
		if m.awaitPublish(s, msg, produced, ex) {
			return produced, nil
		}
	}
	m.record(s, v.status, v.exception, ex)
	return produced, v.routerErr
}

// record counts one processed message of s.
func (m *Metrics) record(s *receiveSeries, st status, exception error, ex prometheus.Labels) {
	add(s.processed[st], 1, ex)
	if exception != nil {
		add(s.exceptions.WithLabelValues(m.processExceptionTypes.of(exception)), 1, ex)
	}
}
