package wmprom

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// families are the nine metric families of FastStream's
// PrometheusMiddleware, with the same names, types and labels.
type families struct {
	received          *seriesFamily        // prefix_received_messages_total
	receivedSize      prometheus.Collector // prefix_received_messages_size_bytes: a *seriesFamily, or a *prometheus.HistogramVec when native
	inProcess         *seriesFamily        // prefix_received_messages_in_process
	processed         *seriesFamily        // prefix_received_processed_messages_total
	processDuration   prometheus.Collector // prefix_received_processed_messages_duration_seconds, as receivedSize
	processExceptions *prometheus.CounterVec
	published         *seriesFamily        // prefix_published_messages_total
	publishDuration   prometheus.Collector // prefix_published_messages_duration_seconds, as receivedSize
	publishExceptions *prometheus.CounterVec

	age *ageFamilies // nil unless WithMessageAge(true); age.go

	customNames []string // WithLabel and WithLabelFunc names, after the built-in labels

	// The families whose numbers are label sets' words (series.go), with
	// the store of those label sets and their layout, one group per side.
	rx *receiveGroup
	px *publishGroup
}

// receiveGroup is the receive families kept in label sets' words. They
// are adopted together: a Metrics that finds received_messages_total
// registered by another Metrics takes that one's whole group, label
// sets, layout and native histograms included.
type receiveGroup struct {
	received, inProcess, processed *seriesFamily
	size, duration                 prometheus.Collector // *seriesFamily, or *prometheus.HistogramVec when native
	sets                           *seriesStore
	shape                          *receiveShape
}

// publishGroup is the publish families kept in label sets' words,
// adopted together as receiveGroup is.
type publishGroup struct {
	published *seriesFamily
	duration  prometheus.Collector
	sets      *seriesStore
	shape     *publishShape
}

func newFamilies(c *config) *families {
	custom := customLabelNames(c.custom)
	labels := func(builtin ...string) []string { return append(builtin, custom...) }
	receive := labels(labelAppName, labelBroker, labelHandler)
	publish := labels(labelAppName, labelBroker, labelDestination)
	name := func(n string) string { return c.prefix + "_" + n }
	nativeVec := func(opts prometheus.HistogramOpts, labels []string) *prometheus.HistogramVec {
		if c.native.form == 0 {
			return nil
		}
		return prometheus.NewHistogramVec(c.native.histogramOpts(opts), labels)
	}
	histogram := func(vec *prometheus.HistogramVec, f *seriesFamily) prometheus.Collector {
		if vec != nil {
			return vec
		}
		return f
	}

	const (
		receivedSizeName    = "received_messages_size_bytes"
		receivedSizeHelp    = "Payload size of received messages, in bytes."
		processDurationName = "received_processed_messages_duration_seconds"
		processDurationHelp = "Time spent processing a message, whatever the outcome, in seconds."
		publishDurationName = "published_messages_duration_seconds"
		publishDurationHelp = "Time spent publishing, whatever the outcome, in seconds."
	)
	sizeVec := nativeVec(prometheus.HistogramOpts{Name: name(receivedSizeName), Help: receivedSizeHelp, Buckets: c.sizeBuckets}, receive)
	processVec := nativeVec(prometheus.HistogramOpts{Name: name(processDurationName), Help: processDurationHelp, Buckets: c.durationBuckets}, receive)
	publishVec := nativeVec(prometheus.HistogramOpts{Name: name(publishDurationName), Help: publishDurationHelp, Buckets: c.durationBuckets}, publish)

	rx := &receiveGroup{sets: newSeriesStore(), shape: newReceiveShape(c.durationBuckets, c.sizeBuckets, processVec, sizeVec)}
	rxFamily := func(n, help string, labels []string) *seriesFamily {
		return &seriesFamily{desc: prometheus.NewDesc(name(n), help, labels, nil), store: rx.sets, group: rx}
	}
	rx.received = rxFamily("received_messages_total", "Messages received, counted before processing starts.", receive)
	rx.received.kind, rx.received.word = counterFamily, rxReceived
	rx.inProcess = rxFamily("received_messages_in_process", "Messages being processed right now.", receive)
	rx.inProcess.kind, rx.inProcess.word = inProcessFamily, rxReceived
	rx.processed = rxFamily("received_processed_messages_total",
		"Messages processed, by status: acked, nacked, rejected, skipped or error.",
		labels(labelAppName, labelBroker, labelHandler, labelStatus))
	rx.processed.kind, rx.processed.statuses = statusFamily, statusNames[:]
	for st := range statusCount {
		rx.processed.statusWords = append(rx.processed.statusWords, rx.shape.statusWord(st))
	}
	rx.inProcess.statusWords = rx.processed.statusWords
	size := rxFamily(receivedSizeName, receivedSizeHelp, receive)
	size.kind, size.word, size.bounds, size.sumWord, size.wholeSum = histogramFamily, rx.shape.sizeAt, c.sizeBuckets, rxSizeSum, true
	rx.size = histogram(sizeVec, size)
	duration := rxFamily(processDurationName, processDurationHelp, receive)
	duration.kind, duration.word, duration.bounds, duration.sumWord = histogramFamily, rxDurationBuckets, c.durationBuckets, rxDurationSum
	rx.duration = histogram(processVec, duration)

	px := &publishGroup{sets: newSeriesStore(), shape: newPublishShape(c.durationBuckets, publishVec)}
	px.published = &seriesFamily{
		desc: prometheus.NewDesc(name("published_messages_total"), "Messages published, by status: success or error.",
			labels(labelAppName, labelBroker, labelDestination, labelStatus), nil),
		store: px.sets, group: px, kind: statusFamily,
		statuses: []string{"success", "error"}, statusWords: []int{pxSucceeded, px.shape.failedAt},
	}
	px.duration = histogram(publishVec, &seriesFamily{
		desc:  prometheus.NewDesc(name(publishDurationName), publishDurationHelp, publish, nil),
		store: px.sets, group: px, kind: histogramFamily,
		word: pxDurationBuckets, bounds: c.durationBuckets, sumWord: pxDurationSum,
	})

	f := &families{
		customNames: custom,
		age:         newAgeFamilies(c, receive),
		processExceptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name("received_processed_messages_exceptions_total"),
			Help: "Errors and panics while processing messages, by exception type.",
		}, labels(labelAppName, labelBroker, labelHandler, labelExceptionType)),
		publishExceptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name("published_messages_exceptions_total"),
			Help: "Errors while publishing messages, by exception type.",
		}, labels(labelAppName, labelBroker, labelDestination, labelExceptionType)),
	}
	f.useReceive(rx)
	f.usePublish(px)
	return f
}

