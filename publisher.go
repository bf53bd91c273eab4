package wmprom

import (
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// DecoratePublisher wraps pub so that every Publish records the three
// publish families: one duration observation per call, len(messages)
// published with status success or error, and one exception on error (a
// panic counts as "panic" and goes on to the caller). On a router's
// publisher it also decides the status of the message that produced the
// messages (see Middleware). Watermill's placeholder publisher of
// handlers without one, a nil publisher and a publisher m already
// decorates (ErrInstrumentedTwice) are returned as they are. The broker
// label comes from the publisher under any decorators (see detect.go).
func (m *Metrics) DecoratePublisher(pub message.Publisher) (message.Publisher, error) {
	return m.decoratePublisher(pub, m.cfg.logger)
}

// decoratePublisher is DecoratePublisher with the logger for misuse reports.
func (m *Metrics) decoratePublisher(pub message.Publisher, logger watermill.LoggerAdapter) (message.Publisher, error) {
	if pub == nil || isPlaceholderPublisher(pub) {
		return pub, nil
	}
	if first := m.decoratedBy(pub); first != nil {
		m.reportDecoratedTwice(logger, first) // wrapping again would count twice
		return pub, nil
	}
	p := &publisher{next: pub, metrics: m, broker: publisherBroker(pub), logger: logger}
	if m.cfg.broker != nil {
		p.broker = *m.cfg.broker
	}
	if !m.dynamic { // else the custom label values are not known before a message
		for _, topics := range [][]string{m.cfg.destinations, m.cfg.brokerDestinations[p.broker]} {
			for _, topic := range topics {
				m.publishSeries(p.broker, destinationLabel(topic), m.customStatic)
			}
		}
	}
	return p, nil
}

// decoratedBy returns the decorator of m inside pub, if m already counts
// its publishes, looking through wrappers with an Unwrap method.
func (m *Metrics) decoratedBy(pub message.Publisher) *publisher {
	for range maxDecorators {
		if p, ok := pub.(*publisher); ok && p.metrics == m {
			return p
		}
		inner, ok := unwrap(pub)
		if !ok {
			return nil
		}
		pub, _ = inner.(message.Publisher)
	}
	return nil
}

type publisher struct {
	next    message.Publisher
	metrics *Metrics
	broker  string
	last    atomic.Pointer[publishSeries] // the last publish's, as the next one's are likely the same
	logger  watermill.LoggerAdapter
}

// Publish publishes through the wrapped publisher and records the call.
// Its frame keeps one publication, beneath the whole wrapped publish.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	var c publication
	c.begin(p, topic, msgs)
	defer c.done()
	err := p.next.Publish(topic, msgs...)
	c.err, c.returned = err, true
	return err
}

// publication is one Publish call.
type publication struct {
	p        *publisher
	s        *publishSeries
	msgs     []*message.Message
	ex       prometheus.Labels
	start    time.Duration
	err      error
	returned bool // the wrapped publish returned rather than panicked
}

// begin finds the call's series and starts its clock.
func (c *publication) begin(p *publisher, topic string, msgs []*message.Message) {
	m := p.metrics
	c.p, c.msgs, c.s = p, msgs, p.seriesFor(topic, msgs)
	c.ex = m.exemplar(firstMessage(c.msgs))
	m.stampPublishTime(c.msgs)
	c.start = m.elapsed()
}

// done records the call, failed when it returned an error or panicked,
// and decides the statuses waiting on its messages. A panic goes on to
// the caller, as if wmprom were not here.
func (c *publication) done() {
	m, s := c.p.metrics, c.s
	observe(s.duration, (m.elapsed() - c.start).Seconds(), c.ex)
	panicked := !c.returned
	if !panicked && c.err == nil {
		add(s.succeeded, float64(len(c.msgs)), c.ex)
	} else {
		add(s.failed, float64(len(c.msgs)), c.ex)
		exception := exceptionPanic
		if !panicked {
			exception = m.publishExceptionTypes.of(c.err)
		}
		add(s.exceptions.WithLabelValues(exception), 1, c.ex)
	}
	m.published(c.msgs, c.err, panicked)
}

// seriesFor finds the series of a publish to topic, a batch's by its first message.
func (p *publisher) seriesFor(topic string, msgs []*message.Message) *publishSeries {
	m := p.metrics
	if m.dynamic {
		return m.publishSeries(p.broker, destinationLabel(topic), customValues(m.cfg.custom, firstMessage(msgs)))
	}
	// A topic equal to the last destination label is a valid label value
	// already: it need not be checked again.
	if s := p.last.Load(); s != nil && (s.destination == topic || s.destination == destinationLabel(topic)) {
		return s
	}
	s := m.publishSeries(p.broker, destinationLabel(topic), m.customStatic)
	p.last.Store(s)
	return s
}

// Close closes the wrapped publisher.
func (p *publisher) Close() error { return p.next.Close() }

// Unwrap returns the wrapped publisher.
func (p *publisher) Unwrap() message.Publisher { return p.next }

func firstMessage(msgs []*message.Message) *message.Message {
	if len(msgs) == 0 {
		return nil
	}
	return msgs[0]
}
