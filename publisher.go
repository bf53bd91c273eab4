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
//
// The wrapped publish runs below this frame, and a broker client's publish
// goes deep (go-redis: about a dozen frames to the socket write): every
// byte this frame keeps is a byte further down the router goroutine's
// stack for all of them. With the recording's locals here (264 bytes),
// BenchmarkBrokerRedis ran 8-10% slower with wmprom's decorator alone, and
// as slow with a do-nothing decorator holding as many bytes, while the
// recording's own work is well under a microsecond. So this frame keeps
// only a publication, and the work is done in begin and end, whose frames
// exist only before and after the publish (as in the middleware, see
// instrument).
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	var c publication
	p.begin(&c, topic, msgs)
	defer c.done()
	err := p.next.Publish(topic, msgs...)
	c.end(err)
	return err
}

// publication is one Publish call: what recording it needs once the
// wrapped publish has returned or panicked.
type publication struct {
	m        *Metrics
	s        *publishSeries
	msgs     []*message.Message
	ex       prometheus.Labels
	start    time.Duration
	returned bool
}

// begin finds the call's series and starts its clock, in c.
//
//go:noinline
func (p *publisher) begin(c *publication, topic string, msgs []*message.Message) {
	m := p.metrics
	s := m.publishSeriesFor(p.broker, topic, msgs, &p.last)
	s.warm(m.families.px.shape)
	ex := m.exemplar(firstMessage(msgs))
	m.stampPublishTime(msgs)
	*c = publication{m: m, s: s, msgs: msgs, ex: ex, start: m.elapsed()}
}

// end records a publish that returned err.
//
//go:noinline
func (c *publication) end(err error) {
	c.returned = true
	c.record(err, false)
}

// done counts a panicking publish as a failed one, with exception type
// "panic", and lets the panic go on to the caller, as if wmprom were not
// here.
func (c *publication) done() {
	if !c.returned {
		c.record(nil, true)
	}
}

// record counts the publish, failed when it returned an error or
// panicked, and decides the statuses waiting on its messages.
func (c *publication) record(err error, panicked bool) {
	m, s, shape := c.m, c.s, c.m.families.px.shape
	s.observeDuration(shape, (m.elapsed() - c.start).Seconds(), c.ex)
	failed := panicked || err != nil
	s.published(shape, len(c.msgs), failed, c.ex)
	if failed {
		exception := exceptionPanic
		if !panicked {
			exception = m.publishExceptionTypes.of(err)
		}
		add(s.exceptions.WithLabelValues(exception), 1, c.ex)
	}
	m.published(c.msgs, err, panicked)
}

// Close closes the wrapped publisher.
func (p *publisher) Close() error { return p.next.Close() }

// Unwrap returns the wrapped publisher.
func (p *publisher) Unwrap() message.Publisher { return p.next }
