package wmprom

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The counters, the in-process gauge and the classic histograms of the
// receive and publish families are words in each label set's array
// (series.go), not client_golang children. A seriesFamily exposes one
// family from those words at scrape time as client_golang's constant
// metrics, so that registration, exposition formats, exemplars and
// created timestamps stay client_golang's. Native histograms have no
// constant form in client_golang: with WithNativeHistograms the
// histograms stay client_golang's HistogramVecs.

// labelSet is one label set of a family group: the words of the series
// that count in it, one per Metrics recording it (two routers with one
// app name, say), which a scrape adds up, as client_golang children are
// shared by Metrics sharing a family.
type labelSet struct {
	values  []string  // app, broker, handler or destination, custom...
	n       int       // words per series, in the layout of the group's shape
	created time.Time // exposed as the created timestamp, as client_golang does

	// parts are the series' words; a new series replaces the slice, so a
	// scrape reads the one it loads without a lock.
	parts atomic.Pointer[[][]atomic.Uint64]

	// exemplars holds the last exemplar of each word that takes one, made
	// at the first exemplar: a service without traces never pays for it.
	exemplars atomic.Pointer[[]atomic.Pointer[exemplarValue]]
}

// word is word i summed over the series.
func (l *labelSet) word(i int) uint64 {
	var v uint64
	for _, w := range *l.parts.Load() {
		v += w[i].Load()
	}
	return v
}

// float is word i, float64 bits in each series, summed over the series.
func (l *labelSet) float(i int) float64 {
	var v float64
	for _, w := range *l.parts.Load() {
		v += math.Float64frombits(w[i].Load())
	}
	return v
}

// exemplarValue is one exemplar: the value counted or observed, the
// trace it belongs to, and when.
type exemplarValue struct {
	value  float64
	labels prometheus.Labels
	at     time.Time
}

// exemplar makes ex, with value v, the last exemplar of word i. ex is
// kept as it is: wmprom makes one map per message and never changes it.
func (l *labelSet) exemplar(i int, v float64, ex prometheus.Labels) {
	slots := l.exemplars.Load()
	if slots == nil {
		fresh := make([]atomic.Pointer[exemplarValue], l.n)
		if l.exemplars.CompareAndSwap(nil, &fresh) {
			slots = &fresh
		} else {
			slots = l.exemplars.Load()
		}
	}
	// client_golang timestamps exemplars with the wall clock too.
	(*slots)[i].Store(&exemplarValue{value: v, labels: ex, at: time.Now()})
}

// exemplarsOf returns the exemplars of words from to to (excluded), in
// order, for prometheus.NewMetricWithExemplars.
func (l *labelSet) exemplarsOf(from, to int) []prometheus.Exemplar {
	slots := l.exemplars.Load()
	if slots == nil {
		return nil
	}
	var out []prometheus.Exemplar
	for i := from; i < to; i++ {
		if e := (*slots)[i].Load(); e != nil {
			out = append(out, prometheus.Exemplar{Value: e.value, Labels: e.labels, Timestamp: e.at})
		}
	}
	return out
}

// seriesStore holds the label sets of one family group. Label sets are
// only ever added, so a scrape reads the slice as it was when it began.
type seriesStore struct {
	mu    sync.Mutex
	index map[string]*labelSet
	sets  []*labelSet
}

func newSeriesStore() *seriesStore { return &seriesStore{index: map[string]*labelSet{}} }

// labelSet returns the label set of values, with words, a new series'
// words laid out in the group's shape, added to it.
func (s *seriesStore) labelSet(values []string, words []atomic.Uint64) *labelSet {
	key := strings.Join(values, customSeparator)
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.index[key]
	if !ok {
		l = &labelSet{values: values, n: len(words), created: time.Now()}
		l.parts.Store(&[][]atomic.Uint64{})
		s.index[key] = l
		s.sets = append(s.sets, l)
	}
	parts := append(append([][]atomic.Uint64(nil), *l.parts.Load()...), words)
	l.parts.Store(&parts)
	return l
}

func (s *seriesStore) snapshot() []*labelSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sets
}

// familyKind says how a seriesFamily reads its words.
type familyKind uint8

const (
	counterFamily   familyKind = iota // one counter per label set
	inProcessFamily                   // one gauge per label set: word less the statusWords
	statusFamily                      // one counter per label set and status
	histogramFamily                   // one classic histogram per label set
)

