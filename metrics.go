package wmprom

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

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

	receiving  *seriesCache[receiveKey, *receiveSeries]
	publishing *seriesCache[publishKey, *publishSeries]

	// subscriberBrokers maps the router's name of a handler's subscriber
	// and its topic to the broker the Plugin found inside the subscriber,
	// so that the middleware, which only sees the names, labels messages
	// as the Plugin labelled the series it created at zero.
	subscriberBrokers sync.Map // subscription -> string

	processExceptionTypes *exceptionTypes
	publishExceptionTypes *exceptionTypes

	// undecided holds the statuses of messages whose produced messages
	// the router has yet to publish (produced.go).
	undecided undecided

	misuse misuseReports // misuse.go

	// epoch is when New ran: durations are read as the time elapsed
	// since it, from the monotonic clock alone (see elapsed).
	epoch time.Time
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
		epoch:                 cfg.now(),
	}
	if !m.dynamic {
		m.customStatic = customValues(cfg.custom, nil)
	}
	overflowCustom := customOverflow(cfg.custom)
	m.receiving = newSeriesCache(cfg.maxLabelSets,
		func(k receiveKey) receiveKey {
			return receiveKey{broker: k.broker, handler: overflowValue, custom: overflowCustom}
		},
		func(k receiveKey) *receiveSeries {
			return fam.newReceiveSeries(k, m.appName, splitCustomValues(k.custom, len(cfg.custom)))
		})
	m.publishing = newSeriesCache(cfg.maxLabelSets,
		func(k publishKey) publishKey {
			return publishKey{broker: k.broker, destination: overflowValue, custom: overflowCustom}
		},
		func(k publishKey) *publishSeries {
			return fam.newPublishSeries(k, m.appName, splitCustomValues(k.custom, len(cfg.custom)))
		})
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

// handlerChain is what one handler middleware keeps between messages:
// one object on one cache line (padded as the series are, series.go),
// read by every message along with the closure that holds it. With
// thousands of handlers busy, each object a message reads is a cache
// miss of its own.
type handlerChain struct {
	handlerChainFields
	_ [(cacheLine - unsafe.Sizeof(handlerChainFields{})%cacheLine) % cacheLine]byte
}

// handlerChainFields are a handlerChain but for the padding.
type handlerChainFields struct {
	// nested is set once the middleware finds itself inside another of
	// the same Metrics (misuse.go): it then passes messages through.
	nested atomic.Bool

	// oneHandler says the chain serves one handler: the Plugin's, and a
	// Middleware's that the router built (routerbuilt.go), each built for
	// one handler when the router starts it. Once filled, it gives every
	// message the first one's series without reading the message's
	// context (callgrind, BenchmarkRouterGoChannel: two context walks, 370
	// instructions a message). A Middleware built elsewhere cannot know
	// which handlers it serves, and checks.
	oneHandler bool

	// noPublisher, written with series, says the first message's handler
	// was added without a publisher (see noPublisher): read from its
	// context once, not from every message's with produced messages (callgrind,
	// BenchmarkRouterGoChannel: 296 instructions a message). Handlers
	// sharing one wrapped function, topic and subscriber but not a
	// publisher would share it too; for the one without a publisher, a
	// message with produced messages then counts as error with exception
	// "unknown" (the backstop's) rather than
	// message.ErrOutputInNoPublisherHandler.
	noPublisher bool

	// The series of the first message, with the router's names for its
	// handler's topic and subscriber: a router builds one middleware per
	// handler, so every later message has the same names and the same
	// series. filled says the three are written; they never change
	// after. A handler function wrapped by Middleware once and given to
	// several handlers keeps the first handler's, and looks the others'
	// up.
	filled              atomic.Uint32 // chainEmpty, chainFilling, chainFilled
	subscriber, handler string
	series              *receiveSeries
}

const (
	chainEmpty uint32 = iota
	chainFilling
	chainFilled
)

