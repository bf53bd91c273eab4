package wmprom

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics records FastStream's nine metric families for Watermill
// handlers and publishers. Create it once with New and share it: it is
// safe for concurrent use.
type Metrics struct {
	cfg      *config
	families *families
	appName  string

	// customStatic is the joined custom label values unless dynamic.
	customStatic string
	dynamic      bool

	receiving  *seriesCache[receiveKey, *receiveSeries]
	publishing *seriesCache[publishKey, *publishSeries]

	// subscriberBrokers maps a subscription to the broker the Plugin
	// found inside its subscriber, for the middleware, which only sees
	// the names.
	subscriberBrokers sync.Map // subscription -> string

	processExceptionTypes *exceptionTypes
	publishExceptionTypes *exceptionTypes

	undecided undecided     // produced.go
	misuse    misuseReports // logging.go

	// epoch is when New ran: durations are differences of two readings
	// of the time since, from the monotonic clock alone.
	epoch time.Time
}

// families are the nine metric families of FastStream's
// PrometheusMiddleware, with the same names, types and labels, and the
// three message age families when WithMessageAge is on.
type families struct {
	received          *prometheus.CounterVec   // prefix_received_messages_total
	receivedSize      *prometheus.HistogramVec // prefix_received_messages_size_bytes
	inProcess         *prometheus.GaugeVec     // prefix_received_messages_in_process
	processed         *prometheus.CounterVec   // prefix_received_processed_messages_total
	processDuration   *prometheus.HistogramVec // prefix_received_processed_messages_duration_seconds
	processExceptions *prometheus.CounterVec   // prefix_received_processed_messages_exceptions_total
	published         *prometheus.CounterVec   // prefix_published_messages_total
	publishDuration   *prometheus.HistogramVec // prefix_published_messages_duration_seconds
	publishExceptions *prometheus.CounterVec   // prefix_published_messages_exceptions_total

	age        *prometheus.HistogramVec // prefix_received_messages_age_seconds; nil unless WithMessageAge(true)
	ageUnknown *prometheus.CounterVec   // prefix_received_messages_age_unknown_total
	ageClamped *prometheus.CounterVec   // prefix_received_messages_age_clamped_total

	customNames []string // WithLabel and WithLabelFunc names, after the built-in labels
}

func newFamilies(c *config) *families {
	var custom []string
	for _, l := range c.custom {
		custom = append(custom, l.name)
	}
	labels := func(builtin ...string) []string { return append(builtin, custom...) }
	receive := labels(labelAppName, labelBroker, labelHandler)
	publish := labels(labelAppName, labelBroker, labelDestination)
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: c.prefix + "_" + name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels []string) *prometheus.HistogramVec {
		opts := prometheus.HistogramOpts{Name: c.prefix + "_" + name, Help: help, Buckets: buckets}
		if n := c.native; n.form != 0 {
			opts.NativeHistogramBucketFactor = n.factor
			opts.NativeHistogramMaxBucketNumber = n.maxBuckets
			opts.NativeHistogramMinResetDuration = n.minReset
			if n.form == InsteadOfClassic {
				// With a factor above 1, no buckets means no classic
				// buckets, not client_golang's defaults.
				opts.Buckets = nil
			}
		}
		return prometheus.NewHistogramVec(opts, labels)
	}
	f := &families{
		customNames: custom,
		received:    counter("received_messages_total", "Messages received, counted before processing starts.", receive),
		receivedSize: histogram("received_messages_size_bytes", "Payload size of received messages, in bytes.",
			c.sizeBuckets, receive),
		inProcess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: c.prefix + "_received_messages_in_process", Help: "Messages being processed right now.",
		}, receive),
		processed: counter("received_processed_messages_total",
			"Messages processed, by status: acked, nacked, rejected, skipped or error.",
			labels(labelAppName, labelBroker, labelHandler, labelStatus)),
		processDuration: histogram("received_processed_messages_duration_seconds",
			"Time spent processing a message, whatever the outcome, in seconds.", c.durationBuckets, receive),
		processExceptions: counter("received_processed_messages_exceptions_total",
			"Errors and panics while processing messages, by exception type.",
			labels(labelAppName, labelBroker, labelHandler, labelExceptionType)),
		published: counter("published_messages_total", "Messages published, by status: success or error.",
			labels(labelAppName, labelBroker, labelDestination, labelStatus)),
		publishDuration: histogram("published_messages_duration_seconds",
			"Time spent publishing, whatever the outcome, in seconds.", c.durationBuckets, publish),
		publishExceptions: counter("published_messages_exceptions_total",
			"Errors while publishing messages, by exception type.",
			labels(labelAppName, labelBroker, labelDestination, labelExceptionType)),
	}
	if c.messageAge {
		// Classic only: the age buckets are the ones a reader reasons in.
		f.age = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    c.prefix + "_received_messages_age_seconds",
			Help:    "Time from a message's publish to the start of its processing, in seconds.",
			Buckets: c.ageBuckets,
		}, receive)
		f.ageUnknown = counter("received_messages_age_unknown_total",
			"Messages received without a readable publish time, so without an age observation.", receive)
		f.ageClamped = counter("received_messages_age_clamped_total",
			"Messages published in the future by this host's clock, observed with age zero.", receive)
	}
	return f
}

