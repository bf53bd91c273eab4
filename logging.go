package wmprom

import (
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// The router logs an error a handler returns, Nack's included, and acks
// silently what it is told is fine. Reject, Skip and Ack tell it nil, so
// without these entries their causes would be seen by nobody.

// WithLogger sets the logger that receives what the router does not log:
// the causes given to Reject, Skip and Ack, and the misuse reports (see
// ErrInstrumentedTwice). Without it the Plugin uses its router's logger,
// while Middleware and DecoratePublisher used on their own log no causes
// and report misuse on standard error.
func WithLogger(l watermill.LoggerAdapter) Option {
	return func(c *config) { c.logger = l }
}

// Log messages, one per outcome whose cause the router is not told.
const (
	logRejected = "Handler rejected the message: acknowledged, not delivered again"
	logSkipped  = "Handler skipped the message"
	logAcked    = "Handler acknowledged the message despite an error"
)

// logOutcome logs the outcome a handler returned, when the router would
// not. A Reject is an Error entry, as the message is then lost unless a
// PoisonQueue keeps it: as loud as the router's own entry for a failed
// handler (Watermill's loggers have no warning level). A Skip, or an Ack
// with a cause, is an Info entry: the handler decided, nothing is lost.
// What the handler returned reaches the router unchanged, so the router
// acks as before.
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
