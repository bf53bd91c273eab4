package wmprom

import (
	"context"
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Plugin instruments a whole router, with router.AddPlugin(m.Plugin): it
// adds Middleware as a router-level middleware (the innermost, as plugins
// run at Router.Run), DecoratePublisher as a publisher decorator, and
// creates each handler's series at zero when the router subscribes it.
// The causes of Reject, Skip and Ack, and misuse reports, go to the
// router's logger unless WithLogger says otherwise. Add either the Plugin
// or Middleware to a router, not both (see ErrInstrumentedTwice).
func (m *Metrics) Plugin(r *message.Router) error {
	if r == nil {
		return errors.New("wmprom: Plugin needs a router, got nil")
	}
	logger := m.cfg.logger
	if logger == nil {
		logger = r.Logger()
	}
	r.AddMiddleware(func(h message.HandlerFunc) message.HandlerFunc { return m.instrument(h, logger) })
	r.AddPublisherDecorators(func(pub message.Publisher) (message.Publisher, error) { return m.decoratePublisher(pub, logger) })
	r.AddSubscriberDecorators(m.decorateSubscriber)
	return nil
}

// A counter series born at 1 has no earlier sample, so increase() and
// rate() miss a handler's first message. The Plugin's subscriber
// decorator therefore creates each handler's series at zero when the
// router subscribes it, the first moment its topic is known. The router
// names no handler before a message, so with HandlerName the series
// appear with the first message.

// decorateSubscriber is the Plugin's subscriber decorator: it tells the
// middleware the broker inside the subscriber the router names.
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

// Subscribe creates the handler's series at zero, then subscribes: before
// the first message, which the router reads from the returned channel.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	m := s.metrics
	if broker, ok := s.broker(topic); ok && !m.dynamic && m.cfg.handlerLabel == HandlerTopic && topic != "" {
		m.receiveSeries(broker, topic, m.customStatic)
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

func (s *subscriber) Close() error { return s.next.Close() }
