package wmprom

import (
	"fmt"
	"math"
	"testing"
	"unsafe"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Every series starts on a cache line, so that the fields and words a
// message touches first share one line (series.go).
func TestSeriesStartOnCacheLines(t *testing.T) {
	m, _ := newMetrics(t)
	for i := range 20 {
		r := m.receiveSeries("b", fmt.Sprintf("h%d", i), m.customStatic)
		p := m.publishSeries("b", fmt.Sprintf("d%d", i), m.customStatic)
		if a := uintptr(unsafe.Pointer(r)); a%cacheLine != 0 {
			t.Errorf("receive series at %#x, %d bytes into a line", a, a%cacheLine)
		}
		if a := uintptr(unsafe.Pointer(p)); a%cacheLine != 0 {
			t.Errorf("publish series at %#x, %d bytes into a line", a, a%cacheLine)
		}
		if r.outline != nil || p.outline != nil {
			t.Error("the default buckets' words are not inline")
		}
	}
}

// A series' histogram exposes what a client_golang histogram with the
// same buckets exposes after the same observations: bucket counts, sum,
// count, and the last exemplar of each bucket, +Inf included.
func TestSeriesHistogramMatchesClientGolang(t *testing.T) {
	bounds := []float64{.005, .01, .025, .05, .075, .1, .25, .5, .75, 1, 2.5, 5, 7.5, 10}
	values := []float64{0, .005, .0051, .01, .3, 1, 10, 10.5, math.Inf(1), 2.5, .075, math.NaN(), -1, 7.5000001}
	m, reg := newMetrics(t, WithDurationBuckets(bounds))
	s := m.publishSeries("b", "d", m.customStatic)
	want := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "want", Help: "want", Buckets: bounds})
	for i, v := range values {
		ex := prometheus.Labels{exemplarLabel: fmt.Sprintf("%032x", i+1)}
		s.observeDuration(m.families.px.shape, v, ex)
		want.(prometheus.ExemplarObserver).ObserveWithExemplar(v, ex)
	}
	var w dto.Metric
	if err := want.Write(&w); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got *dto.Histogram
	for _, mf := range mfs {
		if mf.GetName() == "faststream_published_messages_duration_seconds" {
			got = mf.GetMetric()[0].GetHistogram()
		}
	}
	if got == nil {
		t.Fatal("no duration histogram exposed")
	}
	wh := w.GetHistogram()
	if got.GetSampleCount() != wh.GetSampleCount() || !sameFloat(got.GetSampleSum(), wh.GetSampleSum()) {
		t.Errorf("count %d sum %v, want %d %v", got.GetSampleCount(), got.GetSampleSum(), wh.GetSampleCount(), wh.GetSampleSum())
	}
	if len(got.GetBucket()) != len(wh.GetBucket()) {
		t.Fatalf("%d buckets, want %d", len(got.GetBucket()), len(wh.GetBucket()))
	}
	for i, b := range wh.GetBucket() {
		g := got.GetBucket()[i]
		if g.GetUpperBound() != b.GetUpperBound() || g.GetCumulativeCount() != b.GetCumulativeCount() {
			t.Errorf("bucket %v: %d, want %v: %d", g.GetUpperBound(), g.GetCumulativeCount(), b.GetUpperBound(), b.GetCumulativeCount())
		}
		if ge, we := exemplarText(g.GetExemplar()), exemplarText(b.GetExemplar()); ge != we {
			t.Errorf("bucket %v exemplar %s, want %s", b.GetUpperBound(), ge, we)
		}
	}
}

func sameFloat(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

func exemplarText(e *dto.Exemplar) string {
	if e == nil {
		return "none"
	}
	return fmt.Sprintf("%v %v", e.GetLabel(), e.GetValue())
}

// bucketOf places every value where client_golang does: the first upper
// bound at or above it, else +Inf, NaN included.
func TestBucketOf(t *testing.T) {
	many := make([]float64, 40)
	for i := range many {
		many[i] = float64(i) / 4
	}
	for _, bounds := range [][]float64{{1}, {1, 2}, {.005, .01, .025, .05, .075, .1, .25, .5, .75, 1, 2.5, 5, 7.5, 10}, many} {
		for _, v := range append([]float64{math.Inf(-1), math.Inf(1), math.NaN(), -1, 0, 1, 1.0000001, 1.5, 2, 3, 9.9, 10, 10.1}, bounds...) {
			want := len(bounds)
			for i, b := range bounds {
				if v <= b {
					want = i
					break
				}
			}
			if got := bucketOf(bounds, v); got != want {
				t.Errorf("bucketOf(%v, %v) = %d, want %d", bounds, v, got, want)
			}
		}
	}
}

// A scrape reads the words while messages write them: every histogram it
// exposes is consistent, its +Inf bucket equal to its count.
func TestScrapeDuringTraffic(t *testing.T) {
	m, reg := newMetrics(t)
	s := m.receiveSeries("b", "h", m.customStatic)
	shape := m.families.rx.shape
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20000 {
			s.observeSize(shape, i%3000, s.warm(shape, i%3000))
			s.observeDuration(shape, float64(i%20)/100, nil)
		}
	}()
	for scraping := true; scraping; {
		select {
		case <-done:
			scraping = false
		default:
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, mt := range mf.GetMetric() {
				h := mt.GetHistogram()
				if h == nil {
					continue
				}
				buckets := h.GetBucket()
				for i := 1; i < len(buckets); i++ {
					if buckets[i].GetCumulativeCount() < buckets[i-1].GetCumulativeCount() {
						t.Fatalf("%s: buckets not cumulative", mf.GetName())
					}
				}
				if n := len(buckets); n > 0 && buckets[n-1].GetCumulativeCount() > h.GetSampleCount() {
					t.Fatalf("%s: bucket %v above the count %d", mf.GetName(), buckets[n-1].GetCumulativeCount(), h.GetSampleCount())
				}
			}
		}
	}
}

