package wmprom

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// families are the nine metric families of FastStream's
// PrometheusMiddleware, with the same names, types and labels.
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

	age *ageFamilies // nil unless WithMessageAge(true); age.go

	customNames []string // WithLabel and WithLabelFunc names, after the built-in labels
}

func newFamilies(c *config) *families {
	custom := customLabelNames(c.custom)
	labels := func(builtin ...string) []string { return append(builtin, custom...) }
	receive := labels(labelAppName, labelBroker, labelHandler)
	publish := labels(labelAppName, labelBroker, labelDestination)
	name := func(n string) string { return c.prefix + "_" + n }

	return &families{
		customNames: custom,
		age:         newAgeFamilies(c, receive),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name("received_messages_total"),
			Help: "Messages received, counted before processing starts.",
		}, receive),
		receivedSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    name("received_messages_size_bytes"),
			Help:    "Payload size of received messages, in bytes.",
			Buckets: c.sizeBuckets,
		}, receive),
		inProcess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: name("received_messages_in_process"),
			Help: "Messages being processed right now.",
		}, receive),
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name("received_processed_messages_total"),
			Help: "Messages processed, by status: acked, nacked, rejected, skipped or error.",
		}, labels(labelAppName, labelBroker, labelHandler, labelStatus)),
		processDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    name("received_processed_messages_duration_seconds"),
			Help:    "Time spent processing a message, whatever the outcome, in seconds.",
			Buckets: c.durationBuckets,
		}, receive),
		processExceptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name("received_processed_messages_exceptions_total"),
			Help: "Errors and panics while processing messages, by exception type.",
		}, labels(labelAppName, labelBroker, labelHandler, labelExceptionType)),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name("published_messages_total"),
			Help: "Messages published, by status: success or error.",
		}, labels(labelAppName, labelBroker, labelDestination, labelStatus)),
		publishDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    name("published_messages_duration_seconds"),
			Help:    "Time spent publishing, whatever the outcome, in seconds.",
			Buckets: c.durationBuckets,
		}, publish),
		publishExceptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name("published_messages_exceptions_total"),
			Help: "Errors while publishing messages, by exception type.",
		}, labels(labelAppName, labelBroker, labelDestination, labelExceptionType)),
	}
}

// register registers every family, or adopts the one already registered
// under the same name and labels, so that several Metrics (two routers,
// two app names) can share one registry. On failure it leaves the
// registry as it found it.
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
	f.age.adopt(r)
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
