package wmprom

import (
	"math"
	"sort"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
)

// A busy service has thousands of handlers and destinations, and each
// message touches the numbers of one of each. As client_golang children
// (a counter, a gauge, five status counters and two histograms, each an
// object of its own with its own bucket array) those numbers were spread
// over some twenty cache lines, each a cache miss once the working set of
// all handlers outgrows the CPU caches. Here a series' numbers are one
// array of words inside it, laid out so that a message touches three of
// its lines on receive and one on publish (the destination label it
// checks, then its words); seriescollector.go exposes them through client_golang
// at scrape time.

// The words of a receive label set, in order: what every message touches
// first (the acked status among them), then the duration buckets, the
// other statuses and the size buckets. With the nesting mark, the first
// line holds the first words and the first three default duration
// buckets (up to 25 ms): a message handled within 25 ms writes that line
// and the line of its size bucket, and only a slower one, which the extra
// line costs nothing beside its handler's time, writes a third. A
// histogram keeps no count: the count is the sum of its buckets, +Inf
// included, so that a scrape always shows the +Inf bucket equal to the
// count. The in-process gauge keeps no word either: it is the received
// count less the processed counts, which a message writes anyway, two
// atomic writes a message fewer on the line every message of the handler
// writes (BenchmarkMiddlewareParallel: the line moves between cores with
// each).
const (
	rxReceived        = iota // received_messages_total
	rxDurationSum            // processing duration sum, float64 bits
	rxSizeSum                // received size sum, in whole bytes: one add, not a float64 CAS loop
	rxAcked                  // received_processed_messages_total{status="acked"}
	rxDurationBuckets        // then the duration buckets, the other statuses, the size buckets
)

// The words of a publish label set: success count, duration sum and
// duration buckets first, the first of them on the line a publish mostly
// touches alone; the error count after them.
const (
	pxSucceeded       = iota // published_messages_total{status="success"}
	pxDurationSum            // publish duration sum, float64 bits
	pxDurationBuckets        // then len(bounds)+1 buckets, then the error count
)

// receiveShape is the word layout of the receive label sets of one set
// of families: it depends on their buckets, which the first Metrics to
// register the families decides.
type receiveShape struct {
	// durationBounds and sizeBounds are the classic buckets' upper bounds;
	// nil when native histograms keep the histogram in client_golang.
	durationBounds, sizeBounds []float64
	statusAt                   int // the word of the first status after acked
	sizeAt                     int // the first size bucket's word
	words                      int
	// durationVec and sizeVec hold the histograms when they are native.
	durationVec, sizeVec *prometheus.HistogramVec
}

func newReceiveShape(durationBounds, sizeBounds []float64, durationVec, sizeVec *prometheus.HistogramVec) *receiveShape {
	s := &receiveShape{durationVec: durationVec, sizeVec: sizeVec}
	s.statusAt = rxDurationBuckets
	if durationVec == nil {
		s.durationBounds = durationBounds
		s.statusAt += len(durationBounds) + 1
	}
	s.sizeAt = s.statusAt + int(statusCount) - 1
	s.words = s.sizeAt
	if sizeVec == nil {
		s.sizeBounds = sizeBounds
		s.words += len(sizeBounds) + 1
	}
	return s
}

// statusWord is the word that counts the processed messages of status st.
func (s *receiveShape) statusWord(st status) int {
	if st == statusAcked {
		return rxAcked
	}
	return s.statusAt + int(st) - 1
}

// publishShape is the word layout of the publish label sets.
type publishShape struct {
	durationBounds []float64 // nil when the histogram is native
	failedAt       int
	durationVec    *prometheus.HistogramVec
}

func newPublishShape(durationBounds []float64, durationVec *prometheus.HistogramVec) *publishShape {
	s := &publishShape{durationVec: durationVec, failedAt: pxDurationBuckets}
	if durationVec == nil {
		s.durationBounds = durationBounds
		s.failedAt += len(durationBounds) + 1
	}
	return s
}

func (s *publishShape) words() int { return s.failedAt + 1 }

// Words kept inside the series for the default buckets (14 duration and
// 11 size bounds): larger layouts get an array of their own, one pointer
// away. Slightly more fit: the padding would take the room anyway.
const (
	receiveInlineWords = rxDurationBuckets + 15 + int(statusCount) - 1 + 12
	publishInlineWords = pxDurationBuckets + 15 + 1
)

