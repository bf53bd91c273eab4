package wmprom

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics records FastStream's nine metric families for Watermill
// handlers and publishers. Create it once with New and share it: it is
// safe for concurrent use, and every router, handler and publisher it
// instruments writes to the same families.
type Metrics struct {
	cfg      *config
	families *families
	appName  string

	// customStatic is the joined custom label values when none depends
	// on the message: the cache key part that never changes.
	customStatic string
	dynamic      bool

	receiving  sync.Map // receiveKey -> *receiveSeries
	publishing sync.Map // publishKey -> *publishSeries

	processExceptionTypes *exceptionTypes
	publishExceptionTypes *exceptionTypes

	// undecided holds the statuses of messages whose produced messages
	// the router has yet to publish (produced.go).
	undecided undecided

	misuse misuseReports // misuse.go
}

// New creates the nine families, registers them with reg and returns the
// Metrics that records them. Families already registered by another
// Metrics with the same prefix and labels are shared, so two routers or
// two app names can use one registry. Invalid options give an error
// wrapping ErrInvalidConfig.
func New(reg prometheus.Registerer, opts ...Option) (*Metrics, error) {
	if reg == nil {
		return nil, fmt.Errorf("%w: registry is nil", ErrInvalidConfig)
	}
	cfg := newConfig(opts)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	fam := newFamilies(cfg)
	if err := fam.register(reg); err != nil {
		return nil, err
	}
	m := &Metrics{
		cfg:                   cfg,
		families:              fam,
		appName:               cfg.appNameValue(),
		dynamic:               hasDynamic(cfg.custom),
		processExceptionTypes: newExceptionTypes(cfg.errorType, cfg.maxExceptionTypes),
		publishExceptionTypes: newExceptionTypes(cfg.errorType, cfg.maxExceptionTypes),
	}
	if !m.dynamic {
		m.customStatic = customValues(cfg.custom, nil)
	}
	if err := reg.Register(sweeper{m}); err != nil {
		return nil, fmt.Errorf("wmprom: cannot register the status sweeper: %w", err)
	}
	return m, nil
}

// customKey returns the custom label values of msg as one string.
func (m *Metrics) customKey(msg *message.Message) string {
	if !m.dynamic {
		return m.customStatic
	}
	return customValues(m.cfg.custom, msg)
}

// lastReceive is one handler middleware's memory of its series: while
// the router's names for the handler's topic and subscriber stay the same,
// so does the series.
type lastReceive struct {
	subscriber, handler string
	series              *receiveSeries
}

// receiveSeriesFor finds the series of the handler msg was delivered to.
// With last, the common case is two context look-ups and two string
// comparisons.
func (m *Metrics) receiveSeriesFor(msg *message.Message, last *atomic.Pointer[lastReceive]) *receiveSeries {
	ctx := msg.Context()
	handler := m.handlerOf(ctx)
	subscriber := message.SubscriberNameFromCtx(ctx)
	if m.dynamic {
		return m.receiveSeries(m.brokerLabel(brokerFromTypeName(subscriber)), handler, m.customKey(msg))
	}
	if l := last.Load(); l != nil && l.handler == handler && l.subscriber == subscriber {
		return l.series
	}
	s := m.receiveSeries(m.brokerLabel(brokerFromTypeName(subscriber)), handler, m.customStatic)
	last.Store(&lastReceive{subscriber: subscriber, handler: handler, series: s})
	return s
}

// receiveSeries returns the series of one label set, creating it once.
func (m *Metrics) receiveSeries(broker, handler, custom string) *receiveSeries {
	key := receiveKey{broker: broker, handler: handler, custom: custom}
	return loadOrCreate(&m.receiving, key, func() *receiveSeries {
		return m.families.newReceiveSeries(key, m.appName, splitCustomValues(custom, len(m.cfg.custom)))
	})
}

// publishSeriesFor finds the series of one destination of a publisher
// whose broker label is broker. A batch is labelled by its first message.
func (m *Metrics) publishSeriesFor(broker, topic string, msgs []*message.Message, last *atomic.Pointer[publishSeries]) *publishSeries {
	destination := destinationLabel(topic)
	if m.dynamic {
		return m.publishSeries(broker, destination, customValues(m.cfg.custom, firstMessage(msgs)))
	}
	if s := last.Load(); s != nil && s.key.destination == destination {
		return s
	}
	s := m.publishSeries(broker, destination, m.customStatic)
	last.Store(s)
	return s
}

// publishSeries returns the series of one label set, creating it once.
func (m *Metrics) publishSeries(broker, destination, custom string) *publishSeries {
	key := publishKey{broker: broker, destination: destination, custom: custom}
	return loadOrCreate(&m.publishing, key, func() *publishSeries {
		return m.families.newPublishSeries(key, m.appName, splitCustomValues(custom, len(m.cfg.custom)))
	})
}

// loadOrCreate returns what cache holds under key, creating it once.
// Two goroutines may both create on a first miss; one result wins, and
// the other's children are the same ones (client_golang's vectors hand
// out one child per label set).
func loadOrCreate[V any](cache *sync.Map, key any, create func() V) V {
	if v, ok := cache.Load(key); ok {
		return v.(V)
	}
	v, _ := cache.LoadOrStore(key, create())
	return v.(V)
}

// brokerLabel is the detected broker, unless WithBroker says otherwise.
func (m *Metrics) brokerLabel(detected string) string {
	if m.cfg.broker != nil {
		return *m.cfg.broker
	}
	return detected
}

func firstMessage(msgs []*message.Message) *message.Message {
	if len(msgs) == 0 {
		return nil
	}
	return msgs[0]
}
