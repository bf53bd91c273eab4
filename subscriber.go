package wmprom

import (
	"context"
	"fmt"
	"reflect"

	"github.com/ThreeDotsLabs/watermill/message"
)

// A counter series born at 1 has no earlier sample, so increase() and
// rate() take that 1 as their baseline and a handler's first message
// never shows. The Plugin therefore creates each handler's series at zero
// when the router subscribes it, before any message: that is the first
// moment its topic is known, as the router does not expose handlers'
// topics.

// decorateSubscriber is the Plugin's subscriber decorator.
func (m *Metrics) decorateSubscriber(sub message.Subscriber) (message.Subscriber, error) {
	if sub == nil {
		return nil, nil
	}
	broker, known := subscriberBroker(sub)
	return &subscriber{next: sub, metrics: m, broker: m.brokerLabel(broker), known: known || m.cfg.broker != nil}, nil
}

type subscriber struct {
	next    message.Subscriber
	metrics *Metrics
	broker  string
	known   bool // the broker label is the one the middleware will compute
}

// Subscribe creates the handler's series at zero, then subscribes.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if handler := s.handlerAtSubscribe(topic); s.known && handler != "" && !s.metrics.dynamic {
		s.metrics.receiveSeries(s.broker, handler, s.metrics.customStatic)
	}
	return s.next.Subscribe(ctx, topic)
}

// Close closes the wrapped subscriber.
func (s *subscriber) Close() error { return s.next.Close() }

var (
	subscriberType = reflect.TypeFor[message.Subscriber]()
	stringerType   = reflect.TypeFor[fmt.Stringer]()
)

// subscriberBroker detects the broker of the subscriber inside the
// router's own decorators (Watermill wraps every handler's subscriber to
// put the handler's names into message contexts). known is false where
// the middleware would name the broker differently: the router names a
// subscriber that has a String method by that method.
func subscriberBroker(sub message.Subscriber) (broker string, known bool) {
	v := reflect.ValueOf(throughOurs(sub))
	for {
		t := v.Type()
		if t.Kind() == reflect.Pointer {
			if v.IsNil() {
				return unknown, false
			}
			v = v.Elem()
			t = v.Type()
		}
		if t.Kind() != reflect.Struct || t.PkgPath() != "github.com/ThreeDotsLabs/watermill/message" {
			break
		}
		inner, ok := innerSubscriber(v)
		if !ok {
			break
		}
		v = inner
	}
	if v.Type().Implements(stringerType) || reflect.PointerTo(v.Type()).Implements(stringerType) {
		return unknown, false
	}
	return brokerOfType(v.Type()), true
}

// innerSubscriber finds the Subscriber a decorator struct wraps.
func innerSubscriber(v reflect.Value) (reflect.Value, bool) {
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Type() == subscriberType && !f.IsNil() {
			return f.Elem(), true
		}
	}
	return reflect.Value{}, false
}
