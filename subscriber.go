package wmprom

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
)

// A counter series born at 1 has no earlier sample, so increase() and
// rate() take that 1 as their baseline and a handler's first message
// never shows. The Plugin therefore creates each handler's series at zero
// when the router subscribes it, before any message: that is the first
// moment its topic is known, as the router does not expose handlers'
// topics.

// decorateSubscriber is the Plugin's subscriber decorator. It tells the
// middleware which broker is inside the subscriber the router names, so
// that both label a handler's messages alike, and creates the handler's
// series at zero when it subscribes.
func (m *Metrics) decorateSubscriber(sub message.Subscriber) (message.Subscriber, error) {
	if sub == nil {
		return nil, nil
	}
	return &subscriber{next: sub, metrics: m, found: detectSubscriber(sub)}, nil
}

type subscriber struct {
	next    message.Subscriber
	metrics *Metrics
	found   detectedSubscriber
}

// Subscribe tells the middleware the broker of this subscription and
// creates the handler's series at zero, then subscribes. Both happen
// before the first message, which the router reads from the channel
// Subscribe returns.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if broker, ok := s.broker(topic); ok && !s.metrics.dynamic {
		if handler := s.handlerAtSubscribe(topic); handler != "" {
			s.metrics.receiveSeries(broker, handler, s.metrics.customStatic)
		}
	}
	return s.next.Subscribe(ctx, topic)
}

// broker returns the broker label the middleware will give messages of
// this subscription, and whether it is known in advance: not for a
// subscriber the router names by a String method.
func (s *subscriber) broker(topic string) (string, bool) {
	m := s.metrics
	if m.cfg.broker != nil {
		return *m.cfg.broker, true
	}
	if s.found.named == "" {
		return "", false
	}
	key := subscription{s.found.named, topic}
	if prev, loaded := m.subscriberBrokers.LoadOrStore(key, s.found.broker); loaded && prev != s.found.broker {
		// Subscribers of one type name, on one topic, wrap different
		// brokers: their messages cannot be told apart, so none of them
		// gets series in advance.
		return "", false
	}
	return s.found.broker, true
}

// Close closes the wrapped subscriber.
func (s *subscriber) Close() error { return s.next.Close() }

var stringerType = reflect.TypeFor[fmt.Stringer]()

// detectedSubscriber is what decorateSubscriber finds in a subscriber.
type detectedSubscriber struct {
	// named is the router's name of the subscriber the handler was added
	// with (the type name, as watermill's internal.StructName gives it),
	// or "" when it cannot be known: outside a router, or for a
	// subscriber named by a String method, which reflection may not call
	// on the value it reaches.
	named  string
	broker string // the broker at the bottom of every decorator
}

// detectSubscriber looks through the decorators the router and the
// application put around a handler's subscriber. The router wraps the
// subscriber given to AddHandler in a context decorator of Watermill's
// message package, first, so the innermost such decorator holds the
// subscriber the router named; the broker is what lies under every
// decorator, the application's own ones included.
func detectSubscriber(sub message.Subscriber) detectedSubscriber {
	chain := decoratorChain(reflect.ValueOf(sub), subscriberType, unwrapSubscriber)
	d := detectedSubscriber{broker: unknown}
	if len(chain) == 0 {
		return d
	}
	d.broker = brokerOfType(chain[len(chain)-1].Type())
	for i := len(chain) - 2; i >= 0; i-- {
		if isRouterContextDecorator(chain[i].Type()) {
			named := chain[i+1].Type()
			if !named.Implements(stringerType) && !reflect.PointerTo(named).Implements(stringerType) {
				d.named = strings.TrimLeft(named.String(), "*")
			}
			break
		}
	}
	return d
}

// isRouterContextDecorator tells whether t is the decorator the router
// puts around each handler's subscriber to add the handler's names to
// message contexts.
func isRouterContextDecorator(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath() == watermillMessagePackage && t.Name() == "messageTransformSubscriberDecorator"
}