// receiveFields are a receiveSeries but for the padding.
type receiveFields struct {
	// The first cache line: the nesting mark and the first seven words,
	// all but two duration buckets written by a message acked within
	// 25 ms (see the word order above). Nothing only read shares a line with
	// words: with one handler's messages on several cores, a read of a
	// line another core keeps writing waits for it as a write does.
	nesting nesting // misuse.go
	inline  [receiveInlineWords]atomic.Uint64

	// Only read, and most of them rarely: the words when they do not fit
	// inline, exemplars, exceptions, message age, native histograms.
	outline    []atomic.Uint64
	set        *labelSet
	exceptions *prometheus.CounterVec // curried down to exception_type
	age        ageSeries
	size       prometheus.Observer // native histograms only
	duration   prometheus.Observer // native histograms only
}

// receiveSeries is one Metrics' view of one handler's receive label set,
// and its own words of it: Metrics sharing a label set (two routers with
// one app name) each count in their own series, and a scrape adds them
// up. Its size is a multiple of the cache line, so the allocator's size
// class for it starts every object on a line boundary.
type receiveSeries struct {
	receiveFields
	_ [(cacheLine - unsafe.Sizeof(receiveFields{})%cacheLine) % cacheLine]byte
}

// receiveKey identifies a receiveSeries by its label values (the custom
// ones joined).
type receiveKey struct{ broker, handler, custom string }

// publishFields are a publishSeries but for the padding.
type publishFields struct {
	// The first cache line: the destination label, which every publish
	// compares with its topic before making it a label value, then the
	// success count, the duration sum and the first four duration buckets.
	// The label is only read, but every successful publish writes this
	// line anyway: beside the words it costs no line of its own, where
	// on a line of its own it was a second cache miss per publish once
	// thousands of destinations outgrow the CPU caches.
	destination string
	inline      [publishInlineWords]atomic.Uint64

	// Only read, and rarely.
	outline    []atomic.Uint64
	set        *labelSet
	exceptions *prometheus.CounterVec // curried down to exception_type
	duration   prometheus.Observer    // native histograms only
}

// publishSeries is one Metrics' view of one destination's publish label
// set and its own words, padded as receiveSeries is.
type publishSeries struct {
	publishFields
	_ [(cacheLine - unsafe.Sizeof(publishFields{})%cacheLine) % cacheLine]byte
}

type publishKey struct{ broker, destination, custom string }

// cacheLine is the cache line size of the CPUs Go runs on in production.
const cacheLine = 64

// newReceiveSeries creates the series of one handler: its words, added
// to its label set's (created on first use), and the children of the
// families client_golang keeps. All five processed statuses exist at
// zero from the start, so status panels show 0 rather than "No data".
func (f *families) newReceiveSeries(key receiveKey, app string, custom []string) *receiveSeries {
	values := append([]string{app, key.broker, key.handler}, custom...)
	shape := f.rx.shape
	s := &receiveSeries{}
	s.exceptions = f.processExceptions.MustCurryWith(f.named(labelHandler, values))
	s.age = f.age.newAgeSeries(values)
	if shape.sizeVec != nil {
		s.size = shape.sizeVec.WithLabelValues(values...)
	}
	if shape.durationVec != nil {
		s.duration = shape.durationVec.WithLabelValues(values...)
	}
	if shape.words > len(s.inline) {
		s.outline = make([]atomic.Uint64, shape.words)
	}
	s.set = f.rx.sets.labelSet(values, s.words(shape))
	return s
}

// newPublishSeries creates the series of one destination, with both
// statuses at zero.
func (f *families) newPublishSeries(key publishKey, app string, custom []string) *publishSeries {
	values := append([]string{app, key.broker, key.destination}, custom...)
	shape := f.px.shape
	s := &publishSeries{}
	s.destination = key.destination
	s.exceptions = f.publishExceptions.MustCurryWith(f.named(labelDestination, values))
	if shape.durationVec != nil {
		s.duration = shape.durationVec.WithLabelValues(values...)
	}
	if shape.words() > len(s.inline) {
		s.outline = make([]atomic.Uint64, shape.words())
	}
	s.set = f.px.sets.labelSet(values, s.words(shape))
	return s
}

// words returns the series' words: inline for the default buckets, found
// without reading anything of s.
func (s *receiveSeries) words(shape *receiveShape) []atomic.Uint64 {
	if shape.words <= len(s.inline) {
		return s.inline[:]
	}
	return s.outline
}

func (s *publishSeries) words(shape *publishShape) []atomic.Uint64 {
	if shape.words() <= len(s.inline) {
		return s.inline[:]
	}
	return s.outline
}

