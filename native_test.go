package wmprom

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// clockedPublisher accepts every publish after advancing the fake clock,
// so the publish duration is exact.
type clockedPublisher struct {
	clock *fakeClock
	took  time.Duration
}

func (p clockedPublisher) Publish(string, ...*message.Message) error {
	p.clock.Advance(p.took)
	return nil
}
func (clockedPublisher) Close() error { return nil }

// nativeWant is what one histogram family must expose after one
// observation: its classic bounds (none for native only) and, when native,
// the one populated bucket of schema 3 (factor 1.1), whose index i is the
// one with 2^((i-1)/8) < value <= 2^(i/8).
type nativeWant struct {
	family  string
	value   float64
	classic []float64
	index   int32
}

// TestNativeHistogramsExposed observes one message of 100 bytes that a
// handler processes in exactly 30 ms and one publish of exactly 2 ms, and
// checks what the three histograms expose: classic only by default, both
// forms with AlongsideClassic, native only with InsteadOfClassic.
func TestNativeHistogramsExposed(t *testing.T) {
	size := defaultSizeBuckets()
	dur := defaultDurationBuckets()
	cases := []struct {
		name    string
		opts    []Option
		native  bool
		classic bool
	}{
		{"default classic only", nil, false, true},
		{"alongside classic", []Option{WithNativeHistograms(AlongsideClassic)}, true, true},
		{"instead of classic", []Option{WithNativeHistograms(InsteadOfClassic)}, true, false},
	}
	want := []nativeWant{
		// 2^(53/8) = 98.7 < 100 <= 2^(54/8) = 107.6
		{"faststream_received_messages_size_bytes", 100, size, 54},
		// 2^(-41/8) = 0.02861 < 0.03 <= 2^(-40/8) = 0.03125
		{"faststream_received_processed_messages_duration_seconds", 0.03, dur, -40},
		// 2^(-72/8) = 0.001953 < 0.002 <= 2^(-71/8) = 0.002130
		{"faststream_published_messages_duration_seconds", 0.002, dur, -71},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			m, reg := newMetrics(t, append([]Option{withClock(clock)}, tc.opts...)...)
			h := m.Middleware(func(*message.Message) ([]*message.Message, error) {
				clock.Advance(30 * time.Millisecond)
				return nil, nil
			})
			if _, err := h(message.NewMessage("1", make([]byte, 100))); err != nil {
				t.Fatal(err)
			}
			pub, err := m.DecoratePublisher(clockedPublisher{clock: clock, took: 2 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish("payments", message.NewMessage("2", []byte("x"))); err != nil {
				t.Fatal(err)
			}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range want {
				h := onlyHistogram(t, mfs, w.family)
				if err := checkHistogram(h, w, tc.native, tc.classic); err != nil {
					t.Errorf("%s: %v\n%v", w.family, err, h)
				}
			}
		})
	}
}

// onlyHistogram returns the one histogram series of family.
func onlyHistogram(t *testing.T, mfs []*dto.MetricFamily, family string) *dto.Histogram {
	t.Helper()
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		if mf.GetType() != dto.MetricType_HISTOGRAM || len(mf.GetMetric()) != 1 {
			t.Fatalf("%s: type %v with %d series, want one histogram series", family, mf.GetType(), len(mf.GetMetric()))
		}
		return mf.GetMetric()[0].GetHistogram()
	}
	t.Fatalf("%s not gathered", family)
	return nil
}