// useReceive makes g the receive families.
func (f *families) useReceive(g *receiveGroup) {
	f.rx = g
	f.received, f.inProcess, f.processed = g.received, g.inProcess, g.processed
	f.receivedSize, f.processDuration = g.size, g.duration
}

// usePublish makes g the publish families.
func (f *families) usePublish(g *publishGroup) {
	f.px = g
	f.published, f.publishDuration = g.published, g.duration
}

// register registers every family, or adopts the one already registered
// under the same name and labels, so that several Metrics (two routers,
// two app names) can share one registry. On failure it leaves the
// registry as it found it.
func (f *families) register(reg prometheus.Registerer) error {
	r := &registrar{reg: reg}
	f.useReceive(r.receiveGroup(f.rx))
	f.processExceptions = adopt(r, f.processExceptions)
	f.usePublish(r.publishGroup(f.px))
	f.publishExceptions = adopt(r, f.publishExceptions)
	f.age.adopt(r)
	if r.err != nil {
		for _, c := range r.added {
			reg.Unregister(c)
		}
	}
	return r.err
}

// receiveGroup registers g, or adopts the group of the received family
// already registered.
func (r *registrar) receiveGroup(g *receiveGroup) *receiveGroup {
	if got := adopt(r, g.received); got != g.received {
		if other, ok := got.group.(*receiveGroup); ok {
			g = other
		}
	}
	for _, c := range []prometheus.Collector{g.size, g.inProcess, g.processed, g.duration} {
		r.same(c)
	}
	return g
}

// publishGroup registers g, or adopts the group of the published family
// already registered.
func (r *registrar) publishGroup(g *publishGroup) *publishGroup {
	if got := adopt(r, g.published); got != g.published {
		if other, ok := got.group.(*publishGroup); ok {
			g = other
		}
	}
	r.same(g.duration)
	return g
}

// same registers c, which must be new to the registry or already
// registered itself: a family of an adopted group is, and anything else
// registered under its description would not see its numbers.
func (r *registrar) same(c prometheus.Collector) {
	if got := adopt(r, c); r.err == nil && got != c {
		r.err = errors.New("wmprom: cannot register a metric family: another collector with the same description is registered")
	}
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