// warm returns the word of the size bucket a message of size bytes
// writes (-1 when the histogram is native), and reads it before the
// first write. Every write is a locked instruction, which waits for the
// reads before it: read first, the miss on the size bucket's line
// overlaps the miss on the first line (the nesting mark, the counts, the
// acked status and the first duration buckets), where each write would
// otherwise wait for its own. observeSize takes the word, so that the
// bucket is searched once per message.
func (s *receiveSeries) warm(shape *receiveShape, size int) (sizeWord int) {
	if shape.sizeVec != nil {
		return -1
	}
	sizeWord = shape.sizeAt + bucketOf(shape.sizeBounds, float64(size))
	// The compiler keeps atomic loads whose values are unused.
	s.words(shape)[sizeWord].Load()
	return sizeWord
}

// warm reads the first word of s, on the line a publish writes, before
// anything the publish waits for: see receiveSeries.warm.
func (s *publishSeries) warm(shape *publishShape) { s.words(shape)[pxSucceeded].Load() }

// received counts one received message.
func (s *receiveSeries) received(shape *receiveShape, ex prometheus.Labels) {
	s.words(shape)[rxReceived].Add(1)
	if ex != nil {
		s.set.exemplar(rxReceived, 1, ex)
	}
}

// processed counts one processed message with status st, which takes it
// out of the in-process gauge (received less processed).
func (s *receiveSeries) processed(shape *receiveShape, st status, ex prometheus.Labels) {
	i := shape.statusWord(st)
	if ex != nil {
		// Before the count: once counted, the message is no longer in
		// process, and everything about it is recorded.
		s.set.exemplar(i, 1, ex)
	}
	s.words(shape)[i].Add(1)
}

// observeSize observes a received payload size of v bytes, whose
// bucket's word warm returned, without exemplar: the size of a message
// says nothing its trace would explain. The sum is kept in whole bytes,
// exact where client_golang's float sum is exact (below 2^53 bytes) and
// beyond.
func (s *receiveSeries) observeSize(shape *receiveShape, v, sizeWord int) {
	if shape.sizeVec != nil {
		s.size.Observe(float64(v))
		return
	}
	w := s.words(shape)
	w[sizeWord].Add(1)
	w[rxSizeSum].Add(uint64(v))
}

// observeDuration observes a processing duration, in seconds.
func (s *receiveSeries) observeDuration(shape *receiveShape, v float64, ex prometheus.Labels) {
	if shape.durationVec != nil {
		observe(s.duration, v, ex)
		return
	}
	observeWords(s.words(shape), &s.set, rxDurationBuckets, rxDurationSum, shape.durationBounds, v, ex)
}

// published counts n messages published, or failed to publish.
func (s *publishSeries) published(shape *publishShape, n int, failed bool, ex prometheus.Labels) {
	i := pxSucceeded
	if failed {
		i = shape.failedAt
	}
	s.words(shape)[i].Add(uint64(n))
	if ex != nil {
		s.set.exemplar(i, float64(n), ex)
	}
}

// observeDuration observes a publish duration, in seconds.
func (s *publishSeries) observeDuration(shape *publishShape, v float64, ex prometheus.Labels) {
	if shape.durationVec != nil {
		observe(s.duration, v, ex)
		return
	}
	observeWords(s.words(shape), &s.set, pxDurationBuckets, pxDurationSum, shape.durationBounds, v, ex)
}

// observeWords observes v in a classic histogram kept in words: its
// buckets from word first on, its sum (float64 bits) in word sum. The
// exemplar goes with the bucket, as client_golang keeps it. The series'
// label set comes by address and is read only for an exemplar: it is on
// another line than the words, and reading it for every observation was
// a cache miss per message with thousands of series (callgrind,
// BenchmarkCardinalitySteady).
func observeWords(w []atomic.Uint64, set **labelSet, first, sum int, bounds []float64, v float64, ex prometheus.Labels) {
	b := first + bucketOf(bounds, v)
	w[b].Add(1)
	addFloat(&w[sum], v)
	if ex != nil {
		(*set).exemplar(b, v, ex)
	}
}

// bucketOf returns the index of the bucket v falls into: the first upper
// bound at or above v, len(bounds) (the +Inf bucket) when there is none,
// NaN included, as client_golang places observations, and searched as it
// does: a short list from the start, where most observations fall.
func bucketOf(bounds []float64, v float64) int {
	if len(bounds) < 35 {
		for i, b := range bounds {
			if v <= b {
				return i
			}
		}
		return len(bounds)
	}
	return sort.SearchFloat64s(bounds, v)
}

// addFloat adds v to the float64 whose bits w holds.
func addFloat(w *atomic.Uint64, v float64) {
	for {
		old := w.Load()
		if w.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
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