// seriesFamily is one metric family read from the words of a store's
// label sets: a prometheus.Collector with one Desc.
type seriesFamily struct {
	desc  *prometheus.Desc
	store *seriesStore
	kind  familyKind
	word  int // the counter, the received count, or the first bucket

	statuses    []string // statusFamily: the status label values,
	statusWords []int    // and their words (inProcessFamily: the processed counts)

	bounds   []float64 // histogramFamily: the upper bounds,
	sumWord  int       // the sum's word,
	wholeSum bool      // and whether the sum is a whole number rather than float64 bits

	// group is the receiveGroup or publishGroup the family belongs to:
	// what a Metrics adopting the family adopts with it.
	group any
}

// Describe sends the family's one Desc.
func (f *seriesFamily) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

// Collect sends one constant metric per label set (per label set and
// status for a statusFamily).
func (f *seriesFamily) Collect(ch chan<- prometheus.Metric) {
	var values []string // the label values with the status, reused: client_golang copies them
	for _, l := range f.store.snapshot() {
		switch f.kind {
		case counterFamily:
			ch <- f.counter(l, f.word, l.values)
		case inProcessFamily:
			ch <- orInvalid(f.desc)(prometheus.NewConstMetric(f.desc, prometheus.GaugeValue, float64(f.inProcess(l)), l.values...))
		case statusFamily:
			for i, st := range f.statuses {
				values = append(append(append(values[:0], l.values[:3]...), st), l.values[3:]...)
				ch <- f.counter(l, f.statusWords[i], values)
			}
		case histogramFamily:
			ch <- f.histogram(l)
		}
	}
}

// inProcess is the received count of l less its processed counts. The
// processed counts are read first: every count only grows, and a message
// is counted received before it is counted processed, so what is read
// after them is at least their sum, and the gauge never goes below zero
// however the scrape overlaps the messages.
func (f *seriesFamily) inProcess(l *labelSet) int64 {
	var processed uint64
	for _, i := range f.statusWords {
		processed += l.word(i)
	}
	return int64(l.word(f.word) - processed)
}

// counter is the counter of word i of l.
func (f *seriesFamily) counter(l *labelSet, i int, values []string) prometheus.Metric {
	m, err := prometheus.NewConstMetricWithCreatedTimestamp(f.desc, prometheus.CounterValue, float64(l.word(i)), l.created, values...)
	if err != nil {
		return prometheus.NewInvalidMetric(f.desc, err)
	}
	return withExemplars(m, l.exemplarsOf(i, i+1))
}

// histogram is the histogram of l. Its count is the sum of the buckets
// read, so the +Inf bucket, which the exposition derives from the count,
// always equals it; the sum may be ahead or behind by the observations a
// scrape overlaps, as it would in any pair of counters.
func (f *seriesFamily) histogram(l *labelSet) prometheus.Metric {
	buckets := make(map[float64]uint64, len(f.bounds))
	var count uint64
	for i, bound := range f.bounds {
		count += l.word(f.word + i)
		buckets[bound] = count
	}
	count += l.word(f.word + len(f.bounds))
	sum := float64(l.word(f.sumWord))
	if !f.wholeSum {
		sum = l.float(f.sumWord)
	}
	m, err := prometheus.NewConstHistogramWithCreatedTimestamp(f.desc, count, sum, buckets, l.created, l.values...)
	if err != nil {
		return prometheus.NewInvalidMetric(f.desc, err)
	}
	return withExemplars(m, l.exemplarsOf(f.word, f.word+len(f.bounds)+1))
}

// withExemplars attaches exemplars to m. An exemplar client_golang
// refuses costs the metric its exemplars, never the metric itself (the
// labels are checked when recorded, so it does not happen).
func withExemplars(m prometheus.Metric, exemplars []prometheus.Exemplar) prometheus.Metric {
	if len(exemplars) == 0 {
		return m
	}
	if with, err := prometheus.NewMetricWithExemplars(m, exemplars...); err == nil {
		return with
	}
	return m
}

// orInvalid turns a constructor's error into an invalid metric, which
// fails the scrape with that error as client_golang's own would.
func orInvalid(desc *prometheus.Desc) func(prometheus.Metric, error) prometheus.Metric {
	return func(m prometheus.Metric, err error) prometheus.Metric {
		if err != nil {
			return prometheus.NewInvalidMetric(desc, err)
		}
		return m
	}
}