// receiveSeriesFor finds the series of the handler msg was delivered to,
// and the chain's cache when it holds msg's handler (nil when it does
// not). With c filled, a chain built for one handler reads nothing of
// msg; any other makes two context look-ups and two string comparisons:
// the raw names are compared, and made label values only when they
// differ.
func (m *Metrics) receiveSeriesFor(msg *message.Message, c *handlerChain) (*receiveSeries, *handlerChain) {
	if c.oneHandler && !m.dynamic && c.filled.Load() == chainFilled {
		return c.series, c
	}
	ctx := msg.Context()
	handler := m.handlerOf(ctx)
	subscriber := message.SubscriberNameFromCtx(ctx)
	if m.dynamic {
		return m.receiveSeries(m.receiveBroker(subscriber, message.SubscribeTopicFromCtx(ctx)), handler, m.customKey(msg)), nil
	}
	if c.filled.Load() == chainFilled && c.handler == handler && c.subscriber == subscriber {
		return c.series, c
	}
	// The topic only picks the broker of a series not cached yet: one
	// context look-up less for every other message.
	s := m.receiveSeries(m.receiveBroker(subscriber, message.SubscribeTopicFromCtx(ctx)), handler, m.customStatic)
	if c.filled.CompareAndSwap(chainEmpty, chainFilling) {
		c.subscriber, c.handler, c.series, c.noPublisher = subscriber, handler, s, noPublisher(msg)
		c.filled.Store(chainFilled)
	}
	return s, nil
}

// receiveSeries returns the series of one label set, creating it once.
// handler is raw user data; broker and custom are label values already.
func (m *Metrics) receiveSeries(broker, handler, custom string) *receiveSeries {
	return m.receiving.get(receiveKey{broker: broker, handler: labelValue(handler), custom: custom})
}

// publishSeriesFor finds the series of one destination of a publisher
// whose broker label is broker. A batch is labelled by its first message.
func (m *Metrics) publishSeriesFor(broker, topic string, msgs []*message.Message, last *atomic.Pointer[publishSeries]) *publishSeries {
	if m.dynamic {
		return m.publishSeries(broker, destinationLabel(topic), customValues(m.cfg.custom, firstMessage(msgs)))
	}
	// A topic equal to the last series' destination label is a valid
	// label value already: its bytes need not be read again to check it.
	s := last.Load()
	if s != nil && s.destination == topic {
		return s
	}
	destination := destinationLabel(topic)
	if s != nil && s.destination == destination {
		return s
	}
	s = m.publishSeries(broker, destination, m.customStatic)
	last.Store(s)
	return s
}

// publishSeries returns the series of one label set, creating it once.
// All three are label values already (destinationLabel for a topic).
func (m *Metrics) publishSeries(broker, destination, custom string) *publishSeries {
	return m.publishing.get(publishKey{broker: broker, destination: destination, custom: custom})
}

// brokerLabel is the detected broker, unless WithBroker says otherwise.
func (m *Metrics) brokerLabel(detected string) string {
	if m.cfg.broker != nil {
		return *m.cfg.broker
	}
	return detected
}

// subscription is a handler's subscriber, by the router's name for it,
// and the topic it subscribed to: what a message's context tells of
// where it came from.
type subscription struct{ subscriber, topic string }

// receiveBroker is the broker label of messages from the subscriber the
// router names subscriber, subscribed to topic: what the Plugin found
// inside it, else what its name says.
func (m *Metrics) receiveBroker(subscriber, topic string) string {
	if m.cfg.broker != nil {
		return *m.cfg.broker
	}
	if b, ok := m.subscriberBrokers.Load(subscription{subscriber, topic}); ok {
		return b.(string)
	}
	return brokerFromTypeName(subscriber)
}

func firstMessage(msgs []*message.Message) *message.Message {
	if len(msgs) == 0 {
		return nil
	}
	return msgs[0]
}

// elapsed is the time since New on the monotonic clock. Durations are
// differences of two readings: time.Now would read the wall clock as well,
// which a duration does not need and which costs about as much again.
func (m *Metrics) elapsed() time.Duration { return m.cfg.since(m.epoch) }
