package benchmarks

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wmprom/wmprom"
)

// The native histogram benchmarks compare wmprom's three histogram forms at
// 1,000 and 10,000 handlers: classic only (the default), native alongside
// classic, and native instead of classic.
//
//	go test -run '^$' -bench Native -benchmem -count 1 ./benchmarks/
var nativeCardinalities = []int{1000, 10000}

var nativeForms = []struct {
	name string
	opts []wmprom.Option
}{
	{"classic", nil},
	{"native+classic", []wmprom.Option{wmprom.WithNativeHistograms(wmprom.AlongsideClassic)}},
	{"native-only", []wmprom.Option{wmprom.WithNativeHistograms(wmprom.InsteadOfClassic)}},
}

// nativeInstrumentation is wmprom with opts, as a handlerInstrumentation,
// with the label-set bound raised above the largest cardinality measured:
// at the default 1,000, handlers past the thousandth would share one
// overflow set and 10,000 handlers would measure the bound instead.
func nativeInstrumentation(name string, opts []wmprom.Option) handlerInstrumentation {
	opts = append([]wmprom.Option{wmprom.WithMaxLabelSets(slices.Max(nativeCardinalities))}, opts...)
	return handlerInstrumentation{name: name, new: func(tb testing.TB, reg *prometheus.Registry) (message.HandlerMiddleware, message.PublisherDecorator) {
		m, err := wmprom.New(reg, opts...)
		if err != nil {
			tb.Fatal(err)
		}
		return m.Middleware, m.DecoratePublisher
	}}
}

// spreadSizes are the payload sizes every handler receives in the native
// benchmarks: 16 B to 1 MiB in steps of 2^(1/2), 33 sizes, so that the size
// histogram of each handler fills 33 native buckets across 16 powers of two
// and 8 of its 11 classic buckets, as a handler with varied messages would.
// The durations are what the host measures for an empty handler and a
// no-op publish; the benchmarks report the native buckets this fills.
var spreadSizes = func() [][]byte {
	var out [][]byte
	for k := 0; k <= 32; k++ {
		out = append(out, make([]byte, int(16*math.Pow(2, float64(k)/2))))
	}
	return out
}()

// spread sends every handler of s one message of each spreadSizes size,
// then one more with a publish, so every series exists.
func (s *series) spread(tb testing.TB) {
	tb.Helper()
	for i, h := range s.handlers {
		for _, payload := range spreadSizes {
			msg := message.NewMessage(watermill.NewUUID(), payload)
			msg.SetContext(s.ctxs[i])
			if _, err := h(msg); err != nil {
				tb.Fatal(err)
			}
		}
	}
	s.touch(tb)
}

// nativeBuckets is the mean number of native buckets (positive, negative
// and the zero bucket when used) per histogram series of reg.
func nativeBuckets(tb testing.TB, reg *prometheus.Registry) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	buckets, histograms := 0, 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h == nil || h.Schema == nil {
				continue
			}
			histograms++
			for _, sp := range append(h.GetPositiveSpan(), h.GetNegativeSpan()...) {
				buckets += int(sp.GetLength())
			}
			if h.GetZeroCount() > 0 {
				buckets++
			}
		}
	}
	if histograms == 0 {
		return 0
	}
	return float64(buckets) / float64(histograms)
}

// scrapeFormats are the two expositions a Prometheus asks for: text, what
// Prometheus 2 and a Prometheus 3 without scrape_native_histograms get
// (native buckets are not in it; a native-only histogram shows its count,
// sum and +Inf bucket), and protobuf, what scrape_native_histograms makes
// Prometheus 3 ask for first, the only one carrying native buckets.
var scrapeFormats = []struct{ name, accept string }{
	{"text", "text/plain;version=0.0.4"},
	{"protobuf", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"},
}

// BenchmarkNativeScrape times one /metrics scrape, uncompressed, of n
// handlers' and destinations' series in each histogram form and scrape
// format: ns/op is the scrape's CPU on the serving side, bytes/scrape its
// size, native-buckets/histogram what the spread observations fill.
func BenchmarkNativeScrape(b *testing.B) {
	for _, n := range nativeCardinalities {
		ctxs := handlerContexts(b, n)
		for _, form := range nativeForms {
			reg := prometheus.NewRegistry()
			s := newSeries(ctxs).instrument(b, nativeInstrumentation(form.name, form.opts), reg)
			s.spread(b)
			buckets := nativeBuckets(b, reg)
			handler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
			for _, f := range scrapeFormats {
				b.Run(fmt.Sprintf("series=%d/form=%s/format=%s", n, form.name, f.name), func(b *testing.B) {
					req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
					req.Header.Set("Accept", f.accept)
					scrapeOnce := func() *httptest.ResponseRecorder {
						rec := httptest.NewRecorder()
						handler.ServeHTTP(rec, req)
						return rec
					}
					size := scrapeOnce().Body.Len()
					b.ReportAllocs()
					for b.Loop() {
						scrapeOnce()
					}
					b.ReportMetric(float64(size), "bytes/scrape")
					b.ReportMetric(buckets, "native-buckets/histogram")
				})
			}
			runtime.KeepAlive(s)
		}
	}
}

// BenchmarkNativeCardinality is the cardinality benchmark's steady state
// and heap for each histogram form: one message to each of n handlers in
// turn plus its publish (ns/op, allocs/op), after the spread observations;
// B/handler is the heap the instrumentation keeps per handler and
// destination pair.
func BenchmarkNativeCardinality(b *testing.B) {
	for _, n := range nativeCardinalities {
		ctxs := handlerContexts(b, n)
		for _, form := range nativeForms {
			b.Run(fmt.Sprintf("series=%d/form=%s", n, form.name), func(b *testing.B) {
				s := newSeries(ctxs)
				reg := prometheus.NewRegistry()
				before := heapInUse()
				s.instrument(b, nativeInstrumentation(form.name, form.opts), reg).spread(b)
				heap := heapInUse() - before
				buckets := nativeBuckets(b, reg)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					_ = s.handle(i)
					if i++; i == n {
						i = 0
					}
				}
				b.ReportMetric(float64(heap)/float64(n), "B/handler")
				b.ReportMetric(buckets, "native-buckets/histogram")
			})
		}
	}
}
