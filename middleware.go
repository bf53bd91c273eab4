package wmprom

import (
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
// A message whose handler returns produced messages stays in process
// until the router has published them: its status is error if the router
// then nacks it, and acked otherwise. With DecoratePublisher on the
// router's publishers too (Plugin does both), the status is decided when
// the publish returns and a failed publish counts its error's type as the
// exception; without it, the status is decided from the message's ack or
// nack at the next message, publish or scrape, and a nack counts the
// exception type "unknown".
//
// Middleware logs the causes of Reject, Skip and Ack only when WithLogger
// gives it a logger. Inside another middleware of the same Metrics (the
// Plugin's, say), it passes messages through uncounted and reports
// ErrInstrumentedTwice once.
func (m *Metrics) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return m.instrument(h, m.cfg.logger)
}

// instrument is Middleware with logger for the causes the router is not
// told (logging.go) and for a nested middleware of m (misuse.go), which
// passes messages through uncounted once it finds itself nested.
func (m *Metrics) instrument(h message.HandlerFunc, logger watermill.LoggerAdapter) message.HandlerFunc {
	c := new(handlerChain)
	logged := logCauses(h, logger)
	return func(msg *message.Message) ([]*message.Message, error) {
		if c.nested.Load() {
			return h(msg)
		}
		s := m.receiveSeriesFor(msg, c)
		s.warm(m.families.rx.shape, len(msg.Payload))
		if !s.nesting.enter(msg) {
			c.nested.Store(true)
			m.reportNested(logger, msg)
			return h(msg)
		}
		defer s.nesting.leave(msg)
		return m.handle(logged, s, msg)
	}
}

func (m *Metrics) handle(h message.HandlerFunc, s *receiveSeries, msg *message.Message) (produced []*message.Message, err error) {
	m.sweep(false)
	m.observeAge(s, msg)
	ex := m.exemplar(msg)
	shape := m.families.rx.shape
	s.received(shape, ex)
	s.observeSize(shape, len(msg.Payload))
	s.started(shape)
	poisonedBefore := poisoned(msg)
	start := m.elapsed()
	returned := false
	defer func() {
		if !returned {
			// The handler panicked. Count it and let the panic go on
			// unrecovered: recovering is the business of a Recoverer
			// middleware or of the router.
			s.observeDuration(shape, (m.elapsed() - start).Seconds(), ex)
			m.record(s, statusError, exceptionPanic, ex)
		}
	}()
	produced, err = h(msg)
	returned = true
	s.observeDuration(shape, (m.elapsed() - start).Seconds(), ex)

	v := decide(msg, err, poisonedBefore)
	if v.dropped {
		produced = nil
	}
	if v.routerErr == nil && !v.ownAck && len(produced) > 0 {
		if !noPublisher(msg) {
			m.await(s, msg, produced, v.status, ex)
			return produced, nil
		}
		v.status, v.exception = statusError, message.ErrOutputInNoPublisherHandler
	}
	exception := ""
	if v.exception != nil {
		exception = m.processExceptionTypes.of(v.exception)
	}
	m.record(s, v.status, exception, ex)
	return produced, v.routerErr
}

// noPublisher tells whether msg's handler was added with a nil publisher:
// the router then fails with ErrOutputInNoPublisherHandler before any
// publish, which gives the exception its exact type.
func noPublisher(msg *message.Message) bool {
	return message.PublisherNameFromCtx(msg.Context()) == "<nil>"
}

// record counts one processed message of s, with an exception when
// exceptionType is not empty, and takes it out of the in-process gauge
// last: once the gauge is down, everything about the message is recorded.
func (m *Metrics) record(s *receiveSeries, st status, exceptionType string, ex prometheus.Labels) {
	if exceptionType != "" {
		add(s.exceptions.WithLabelValues(exceptionType), 1, ex)
	}
	s.processed(m.families.rx.shape, st, ex)
}