// Two Metrics recording one label set (two routers with one app name)
// count in series of their own, which a scrape adds up.
func TestLabelSetSharedByTwoMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	var hs []message.HandlerFunc
	for range 2 {
		m, err := New(reg)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil }))
	}
	for i, h := range hs {
		for range i + 1 {
			_, _ = h(message.NewMessage("1", make([]byte, 100)))
		}
	}
	assertSamples(t, reg, []string{"app_name", "broker"}, `
		received_messages_total{handler="unknown"} 3
		received_messages_in_process{handler="unknown"} 0
		received_messages_size_bytes_sum{handler="unknown"} 300
		received_messages_size_bytes_count{handler="unknown"} 3
		`+processed("unknown", 3, 0, 0, 0, 0),
		"received_messages_total", "received_messages_in_process", "received_messages_size_bytes", "received_processed_messages_total")
}

// A handler chain is one cache line: the padding leaves room for no
// trailing zero-size field, which would add a word and spill over.
func TestHandlerChainIsOneLine(t *testing.T) {
	if size := unsafe.Sizeof(handlerChain{}); size != cacheLine {
		t.Errorf("a handler chain takes %d bytes, want %d", size, cacheLine)
	}
}

// A successful publish whose duration falls into one of the first four
// buckets (the default bounds start at 5 ms) reads and writes one cache
// line of its series: the destination label it compares with its topic,
// the success count, the duration sum and the bucket. With thousands of
// destinations each line a publish touches is a cache miss.
func TestPublishTouchesOneLine(t *testing.T) {
	var s publishSeries
	word := unsafe.Sizeof(s.inline[0])
	onFirstLine(t, unsafe.Pointer(&s), []field{
		{"destination", unsafe.Pointer(&s.destination), unsafe.Sizeof(s.destination)},
		{"success count", unsafe.Pointer(&s.inline[pxSucceeded]), word},
		{"duration sum", unsafe.Pointer(&s.inline[pxDurationSum]), word},
		{"first bucket", unsafe.Pointer(&s.inline[pxDurationBuckets]), word},
		{"fourth bucket", unsafe.Pointer(&s.inline[pxDurationBuckets+3]), word},
	})
}

// A message acked within 25 ms (the first three default buckets) writes
// the first line of its receive series and the line of its size bucket
// only: the nesting mark, the received count, both sums, the acked status
// and the duration bucket share the first line.
func TestReceiveTouchesOneLineAndItsSizeBucket(t *testing.T) {
	m, _ := newMetrics(t)
	shape := m.families.rx.shape
	var s receiveSeries
	word := unsafe.Sizeof(s.inline[0])
	onFirstLine(t, unsafe.Pointer(&s), []field{
		{"nesting mark", unsafe.Pointer(&s.nesting), unsafe.Sizeof(s.nesting)},
		{"received count", unsafe.Pointer(&s.inline[rxReceived]), word},
		{"duration sum", unsafe.Pointer(&s.inline[rxDurationSum]), word},
		{"size sum", unsafe.Pointer(&s.inline[rxSizeSum]), word},
		{"acked", unsafe.Pointer(&s.inline[shape.statusWord(statusAcked)]), word},
		{"bucket 5 ms", unsafe.Pointer(&s.inline[rxDurationBuckets+bucketOf(shape.durationBounds, .005)]), word},
		{"bucket 10 ms", unsafe.Pointer(&s.inline[rxDurationBuckets+bucketOf(shape.durationBounds, .01)]), word},
		{"bucket 25 ms", unsafe.Pointer(&s.inline[rxDurationBuckets+bucketOf(shape.durationBounds, .025)]), word},
	})
}

// field is a part of a series, at p, size bytes long.
type field struct {
	name string
	p    unsafe.Pointer
	size uintptr
}

// onFirstLine checks that every field lies on the first cache line of
// the series at series.
func onFirstLine(t *testing.T, series unsafe.Pointer, fields []field) {
	t.Helper()
	for _, f := range fields {
		at := uintptr(f.p) - uintptr(series)
		if first, last := at/cacheLine, (at+f.size-1)/cacheLine; first != 0 || last != 0 {
			t.Errorf("%s on lines %d-%d of the series, want line 0", f.name, first, last)
		}
	}
}