// checkHistogram compares h, holding the one observation w.value, with
// what the native and classic forms must expose.
func checkHistogram(h *dto.Histogram, w nativeWant, native, classic bool) error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	if h.GetSampleCount() != 1 || h.GetSampleSum() != w.value {
		bad("count %d sum %v, want 1 and %v", h.GetSampleCount(), h.GetSampleSum(), w.value)
	}
	var bounds []float64
	for _, b := range h.GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
		if wantCount := uint64(0); b.GetUpperBound() >= w.value {
			if wantCount = 1; b.GetCumulativeCount() != wantCount {
				bad("classic bucket le=%v counts %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), wantCount)
			}
		} else if b.GetCumulativeCount() != wantCount {
			bad("classic bucket le=%v counts %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), wantCount)
		}
	}
	switch {
	case classic && !equalFloats(bounds, w.classic):
		bad("classic bounds %v, want %v", bounds, w.classic)
	case !classic && len(bounds) != 0:
		bad("classic bounds %v, want none (native only)", bounds)
	}
	if !native {
		if h.Schema != nil || len(h.GetPositiveSpan()) != 0 || h.ZeroThreshold != nil {
			bad("native fields set (schema %v, spans %v, zero threshold %v), want a classic histogram only", h.Schema, h.GetPositiveSpan(), h.ZeroThreshold)
		}
		return errors.Join(problems...)
	}
	if h.Schema == nil || h.GetSchema() != 3 {
		bad("schema %v, want 3 (bucket factor 1.1: 2^(1/8) = 1.0905)", h.Schema)
	}
	if h.GetZeroThreshold() != prometheus.DefNativeHistogramZeroThreshold || h.GetZeroCount() != 0 {
		bad("zero bucket threshold %v count %d, want client_golang's default and 0", h.GetZeroThreshold(), h.GetZeroCount())
	}
	spans := h.GetPositiveSpan()
	if len(spans) != 1 || spans[0].GetOffset() != w.index || spans[0].GetLength() != 1 ||
		len(h.GetPositiveDelta()) != 1 || h.GetPositiveDelta()[0] != 1 || len(h.GetNegativeSpan()) != 0 {
		bad("positive spans %v deltas %v negative spans %v, want one bucket, index %d, count 1", spans, h.GetPositiveDelta(), h.GetNegativeSpan(), w.index)
	}
	lo, hi := math.Pow(2, float64(w.index-1)/8), math.Pow(2, float64(w.index)/8)
	if !(lo < w.value && w.value <= hi) {
		bad("test data: %v is not in bucket %d, (%v, %v]", w.value, w.index, lo, hi)
	}
	return errors.Join(problems...)
}

// TestNativeHistogramBuckets shows WithNativeHistogramBuckets reaching the
// histograms: a factor of 1.5 gives schema 1 (2^(1/2) = 1.414, the
// coarsest standard schema within it).
func TestNativeHistogramBuckets(t *testing.T) {
	c := newConfig(nil)
	if c.native != (nativeConfig{factor: 1.1, maxBuckets: 160, minReset: time.Hour}) {
		t.Errorf("native defaults %+v, want off, factor 1.1, 160 buckets, 1h", c.native)
	}
	m, reg := newMetrics(t, WithNativeHistograms(InsteadOfClassic), WithNativeHistogramBuckets(1.5, 20, time.Minute))
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	_, _ = h(message.NewMessage("1", make([]byte, 100)))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := onlyHistogram(t, mfs, "faststream_received_messages_size_bytes")
	// 2^(13/2) = 90.5 < 100 <= 2^(14/2) = 128
	if got.GetSchema() != 1 || len(got.GetPositiveSpan()) != 1 || got.GetPositiveSpan()[0].GetOffset() != 14 {
		t.Errorf("size histogram with factor 1.5: %v, want schema 1 and bucket 14", got)
	}
	if o := m.cfg.native; o.maxBuckets != 20 || o.minReset != time.Minute {
		t.Errorf("native config %+v, want 20 buckets and 1m", o)
	}
}

func TestNativeHistogramOptionsRejected(t *testing.T) {
	cases := []struct {
		name string
		opts []Option
		want string
	}{
		{"unknown form", []Option{WithNativeHistograms(7)}, "native histograms 7 is neither AlongsideClassic nor InsteadOfClassic"},
		{"factor 1", []Option{WithNativeHistogramBuckets(1, 160, time.Hour)}, "native histogram bucket factor 1, want a finite number above 1"},
		{"factor NaN", []Option{WithNativeHistogramBuckets(math.NaN(), 160, time.Hour)}, "bucket factor NaN"},
		{"factor +Inf", []Option{WithNativeHistogramBuckets(math.Inf(1), 160, time.Hour)}, "bucket factor +Inf"},
		{"no buckets", []Option{WithNativeHistogramBuckets(1.1, 0, time.Hour)}, "native histogram max buckets is 0, want at least 1"},
		{"negative reset", []Option{WithNativeHistogramBuckets(1.1, 160, -time.Second)}, "native histogram min reset duration -1s is negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m, err := New(reg, tc.opts...)
			if err == nil || m != nil {
				t.Fatalf("New = %v, %v; want an error", m, err)
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not wrap ErrInvalidConfig with %q", err, tc.want)
			}
		})
	}
}

