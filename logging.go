package wmprom

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// The router logs an error a handler returns, Nack's included, and acks
// silently what it is told is fine. Reject, Skip and Ack tell it nil, so
// without these entries their causes would be seen by nobody.

// Log messages, one per outcome whose cause the router is not told.
const (
	logRejected = "Handler rejected the message: acknowledged, not delivered again"
	logSkipped  = "Handler skipped the message"
	logAcked    = "Handler acknowledged the message despite an error"
)

// logOutcome logs the outcome a handler returned, when the router would
// not: a Reject at error level, as the message is lost unless a
// PoisonQueue keeps it (Watermill's loggers have no warning level); a
// Skip, or an Ack with a cause, at info level.
func logOutcome(logger watermill.LoggerAdapter, msg *message.Message, err error) {
	o := outcomeOf(err)
	if o == nil {
		return // a plain error reaches the router, which logs it
	}
	fields := messageFields(msg)
	if o.cause != nil && o.status != statusRejected {
		fields["cause"] = o.cause.Error()
	}
	switch o.status {
	case statusRejected:
		logger.Error(logRejected, err, fields)
	case statusSkipped:
		logger.Info(logSkipped, fields)
	case statusAcked:
		if o.cause != nil {
			logger.Info(logAcked, fields)
		}
	}
}

// messageFields names a message the way the router's own entries do.
func messageFields(msg *message.Message) watermill.LogFields {
	fields := watermill.LogFields{"message_uuid": msg.UUID}
	if name := message.HandlerNameFromCtx(msg.Context()); name != "" {
		fields["handler_name"] = name
	}
	if topic := message.SubscribeTopicFromCtx(msg.Context()); topic != "" {
		fields["topic"] = topic
	}
	return fields
}

// ErrInstrumentedTwice is the error of the entry logged, once per Metrics
// and kind, when a message passes through two of its middlewares (the
// Plugin and Middleware on one router, either added twice), or
// DecoratePublisher gets a publisher it already decorates. The inner
// middleware passes the message through uncounted and the publisher is
// not wrapped again, so every message is still counted once.
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
// Metrics, which finds the same series and the message there already. A
// message is kept in the slot if free, else in the map, whose size lets
// the others skip its mutex while it is empty.
type nesting struct {
	slot     atomic.Pointer[message.Message]
	mu       sync.Mutex
	handling map[*message.Message]bool
	inMap    atomic.Int64
}

// enter records msg as handled; false means an enclosing middleware of
// the same Metrics, on this goroutine, handles it already.
func (n *nesting) enter(msg *message.Message) bool {
	if n.slot.Load() == msg {
		return false
	}
	if n.inMap.Load() > 0 {
		n.mu.Lock()
		inside := n.handling[msg]
		n.mu.Unlock()
		if inside {
			return false
		}
	}
	if n.slot.CompareAndSwap(nil, msg) {
		return true
	}
	n.mu.Lock()
	n.handling[msg] = true
	n.inMap.Add(1)
	n.mu.Unlock()
	return true
}

// leave forgets msg.
func (n *nesting) leave(msg *message.Message) {
	if n.slot.CompareAndSwap(msg, nil) {
		return
	}
	n.mu.Lock()
	delete(n.handling, msg)
	n.inMap.Add(-1)
	n.mu.Unlock()
}

// reportNested reports, once per Metrics, a message counted by an
// enclosing middleware of the same Metrics.
func (m *Metrics) reportNested(logger watermill.LoggerAdapter, msg *message.Message) {
	if m.misuse.nested.CompareAndSwap(false, true) {
		orStderr(logger).Error(logNestedMiddleware, ErrInstrumentedTwice, messageFields(msg))
	}
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

// orStderr is logger, or Watermill's standard logger: a misuse is a bug
// in the service, and must be seen.
func orStderr(logger watermill.LoggerAdapter) watermill.LoggerAdapter {
	if logger == nil {
		return watermill.NewStdLogger(false, false)
	}
	return logger
}
