package wmprom

import (
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// status is the outcome of processing one message: the status label of
// received_processed_messages_total.
type status uint8

const (
	statusAcked status = iota
	statusNacked
	statusRejected
	statusSkipped
	statusError
	statusCount
)

var statusNames = [statusCount]string{"acked", "nacked", "rejected", "skipped", "error"}

// outcome is the error Ack, Nack, Reject and Skip return, with its cause.
type outcome struct {
	status status
	cause  error
}

func (o *outcome) Error() string {
	verb := [statusCount]string{"ack", "nack", "reject", "skip", "error"}[o.status]
	if o.cause == nil {
		return "wmprom: " + verb
	}
	return "wmprom: " + verb + ": " + o.cause.Error()
}

func (o *outcome) Unwrap() error { return o.cause }

// Ack tells the middleware the message was handled although cause says
// something went wrong: it is counted as acked, cause is not counted as an
// exception, and the router acknowledges it. cause may be nil.
func Ack(cause error) error { return &outcome{status: statusAcked, cause: cause} }

// Nack asks for the message to be delivered again without counting an
// exception: it is counted as nacked and the router negatively
// acknowledges it. cause may be nil.
func Nack(cause error) error { return &outcome{status: statusNacked, cause: cause} }

// Reject drops the message for good: it is counted as rejected and the
// router acknowledges it, so the broker does not deliver it again (a
// PoisonQueue inside the middleware dead-letters it instead). cause may
// be nil.
func Reject(cause error) error { return &outcome{status: statusRejected, cause: cause} }

// Skip tells the middleware the message was deliberately not processed:
// it is counted as skipped and acknowledged. cause may be nil.
func Skip(cause error) error { return &outcome{status: statusSkipped, cause: cause} }

// verdict is what the middleware decided about one handled message.
type verdict struct {
	status    status
	exception error // counted in the exceptions family when not nil
	routerErr error // what the router is told: nil acks, an error nacks
	dropped   bool  // produced messages are not published
	ownAck    bool  // the handler acked or nacked the message itself
}

// decide turns what the handler returned, and what it did to the message,
// into a status. The handler's own Ack or Nack wins, as in FastStream.
func decide(msg *message.Message, err error, poisonedBefore bool) verdict {
	var v verdict
	if err == nil {
		v.status = statusAcked
		if !poisonedBefore && poisoned(msg) {
			// An inner PoisonQueue took the error and dead-lettered the message.
			v.status = statusRejected
		}
	} else if o := outcomeOf(err); o != nil {
		v.status = o.status
		if o.status == statusNacked {
			v.routerErr = err
		}
		v.dropped = o.status == statusRejected || o.status == statusSkipped
	} else {
		v.status, v.exception, v.routerErr = statusError, err, err
	}
	select {
	case <-msg.Acked():
		v.status, v.ownAck = statusAcked, true
		return v
	default:
	}
	select {
	case <-msg.Nacked():
		v.status, v.ownAck = statusNacked, true
	default:
	}
	return v
}

// outcomeOf finds an Ack, Nack, Reject or Skip in err's chain.
func outcomeOf(err error) *outcome {
	var o *outcome
	if errors.As(err, &o) {
		return o
	}
	return nil
}

// poisoned tells whether Watermill's PoisonQueue middleware has marked the
// message as sent to the poison topic.
func poisoned(msg *message.Message) bool {
	return msg.Metadata.Get(middleware.ReasonForPoisonedKey) != ""
}
