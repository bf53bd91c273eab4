package wmprom

import (
	"context"
	"reflect"
	"unsafe"

	"github.com/ThreeDotsLabs/watermill/message"
)

// HandlerLabel chooses what the handler label of the six receive families
// names. Pass it to WithHandlerLabel.
type HandlerLabel uint8

const (
	// HandlerTopic labels a handler with the topic it subscribes to, as
	// FastStream labels a subscriber with its queue or subject. Handlers
	// that subscribe to the same topic share their series. The default.
	HandlerTopic HandlerLabel = iota
	// HandlerName labels a handler with the name it was given in
	// router.AddHandler (or AddNoPublisherHandler), so handlers that
	// subscribe to the same topic (fan-out) get series of their own.
	// Outside a router handler, the topic is used as with HandlerTopic.
	HandlerName
)

// WithHandlerLabel chooses whether the handler label names the subscribed
// topic (HandlerTopic, the default) or the router's handler name
// (HandlerName). Either way the Plugin creates every handler's series at
// zero when the router subscribes it, as long as the subscriber
// decorators added before the Plugin keep what they wrap in a field
// (otherwise neither the broker nor the name is known before the first
// message). Handler names are made label values as topics are: name
// handlers after what they do, not after data.
func WithHandlerLabel(l HandlerLabel) Option {
	return func(c *config) { c.handlerLabel = l }
}

func (l HandlerLabel) valid() bool { return l <= HandlerName }

// handlerOf is the handler label, before it is made a valid label value,
// of a message whose router context is ctx.
func (m *Metrics) handlerOf(ctx context.Context) string {
	if m.cfg.handlerLabel == HandlerName {
		if name := message.HandlerNameFromCtx(ctx); name != "" {
			return name
		}
	}
	if topic := message.SubscribeTopicFromCtx(ctx); topic != "" {
		return topic
	}
	return message.HandlerNameFromCtx(ctx)
}

// handlerAtSubscribe is the handler label the middleware will give the
// messages of sub, when it is known before the first message, else "".
// The topic comes with Subscribe; the handler name does not, as the router
// subscribes with its own context: it is read from the router's context
// decorator, which wraps every handler's subscriber.
func (s *subscriber) handlerAtSubscribe(topic string) string {
	if s.metrics.cfg.handlerLabel == HandlerTopic {
		return topic
	}
	if ctx, ok := handlerContextOf(s.next); ok {
		return s.metrics.handlerOf(ctx)
	}
	return ""
}

var transformType = reflect.TypeOf((func(*message.Message))(nil))

// handlerContextOf returns the context the router gives every message of the
// handler whose subscriber is sub, by running the router's context
// decorator on an empty message. That decorator
// (message.MessageTransformSubscriberDecorator, applied by the router
// before any other, so the innermost of its type) keeps its function in
// an unexported field: it is read with reflect and unsafe, and only if it
// has the expected type. ok is false when the decorator is not found, for
// instance behind a decorator that does not keep what it wraps in a
// field; the series then appear with the first message.
func handlerContextOf(sub message.Subscriber) (ctx context.Context, ok bool) {
	chain := decoratorChain(reflect.ValueOf(sub), subscriberType, unwrapSubscriber)
	for i := len(chain) - 1; i >= 0; i-- {
		if isRouterContextDecorator(chain[i].Type()) {
			return probe(transformOf(chain[i]))
		}
	}
	return nil, false
}

// transformOf reads the function of a router context decorator.
func transformOf(v reflect.Value) func(*message.Message) {
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil
	}
	f := v.Elem().FieldByName("transform")
	if !f.IsValid() || f.Type() != transformType || !f.CanAddr() {
		return nil
	}
	return *(*func(*message.Message))(unsafe.Pointer(f.UnsafeAddr()))
}

// probe runs the router's transform on an empty message and returns the
// context it gave it. The router's transform only sets context values; a
// panic from another one is taken as "not known".
func probe(transform func(*message.Message)) (ctx context.Context, ok bool) {
	if transform == nil {
		return nil, false
	}
	defer func() {
		if recover() != nil {
			ctx, ok = nil, false
		}
	}()
	msg := message.NewMessage("", nil)
	transform(msg)
	return msg.Context(), true
}
