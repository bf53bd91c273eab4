package wmprom

import (
	"github.com/prometheus/client_golang/prometheus"
)

// receiveSeries holds one handler's children of the six receive families,
// resolved once so that a message costs no label hashing.
type receiveSeries struct {
	key        receiveKey
	received   prometheus.Counter
	size       prometheus.Observer
	inProcess  prometheus.Gauge
	duration   prometheus.Observer
	processed  [statusCount]prometheus.Counter
	exceptions *prometheus.CounterVec // curried down to exception_type
	age        ageSeries
	nesting    nesting // misuse.go
}

// receiveKey identifies a receiveSeries by its label values (the custom
// ones joined).
type receiveKey struct{ broker, handler, custom string }

// publishSeries holds one destination's children of the three publish
// families.
type publishSeries struct {
	key        publishKey
	succeeded  prometheus.Counter
	failed     prometheus.Counter
	duration   prometheus.Observer
	exceptions *prometheus.CounterVec // curried down to exception_type
}

type publishKey struct{ broker, destination, custom string }

// newReceiveSeries creates the series of one handler. All five processed
// statuses start at zero, so status panels show 0 rather than "No data".
func (f *families) newReceiveSeries(key receiveKey, app string, custom []string) *receiveSeries {
	values := append([]string{app, key.broker, key.handler}, custom...)
	s := &receiveSeries{
		key:        key,
		received:   f.received.WithLabelValues(values...),
		size:       f.receivedSize.WithLabelValues(values...),
		inProcess:  f.inProcess.WithLabelValues(values...),
		duration:   f.processDuration.WithLabelValues(values...),
		exceptions: f.processExceptions.MustCurryWith(f.named(labelHandler, values)),
		age:        f.age.newAgeSeries(values),
	}
	for st := range statusCount {
		s.processed[st] = f.processed.WithLabelValues(insert(values, 3, st.String())...)
	}
	return s
}

// newPublishSeries creates the series of one destination, with both
// statuses at zero.
func (f *families) newPublishSeries(key publishKey, app string, custom []string) *publishSeries {
	values := append([]string{app, key.broker, key.destination}, custom...)
	return &publishSeries{
		key:        key,
		succeeded:  f.published.WithLabelValues(insert(values, 3, "success")...),
		failed:     f.published.WithLabelValues(insert(values, 3, "error")...),
		duration:   f.publishDuration.WithLabelValues(values...),
		exceptions: f.publishExceptions.MustCurryWith(f.named(labelDestination, values)),
	}
}

// insert returns a copy of values with v at index i.
func insert(values []string, i int, v string) []string {
	out := make([]string, 0, len(values)+1)
	out = append(out, values[:i]...)
	out = append(out, v)
	return append(out, values[i:]...)
}

// named pairs values (app, broker, handler or destination, custom...)
// with their label names, to curry an exceptions family down to its one
// open label, exception_type.
func (f *families) named(third string, values []string) prometheus.Labels {
	labels := prometheus.Labels{labelAppName: values[0], labelBroker: values[1], third: values[2]}
	for i, name := range f.customNames {
		labels[name] = values[3+i]
	}
	return labels
}