// register registers every family, or adopts the one already registered
// under the same name and labels (client_golang's AlreadyRegisteredError),
// so that Metrics can share a registry. A failure undoes it all.
func (f *families) register(reg prometheus.Registerer) error {
	r := &registrar{reg: reg}
	f.received = adopt(r, f.received)
	f.receivedSize = adopt(r, f.receivedSize)
	f.inProcess = adopt(r, f.inProcess)
	f.processed = adopt(r, f.processed)
	f.processDuration = adopt(r, f.processDuration)
	f.processExceptions = adopt(r, f.processExceptions)
	f.published = adopt(r, f.published)
	f.publishDuration = adopt(r, f.publishDuration)
	f.publishExceptions = adopt(r, f.publishExceptions)
	if f.age != nil {
		f.age = adopt(r, f.age)
		f.ageUnknown = adopt(r, f.ageUnknown)
		f.ageClamped = adopt(r, f.ageClamped)
	}
	if r.err != nil {
		for _, c := range r.added {
			reg.Unregister(c)
		}
	}
	return r.err
}

// registrar remembers what it registered, to undo it after a failure.
type registrar struct {
	reg   prometheus.Registerer
	added []prometheus.Collector
	err   error
}

// adopt returns c registered, or the vector of the same type already
// registered with an identical description.
func adopt[C prometheus.Collector](r *registrar, c C) C {
	if r.err != nil {
		return c
	}
	err := r.reg.Register(c)
	if err == nil {
		r.added = append(r.added, c)
		return c
	}
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing
		}
	}
	r.err = fmt.Errorf("wmprom: cannot register a metric family: a collector with the same name but other labels or type is registered: %w", err)
	return c
}

// New creates the nine families, registers them with reg and returns the
// Metrics that records them. Families another Metrics registered with the
// same prefix and labels are shared (two routers or app names, one
// registry). Invalid options give an error wrapping ErrInvalidConfig.
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
		processExceptionTypes: newExceptionTypes(cfg.errorType, cfg.maxExceptionTypes),
		publishExceptionTypes: newExceptionTypes(cfg.errorType, cfg.maxExceptionTypes),
		epoch:                 cfg.now(),
	}
	for _, l := range cfg.custom {
		m.dynamic = m.dynamic || l.dynamic
	}
	if !m.dynamic {
		m.customStatic = customValues(cfg.custom, nil)
	}
	overflowCustom := customOverflow(cfg.custom)
	m.receiving = newSeriesCache(cfg.maxLabelSets,
		func(k receiveKey) receiveKey {
			return receiveKey{broker: k.broker, handler: overflowValue, custom: overflowCustom}
		}, m.newReceiveSeries)
	m.publishing = newSeriesCache(cfg.maxLabelSets,
		func(k publishKey) publishKey {
			return publishKey{broker: k.broker, destination: overflowValue, custom: overflowCustom}
		}, m.newPublishSeries)
	if err := reg.Register(sweeper{m}); err != nil {
		return nil, fmt.Errorf("wmprom: cannot register the status sweeper: %w", err)
	}
	return m, nil
}

