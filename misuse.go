package wmprom

import (
	"errors"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// ErrInstrumentedTwice is the error of the entry logged, once per Metrics
// and kind, when a Metrics finds itself instrumenting something twice:
// a message that passes through two of its middlewares (the Plugin and
// Middleware on one router, Middleware added twice, the Plugin added
// twice), or DecoratePublisher given a publisher it already decorates.
// The inner middleware then stops counting and the publisher is not
// wrapped again, so every message is still counted once.
var ErrInstrumentedTwice = errors.New("wmprom: one Metrics instruments the same handler or publisher twice")

// Log messages of the misuse reports.
const (
	logNestedMiddleware = "wmprom: a message passed through two middlewares of one Metrics " +
		"(the Plugin together with Middleware, or either added twice); the inner one stops counting"
	logDecoratedTwice = "wmprom: DecoratePublisher got a publisher it already decorates " +
		"(the Plugin together with router.AddPublisherDecorators(m.DecoratePublisher)?); it is not wrapped again"
)

// misuseReports makes each kind of misuse reported once per Metrics.
type misuseReports struct {
	nested, decoratedTwice atomic.Bool
}

// nesting tells whether a message is inside a middleware of the series'
// Metrics. Two such middlewares on one handler find the same series, as
// they compute the same labels from the same message, and the inner one
// finds the message already there. Concurrent messages can hide a nesting
// for a while (the slot holds one message), never invent one: a message
// is only found there while a middleware is handling it.
type nesting struct {
	handling atomic.Pointer[message.Message]
}

// enter records msg as handled; false means an enclosing middleware of
// the same Metrics handles it already.
func (n *nesting) enter(msg *message.Message) bool {
	// One swap, not a read and then a write: with the handler's messages
	// on several cores, the line moves between them once, not twice.
	// Found there already, msg was written over itself.
	return n.handling.Swap(msg) != msg
}

// leave forgets msg, unless a concurrent message has replaced it.
func (n *nesting) leave(msg *message.Message) { n.handling.CompareAndSwap(msg, nil) }

// reportNested reports, once per Metrics, a message counted by an
// enclosing middleware of the same Metrics.
func (m *Metrics) reportNested(logger watermill.LoggerAdapter, msg *message.Message) {
	if m.misuse.nested.CompareAndSwap(false, true) {
		orStderr(logger).Error(logNestedMiddleware, ErrInstrumentedTwice, messageFields(msg))
	}
}

// decoratedBy returns the decorator of m inside pub, if m already counts
// its publishes, looking through wrappers that have an Unwrap()
// message.Publisher method.
func (m *Metrics) decoratedBy(pub message.Publisher) *publisher {
	for range 16 { // a bound, in case a wrapper returns itself
		if p, ok := pub.(*publisher); ok && p.metrics == m {
			return p
		}
		w, ok := pub.(publisherWrapper)
		if !ok || w.Unwrap() == nil {
			return nil
		}
		pub = w.Unwrap()
	}
	return nil
}

// reportDecoratedTwice reports, once per Metrics, a publisher decorated
// twice: on logger, else on the logger of the first decoration, which is
// the router's when the Plugin made it.
func (m *Metrics) reportDecoratedTwice(logger watermill.LoggerAdapter, first *publisher) {
	if logger == nil {
		logger = first.logger
	}
	if m.misuse.decoratedTwice.CompareAndSwap(false, true) {
		orStderr(logger).Error(logDecoratedTwice, ErrInstrumentedTwice, nil)
	}
}

// orStderr is logger, or, where none is given, Watermill's standard
// logger: a misuse is a bug in the service, and must be seen.
func orStderr(logger watermill.LoggerAdapter) watermill.LoggerAdapter {
	if logger == nil {
		return watermill.NewStdLogger(false, false)
	}
	return logger
}