// TestNativeHistogramsHotPathAllocs keeps the middleware and the decorated
// publisher at zero allocations per plain message with native histograms
// on, on the real clock, so observations land in many native buckets.
func TestNativeHistogramsHotPathAllocs(t *testing.T) {
	for _, form := range []NativeHistograms{AlongsideClassic, InsteadOfClassic} {
		m, _ := newMetrics(t, WithNativeHistograms(form))
		h := m.Middleware(emptyHandler)
		msg := message.NewMessage("1", []byte("payload"))
		msg.SetContext(context.Background())
		if n := testing.AllocsPerRun(1000, func() { _, _ = h(msg) }); n != 0 {
			t.Errorf("form %d: middleware %v allocs per message, want 0", form, n)
		}
		pub, err := m.DecoratePublisher(nopPublisher{})
		if err != nil {
			t.Fatal(err)
		}
		msgs := []*message.Message{message.NewMessage("1", []byte("payload"))}
		if n := testing.AllocsPerRun(1000, func() { _ = pub.Publish("payments", msgs...) }); n != 0 {
			t.Errorf("form %d: publisher %v allocs per message, want 0", form, n)
		}
	}
}

// BenchmarkMiddlewareNative prices native histograms on the handler path:
// classic only (the default), native alongside classic, native only.
func BenchmarkMiddlewareNative(b *testing.B) {
	ctx := routerContext(b, "orders")
	cases := []struct {
		name string
		opts []Option
	}{
		{"classic", nil},
		{"alongside-classic", []Option{WithNativeHistograms(AlongsideClassic)}},
		{"instead-of-classic", []Option{WithNativeHistograms(InsteadOfClassic)}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			m, err := New(prometheus.NewRegistry(), tc.opts...)
			if err != nil {
				b.Fatal(err)
			}
			h := m.Middleware(emptyHandler)
			msg := message.NewMessage("1", []byte("payload"))
			msg.SetContext(ctx)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				_, _ = h(msg)
			}
		})
	}
}

// secondMetricsSize records one 100-byte message through a second
// Metrics, made with second, on the registry of a first made with first,
// and returns the size histogram the registry then exposes.
func secondMetricsSize(t *testing.T, first, second []Option) *dto.Histogram {
	t.Helper()
	_, reg := newMetrics(t, append([]Option{WithAppName("first")}, first...)...)
	m, err := New(reg, append([]Option{WithAppName("second")}, second...)...)
	if err != nil {
		t.Fatal(err)
	}
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	_, _ = h(message.NewMessage("1", make([]byte, 100)))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return onlyHistogram(t, mfs, "faststream_received_messages_size_bytes")
}

// TestNativeHistogramsSharedRegistry: a second Metrics on the same
// registry adopts the families the first registered, histogram form
// included, as it adopts their buckets.
func TestNativeHistogramsSharedRegistry(t *testing.T) {
	got := secondMetricsSize(t, nil, []Option{WithNativeHistograms(InsteadOfClassic)})
	if got.Schema != nil || len(got.GetBucket()) != len(defaultSizeBuckets()) {
		t.Errorf("second Metrics' size histogram: schema %v, %d classic buckets; want the first's classic form", got.Schema, len(got.GetBucket()))
	}
}

// The other way round: a Metrics asking for classic histograms on a
// registry where the first registered them native records into the
// native ones, whose words its series do not have.
func TestNativeHistogramsSharedRegistryNativeFirst(t *testing.T) {
	got := secondMetricsSize(t, []Option{WithNativeHistograms(InsteadOfClassic)}, nil)
	if got.Schema == nil || got.GetSampleCount() != 1 {
		t.Errorf("second Metrics' size histogram: schema %v, count %d; want the first's native form with one observation", got.Schema, got.GetSampleCount())
	}
}