// receiveKey and publishKey identify a label set (custom values joined).
type (
	receiveKey struct{ broker, handler, custom string }
	publishKey struct{ broker, destination, custom string }
)

// receiveSeries are one handler's children of the receive families,
// resolved once: every status exists at zero from then on, so panels
// show 0 rather than "No data".
type receiveSeries struct {
	received   prometheus.Counter
	inProcess  prometheus.Gauge
	size       prometheus.Observer
	duration   prometheus.Observer
	statuses   [statusCount]prometheus.Counter
	exceptions *prometheus.CounterVec // curried down to exception_type
	age        ageSeries
	nesting    nesting // logging.go
}

// ageSeries are one handler's children of the age families; all nil when
// message age is off.
type ageSeries struct {
	age              prometheus.Observer
	unknown, clamped prometheus.Counter
}

// publishSeries are one destination's children of the publish families.
type publishSeries struct {
	destination       string // the label value, to recognise the next publish's topic
	succeeded, failed prometheus.Counter
	duration          prometheus.Observer
	exceptions        *prometheus.CounterVec
}

func (m *Metrics) newReceiveSeries(k receiveKey) *receiveSeries {
	f := m.families
	values := append([]string{m.appName, k.broker, k.handler}, splitCustomValues(k.custom, len(f.customNames))...)
	s := &receiveSeries{
		received:   f.received.WithLabelValues(values...),
		inProcess:  f.inProcess.WithLabelValues(values...),
		size:       f.receivedSize.WithLabelValues(values...),
		duration:   f.processDuration.WithLabelValues(values...),
		exceptions: f.processExceptions.MustCurryWith(f.named(labelHandler, values)),
		nesting:    nesting{handling: map[*message.Message]bool{}},
	}
	for st := range statusCount {
		s.statuses[st] = f.processed.With(f.named(labelHandler, values, labelStatus, statusNames[st]))
	}
	if f.age != nil {
		s.age = ageSeries{
			age:     f.age.WithLabelValues(values...),
			unknown: f.ageUnknown.WithLabelValues(values...),
			clamped: f.ageClamped.WithLabelValues(values...),
		}
	}
	return s
}

func (m *Metrics) newPublishSeries(k publishKey) *publishSeries {
	f := m.families
	values := append([]string{m.appName, k.broker, k.destination}, splitCustomValues(k.custom, len(f.customNames))...)
	return &publishSeries{
		destination: k.destination,
		succeeded:   f.published.With(f.named(labelDestination, values, labelStatus, "success")),
		failed:      f.published.With(f.named(labelDestination, values, labelStatus, "error")),
		duration:    f.publishDuration.WithLabelValues(values...),
		exceptions:  f.publishExceptions.MustCurryWith(f.named(labelDestination, values)),
	}
}

// named pairs values (app, broker, handler or destination, custom...)
// with their label names, plus the extra name and value pairs.
func (f *families) named(third string, values []string, extra ...string) prometheus.Labels {
	labels := prometheus.Labels{labelAppName: values[0], labelBroker: values[1], third: values[2]}
	for i, name := range f.customNames {
		labels[name] = values[3+i]
	}
	for i := 0; i+1 < len(extra); i += 2 {
		labels[extra[i]] = extra[i+1]
	}
	return labels
}

// receiveSeries returns the series of one label set, creating it once.
// handler is raw user data; broker and custom are label values already.
func (m *Metrics) receiveSeries(broker, handler, custom string) *receiveSeries {
	return m.receiving.get(receiveKey{broker: broker, handler: labelValue(handler), custom: custom})
}

// publishSeries returns the series of one label set, creating it once.
// All three are label values already (destinationLabel for a topic).
func (m *Metrics) publishSeries(broker, destination, custom string) *publishSeries {
	return m.publishing.get(publishKey{broker: broker, destination: destination, custom: custom})
}

// subscription is a handler's subscriber, by the router's name for it,
// and its topic, as a message's context tells them.
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

// elapsed is the time since New. time.Now would read the wall clock
// too, which a duration does not need.
func (m *Metrics) elapsed() time.Duration { return m.cfg.since(m.epoch) }
