package wmprom

import (
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// Middleware records the six receive families around h. Use it as a
// router-level or handler-level message.HandlerMiddleware: the router
// builds one handler chain per handler, and a chain it builds takes its
// handler's series from the first message and reads no later message's
// context. Called any other way (from a middleware of the application's,
// or to wrap a handler function given to several handlers), Middleware
// reads every message's context to find its handler.
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
// nack at the next message or scrape, and a nack counts the exception
// type "unknown".
//
// Middleware logs the causes of Reject, Skip and Ack only when WithLogger
// gives it a logger. Inside another middleware of the same Metrics (the
// Plugin's, say), it passes messages through uncounted and reports
// ErrInstrumentedTwice once.
func (m *Metrics) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return m.instrument(h, m.cfg.logger, builtByRouter())
}

// instrument is Middleware with logger for the causes the router is not
// told (logging.go) and for a nested middleware of m (misuse.go), which
// passes messages through uncounted once it finds itself nested.
// oneHandler says the router wraps h for one handler and gives the result
// to no other (see handlerChain).
//
// The router runs each message's handler chain on a goroutine of its own,
// whose stack starts small and is copied to one twice as large each time
// it runs out; a copy costs more than everything wmprom records. What a
// middleware keeps on that stack around the handler, and how deep it goes
// after, decides whether the handler's goroutine needs a copy that it
// would not need without the middleware. So the closure's frame holds
// only a reception, and the work is done in receive and end, whose frames
// exist only before and after the handler runs.
func (m *Metrics) instrument(h message.HandlerFunc, logger watermill.LoggerAdapter, oneHandler bool) message.HandlerFunc {
	c := &handlerChain{handlerChainFields: handlerChainFields{oneHandler: oneHandler}}
	return func(msg *message.Message) ([]*message.Message, error) {
		if c.nested.Load() {
			return h(msg)
		}
		r := reception{m: m, msg: msg, logger: logger}
		if !r.receive(c) {
			return h(msg)
		}
		defer r.done()
		produced, err := h(msg)
		r.returned = true
		return r.end(produced, err)
	}
}

// reception is one message through the middleware: what recording its
// outcome needs while its handler runs.
type reception struct {
	m              *Metrics
	msg            *message.Message
	logger         watermill.LoggerAdapter
	s              *receiveSeries
	chain          *handlerChain // the chain's cache, when it holds msg's handler
	ex             prometheus.Labels
	start          time.Duration
	poisonedBefore bool
	returned       bool // the handler returned rather than panicked
}

// receive finds the message's series and records its arrival. false
// means an enclosing middleware of the same Metrics counts it already.
//
//go:noinline
func (r *reception) receive(c *handlerChain) bool {
	m, msg := r.m, r.msg
	s, chain := m.receiveSeriesFor(msg, c)
	sizeWord := s.warm(m.families.rx.shape, len(msg.Payload))
	if !s.nesting.enter(msg) {
		c.nested.Store(true)
		m.reportNested(r.logger, msg)
		return false
	}
	m.sweep(false)
	m.observeAge(s, msg)
	ex := m.exemplar(msg)
	shape := m.families.rx.shape
	s.received(shape, ex)
	s.observeSize(shape, len(msg.Payload), sizeWord)
	r.s, r.chain, r.ex, r.poisonedBefore = s, chain, ex, poisoned(msg)
	r.start = m.elapsed()
	return true
}

// done runs when the handler has returned or panicked. A panic is counted
// and goes on unrecovered: recovering is the business of a Recoverer
// middleware or of the router.
func (r *reception) done() {
	s := r.s
	if !r.returned {
		s.observeDuration(r.m.families.rx.shape, (r.m.elapsed() - r.start).Seconds(), r.ex)
		r.m.record(s, statusError, exceptionPanic, r.ex)
	}
	s.nesting.leave(r.msg)
}

// end records what the handler did with the message, or leaves it to the
// publish of its produced messages, and returns what the router is told.
//
//go:noinline
func (r *reception) end(produced []*message.Message, err error) ([]*message.Message, error) {
	m, s := r.m, r.s
	s.observeDuration(m.families.rx.shape, (m.elapsed() - r.start).Seconds(), r.ex)
	if err != nil && r.logger != nil {
		logOutcome(r.logger, r.msg, err)
	}
	v := decide(r.msg, err, r.poisonedBefore, len(produced) > 0)
	if v.dropped {
		produced = nil
	}
	if v.routerErr == nil && !v.ownAck && len(produced) > 0 {
		if !r.noPublisher() {
			m.await(r, produced, v.status)
			return produced, nil
		}
		v.status, v.exception = statusError, message.ErrOutputInNoPublisherHandler
	}
	exception := ""
	if v.exception != nil {
		exception = m.processExceptionTypes.of(v.exception)
	}
	m.record(s, v.status, exception, r.ex)
	return produced, v.routerErr
}

// noPublisher tells whether the message's handler has no publisher, from
// the chain's cache when it holds the handler.
func (r *reception) noPublisher() bool {
	if r.chain != nil {
		return r.chain.noPublisher
	}
	return noPublisher(r.msg)
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
