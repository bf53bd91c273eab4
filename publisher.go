package wmprom

import (
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
)

// DecoratePublisher wraps pub so that every Publish records the three
// publish families: one duration observation per call, len(messages)
// published with status success or error, and one exception on error.
// It is a message.PublisherDecorator, for
// router.AddPublisherDecorators, and works as well on a publisher the
// application uses directly.
//
// Watermill's router gives handlers added with AddConsumerHandler a
// placeholder publisher that fails every publish and is never used; it is
// returned as it is, without series, as is a nil publisher. The broker
// label comes from the package of the publisher under any decorators:
// one that has an Unwrap() message.Publisher method, or keeps what it
// wraps in a field of type message.Publisher, is looked through.
func (m *Metrics) DecoratePublisher(pub message.Publisher) (message.Publisher, error) {
	if pub == nil || placeholderPublisher(pub) {
		return pub, nil
	}
	if p, ok := pub.(*publisher); ok && p.metrics == m {
		return pub, nil // already counted by m; wrapping again would count twice
	}
	m.decoratesPublishers.Store(true)
	p := &publisher{next: pub, metrics: m, broker: m.brokerLabel(publisherBroker(pub))}
	m.declareDestinations(p.broker)
	return p, nil
}

// declareDestinations creates at zero the series of the destinations
// declared for publishers of broker.
func (m *Metrics) declareDestinations(broker string) {
	if m.dynamic {
		return // the custom label values are not known before a message
	}
	for _, topic := range m.cfg.destinations {
		m.publishSeries(broker, destinationLabel(topic), m.customStatic)
	}
	for _, topic := range m.cfg.brokerDestinations[broker] {
		m.publishSeries(broker, destinationLabel(topic), m.customStatic)
	}
}

type publisher struct {
	next    message.Publisher
	metrics *Metrics
	broker  string
	last    atomic.Pointer[publishSeries]
}

// Publish publishes through the wrapped publisher and records the call.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	m := p.metrics
	s := m.publishSeriesFor(p.broker, topic, msgs, &p.last)
	ex := m.exemplar(firstMessage(msgs))
	start := m.cfg.now()
	err := p.next.Publish(topic, msgs...)
	observe(s.duration, m.cfg.since(start).Seconds(), ex)
	if err != nil {
		add(s.failed, float64(len(msgs)), ex)
		add(s.exceptions.WithLabelValues(m.publishExceptionTypes.of(err)), 1, ex)
	} else {
		add(s.succeeded, float64(len(msgs)), ex)
	}
	m.settle(msgs, err)
	return err
}

// Close closes the wrapped publisher.
func (p *publisher) Close() error { return p.next.Close() }

// Unwrap returns the wrapped publisher.
func (p *publisher) Unwrap() message.Publisher { return p.next }
