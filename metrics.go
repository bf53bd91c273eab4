package wmprom

import (
	"errors"
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

	// decoratesPublishers is set once DecoratePublisher has wrapped a
	// publisher: only then can the middleware leave the status of a
	// message with produced messages to the publish that follows.
	decoratesPublishers atomic.Bool
	// pending counts produced messages' outcomes not yet resolved by a
	// publish; while it is zero, publishes skip looking for them.
	pending atomic.Int64
}

// New creates the nine families, registers them with reg and returns the
// Metrics that records them. Families already registered by another
// Metrics with the same prefix and labels are shared, so two routers or
// two app names can use one registry. Invalid options give an error
// wrapping ErrInvalidConfig.
func New(reg prometheus.Registerer, opts ...Option) (*Metrics, error) {
	if reg == nil {
		return nil, errors.Join(ErrInvalidConfig, errors.New("wmprom: registry is nil"))
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
	return m, nil
}

// customKey returns the custom label values of msg as one string.
func (m *Metrics) customKey(msg *message.Message) string {
	if !m.dynamic {
		return m.customStatic
	}
	return customValues(m.cfg.custom, msg)
}

// receiveSeriesFor finds the series of the handler msg was delivered to.
// last caches the previous answer for one handler's middleware, so the
// common case is two context look-ups and two string comparisons.
func (m *Metrics) receiveSeriesFor(msg *message.Message, last *atomic.Pointer[receiveSeries]) *receiveSeries {
	ctx := msg.Context()
	handler := handlerLabel(ctx)
	subscriber := message.SubscriberNameFromCtx(ctx)
	if !m.dynamic {
		if s := last.Load(); s != nil && s.key.handler == handler && s.key.subscriber == subscriber {
			return s
		}
	}
	key := receiveKey{subscriber: subscriber, handler: handler, custom: m.customKey(msg)}
	if s, ok := m.receiving.Load(key); ok {
		last.Store(s.(*receiveSeries))
		return s.(*receiveSeries)
	}
	broker := brokerFromTypeName(subscriber)
	if m.cfg.broker != nil {
		broker = *m.cfg.broker
	}
	s := m.families.newReceiveSeries(key, m.appName, broker, splitCustomValues(key.custom, len(m.cfg.custom)))
	actual, _ := m.receiving.LoadOrStore(key, s)
	last.Store(actual.(*receiveSeries))
	return actual.(*receiveSeries)
}

// publishSeriesFor finds the series of one destination of a publisher
// whose broker label is broker. A batch is labelled by its first message.
func (m *Metrics) publishSeriesFor(broker, topic string, msgs []*message.Message, last *atomic.Pointer[publishSeries]) *publishSeries {
	destination := destinationLabel(topic)
	if !m.dynamic {
		if s := last.Load(); s != nil && s.key.destination == destination {
			return s
		}
	}
	custom := m.customStatic
	if m.dynamic {
		custom = customValues(m.cfg.custom, firstMessage(msgs))
	}
	key := publishKey{broker: broker, destination: destination, custom: custom}
	if s, ok := m.publishing.Load(key); ok {
		last.Store(s.(*publishSeries))
		return s.(*publishSeries)
	}
	s := m.families.newPublishSeries(key, m.appName, splitCustomValues(custom, len(m.cfg.custom)))
	actual, _ := m.publishing.LoadOrStore(key, s)
	last.Store(actual.(*publishSeries))
	return actual.(*publishSeries)
}

func firstMessage(msgs []*message.Message) *message.Message {
	if len(msgs) == 0 {
		return nil
	}
	return msgs[0]
}
