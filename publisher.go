package wmprom

import (
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// DecoratePublisher wraps pub so that every Publish records the three
// publish families: one duration observation per call, len(messages)
// published with status success or error, and one exception on error.
//
// A panic in pub counts as a failed publish with exception type "panic"
// and goes on to the caller. On a router's publisher, the publish also
// decides the status of the message whose handler returned the messages
// (see Middleware).
//
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
//
// A publisher m already decorates (directly or behind decorators with an
// Unwrap() message.Publisher method) is returned as it is, so that its
// messages count once, and ErrInstrumentedTwice is reported once.
func (m *Metrics) DecoratePublisher(pub message.Publisher) (message.Publisher, error) {
	return m.decoratePublisher(pub, m.cfg.logger)
}

// decoratePublisher is DecoratePublisher with the logger for misuse reports.
func (m *Metrics) decoratePublisher(pub message.Publisher, logger watermill.LoggerAdapter) (message.Publisher, error) {
	if pub == nil || placeholderPublisher(pub) {
		return pub, nil
	}
	if first := m.decoratedBy(pub); first != nil {
		m.reportDecoratedTwice(logger, first) // wrapping again would count twice
		return pub, nil
	}
	p := &publisher{next: pub, metrics: m, broker: m.brokerLabel(publisherBroker(pub)), logger: logger}
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
	logger  watermill.LoggerAdapter // misuse.go
}

// Publish publishes through the wrapped publisher and records the call.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	m := p.metrics
	s := m.publishSeriesFor(p.broker, topic, msgs, &p.last)
	shape := m.families.px.shape
	s.warm(shape)
	ex := m.exemplar(firstMessage(msgs))
	m.stampPublishTime(msgs)
	start := m.elapsed()
	returned := false
	defer func() {
		if !returned {
			// A panicking publisher failed to publish: count it so, and
			// let the panic go on to the caller, as if wmprom were not here.
			s.observeDuration(shape, (m.elapsed() - start).Seconds(), ex)
			s.published(shape, len(msgs), true, ex)
			add(s.exceptions.WithLabelValues(exceptionPanic), 1, ex)
			m.published(msgs, nil, true)
		}
	}()
	err := p.next.Publish(topic, msgs...)
	returned = true
	s.observeDuration(shape, (m.elapsed() - start).Seconds(), ex)
	if err != nil {
		s.published(shape, len(msgs), true, ex)
		add(s.exceptions.WithLabelValues(m.publishExceptionTypes.of(err)), 1, ex)
	} else {
		s.published(shape, len(msgs), false, ex)
	}
	m.published(msgs, err, false)
	return err
}

// Close closes the wrapped publisher.
func (p *publisher) Close() error { return p.next.Close() }

// Unwrap returns the wrapped publisher.
func (p *publisher) Unwrap() message.Publisher { return p.next }
