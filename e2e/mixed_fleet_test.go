package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wmprom/wmprom"
)

// pythonExposition is what a FastStream service's Python prometheus_client
// serves for the received size histogram: five messages (three of 100
// bytes, two of 5,000), bucket bounds spelt le="16.0" ... le="262144.0",
// le="1.048576e+06" (Python's floatToGoString).
const pythonExposition = "testdata/python-faststream.prom"

// sizeBoundsOM are the default size bounds as OpenMetrics spells them (and
// Python does): integers with ".0", large ones in exponent form.
var sizeBoundsOM = []string{"16.0", "64.0", "256.0", "1024.0", "4096.0", "16384.0", "65536.0", "262144.0",
	"1.048576e+06", "4.194304e+06", "1.6777216e+07", "+Inf"}

// Cumulative bucket counts over sizeBoundsOM: the Python file's, and the Go
// service's after its two messages of 20 and 300 bytes.
var (
	pythonCounts = []float64{0, 0, 3, 3, 3, 5, 5, 5, 5, 5, 5, 5}
	goCounts     = []float64{0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2}
)

// TestMixedFleet scrapes a Python-shaped exposition (a static file) next to
// a wmprom service, once serving OpenMetrics (the recommended setup) and
// once the classic text format only, and measures what dashboard 22130's
// sum by (le) gives on each Prometheus: Prometheus 2 stores le as each
// target spells it, so the Go text format's le="16" and Python's le="16.0"
// become two buckets of one bound, while OpenMetrics spells them as Python
// does; Prometheus 3 rewrites every le the OpenMetrics way, so all merge.
// histogram_quantile gives the same answer in every case; what splits is
// anything that shows buckets one by one, such as a heatmap.
func TestMixedFleet(t *testing.T) {
	t.Parallel()
	python := servePython(t)
	goOM := serveGoSizes(t, true)
	goText := serveGoSizes(t, false)
	forEachPrometheus(t, func(t *testing.T, v prometheusVersion) {
		prom := startPrometheus(t, v, python, goOM, goText)
		for _, tc := range []struct {
			name, goTarget string
			merged         bool
		}{
			{"openmetrics", goOM, true},
			{"text", goText, v.major >= 3},
		} {
			want := mergedBuckets()
			if !tc.merged {
				want = splitBuckets()
			}
			expr := fmt.Sprintf(`sum by (le) (faststream_received_messages_size_bytes_bucket{instance=~%q})`, python+"|"+tc.goTarget)
			var got map[string]float64
			err := eventually(context.Background(), 30*time.Second, 250*time.Millisecond, func() error {
				samples, err := prom.query(expr, time.Now())
				if err != nil {
					return err
				}
				got = map[string]float64{}
				for _, s := range samples {
					got[s.labels["le"]] = s.value
				}
				if !maps.Equal(got, want) {
					return fmt.Errorf("%s:\n got %v\nwant %v", expr, sortedLe(got), sortedLe(want))
				}
				return nil
			})
			if err != nil {
				t.Fatalf("Go service serving %s: %v", tc.name, err)
			}
			t.Logf("Prometheus %s, Python + Go serving %s: sum by (le) gives %d buckets: %v", v.version, tc.name, len(got), sortedLe(got))

			// histogram_quantile adds up buckets whose le parses to the
			// same number, so the median is right even from split
			// buckets: rank 3.5 of 7 falls in (64, 256], which holds
			// messages 2 to 4, so 64 + 192 * 2.5/3 = 224.
			q := "histogram_quantile(0.5, " + expr + ")"
			if err := wantValue(prom, q, 224); err != nil {
				t.Errorf("Go service serving %s: %v", tc.name, err)
			}
		}
	})
}

// mergedBuckets is sum by (le) when both services' bounds are spelt alike.
func mergedBuckets() map[string]float64 {
	out := map[string]float64{}
	for i, le := range sizeBoundsOM {
		out[le] = pythonCounts[i] + goCounts[i]
	}
	return out
}

// splitBuckets is sum by (le) when Python writes "16.0" and Go's text
// format "16": the integer bounds written without exponent come apart, one
// bucket per spelling; the exponent forms and +Inf are spelt alike.
func splitBuckets() map[string]float64 {
	out := map[string]float64{}
	for i, le := range sizeBoundsOM {
		goLe := strings.TrimSuffix(le, ".0")
		if goLe == le {
			out[le] = pythonCounts[i] + goCounts[i]
			continue
		}
		out[le], out[goLe] = pythonCounts[i], goCounts[i]
	}
	return out
}

func sortedLe(m map[string]float64) string {
	var b strings.Builder
	for _, le := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, " %s=%v", le, m[le])
	}
	return b.String()
}

// servePython serves pythonExposition as Python's client does (its content
// type) and returns host:port.
func servePython(t *testing.T) string {
	t.Helper()
	body, err := os.ReadFile(pythonExposition)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// serveGoSizes serves a wmprom registry that has received a message of 20
// and one of 300 bytes, in OpenMetrics to scrapers asking for it when
// openMetrics is set, else in the classic text format only; host:port.
func serveGoSizes(t *testing.T, openMetrics bool) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg, wmprom.WithAppName("go-svc"), wmprom.WithBroker("kafka"))
	if err != nil {
		t.Fatal(err)
	}
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	for _, size := range []int{20, 300} {
		if _, err := h(message.NewMessage("m", make([]byte, size))); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: openMetrics}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
