package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wmprom/wmprom"
)

// nativeScrape is what a Prometheus 3 needs to store wmprom's native
// histograms and keep the classic series dashboard 22130 reads.
var nativeScrape = scrapeOptions{nativeHistograms: true, alwaysClassic: true}

// prometheus3 returns the Prometheus 3 of prometheusVersions, skipping t
// loudly when it is absent: native histograms are proven on Prometheus 3,
// where they are stable.
func prometheus3(t *testing.T) prometheusVersion {
	t.Helper()
	for _, v := range prometheusVersions(t) {
		if v.major == 3 {
			v.require(t)
			return v
		}
	}
	t.Fatal("no Prometheus 3 among the versions")
	return prometheusVersion{}
}

// TestNativeHistograms runs the demo with each -native-histograms setting
// against a Prometheus 3 with the scrape settings that go with it, and
// checks the dashboards on what it stores.
func TestNativeHistograms(t *testing.T) {
	t.Parallel()
	v := prometheus3(t)
	gochannel := []string{"gochannel"}

	// The compose stack's default: classic histograms exposed, Prometheus
	// scraping protobuf for native ones. Nothing is lost: both dashboards
	// and the exemplars work as on an OpenMetrics scrape.
	t.Run("classic exposed, native scraped", func(t *testing.T) {
		t.Parallel()
		demo := startDemo(t, "-brokers", "gochannel", "-rate", "25")
		prom := startPrometheusWith(t, v, nativeScrape, demo.hostPort())
		checkStoredForms(t, prom, false, true)
		checkDashboard(t, loadDashboard(t), prom, gochannel)
		d := loadOwnDashboard(t)
		checkDashboard(t, d, prom, gochannel)
		checkPanelExemplars(t, d, prom)
		checkDemoExemplars(t, prom, gochannel)
		demo.stop(t)
	})

	// Both forms: every query of 22130 still has data, and the native
	// quantiles agree with the classic ones.
	t.Run("alongside classic", func(t *testing.T) {
		t.Parallel()
		demo := startDemo(t, "-brokers", "gochannel", "-rate", "25", "-native-histograms", "alongside")
		prom := startPrometheusWith(t, v, nativeScrape, demo.hostPort())
		checkStoredForms(t, prom, true, true)
		checkDashboard(t, loadDashboard(t), prom, gochannel)
		d := loadOwnDashboard(t)
		checkDashboard(t, d, prom, gochannel)
		checkPanelExemplars(t, d, prom)
		checkDemoQuantilesAgree(t, prom)
		demo.stop(t)
	})

	// Native only: our dashboard's latency and size panels read the native
	// series; 22130's three quantile panels, which read _bucket, go blank.
	t.Run("instead of classic", func(t *testing.T) {
		t.Parallel()
		demo := startDemo(t, "-brokers", "gochannel", "-rate", "25", "-native-histograms", "instead")
		prom := startPrometheusWith(t, v, scrapeOptions{nativeHistograms: true}, demo.hostPort())
		checkStoredForms(t, prom, true, false)
		d := loadOwnDashboard(t)
		checkDashboard(t, d, prom, gochannel)
		checkPanelExemplars(t, d, prom)
		checkBucketPanelsBlank(t, loadDashboard(t), prom)
		demo.stop(t)
	})

	t.Run("quantiles of known sizes", func(t *testing.T) {
		t.Parallel()
		checkKnownQuantiles(t, v)
	})
}

// histogramFamilies are wmprom's three histograms.
var histogramFamilies = []string{
	"faststream_received_messages_size_bytes",
	"faststream_received_processed_messages_duration_seconds",
	"faststream_published_messages_duration_seconds",
}

// checkStoredForms waits until Prometheus holds the demo's three histograms
// and requires the native series (the family name itself, a histogram
// sample) present or absent as native says, and the classic _bucket and
// _count series as classic says.
func checkStoredForms(t *testing.T, prom *promServer, native, classic bool) {
	t.Helper()
	err := eventually(context.Background(), dataTimeout, time.Second, func() error {
		var problems []error
		for _, f := range histogramFamilies {
			for _, form := range []struct {
				expr string
				want bool
			}{
				{fmt.Sprintf(`count(histogram_count(%s{app_name="wmprom-demo"}))`, f), native},
				{fmt.Sprintf(`count(%s_bucket{app_name="wmprom-demo"})`, f), classic},
				{fmt.Sprintf(`count(%s_count{app_name="wmprom-demo"})`, f), classic},
			} {
				got, err := prom.query(form.expr, time.Now())
				if err != nil {
					return err
				}
				if has := finiteCount(got) > 0; has != form.want {
					problems = append(problems, fmt.Errorf("%s gives%s, want series: %v", form.expr, describe(got), form.want))
				}
			}
		}
		return errors.Join(problems...)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Prometheus %s stored: native histograms %v, classic _bucket series %v, for all %d histogram families", prom.version, native, classic, len(histogramFamilies))
}

// checkDemoQuantilesAgree compares, per handler and destination, the
// median and p99 of the demo's duration and size histograms computed from
// the native series with those from the classic buckets.
//
// Both are computed from the histograms as scraped, not from their rate:
// rate() extrapolates each classic bucket series on its own (how far it
// extrapolates depends on the series' first value), the native histogram
// as a whole, so on the few scrapes of a young demo the two describe
// different populations, and their medians legitimately differ by more
// than a bucket. Since the two forms are collected one after the other,
// the check waits for a scrape in which every series counts as many
// observations in both: then both describe the same messages, and the
// sample at the quantile's rank lies in the classic bucket (lo, hi] of
// the classic estimate and in the native bucket of the native one. A
// native bucket is at most 2^(1/8) wide (the bucket factor 1.1 gives
// schema 3), so the native estimate lies within (lo/2^(1/8), hi*2^(1/8)].
func checkDemoQuantilesAgree(t *testing.T, prom *promServer) {
	t.Helper()
	bounds := map[string][]float64{
		"faststream_received_messages_size_bytes":                 {16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216},
		"faststream_received_processed_messages_duration_seconds": {.005, .01, .025, .05, .075, .1, .25, .5, .75, 1, 2.5, 5, 7.5, 10},
		"faststream_published_messages_duration_seconds":          {.005, .01, .025, .05, .075, .1, .25, .5, .75, 1, 2.5, 5, 7.5, 10},
	}
	by := map[string]string{
		"faststream_received_messages_size_bytes":                 "handler",
		"faststream_received_processed_messages_duration_seconds": "handler",
		"faststream_published_messages_duration_seconds":          "destination",
	}
	var at time.Time
	err := eventually(context.Background(), dataTimeout, time.Second, func() error {
		at = time.Now()
		for _, f := range histogramFamilies {
			native, err := prom.query(fmt.Sprintf(`sum by (%s) (histogram_count(%s))`, by[f], f), at)
			if err != nil {
				return err
			}
			classic, err := prom.query(fmt.Sprintf(`sum by (%s) (%s_count)`, by[f], f), at)
			if err != nil {
				return err
			}
			if err := sameCounts(native, classic, by[f]); err != nil {
				return fmt.Errorf("%s at %s: %w", f, at.Format(time.RFC3339Nano), err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	widest := math.Pow(2, 1.0/8)
	checked := 0
	for _, f := range histogramFamilies {
		for _, q := range []float64{0.5, 0.99} {
			native, err := prom.query(fmt.Sprintf(`histogram_quantile(%v, sum by (%s) (%s))`, q, by[f], f), at)
			if err != nil {
				t.Fatal(err)
			}
			classic, err := prom.query(fmt.Sprintf(`histogram_quantile(%v, sum by (%s, le) (%s_bucket))`, q, by[f], f), at)
			if err != nil {
				t.Fatal(err)
			}
			classicBy := map[string]float64{}
			for _, s := range classic {
				classicBy[s.labels[by[f]]] = s.value
			}
			if finiteCount(native) != len(demoTopics([]string{"gochannel"})) || len(classicBy) != len(native) {
				t.Fatalf("%s p%v: native%s, classic%s: want a finite value for each of the 3 %ss in both", f, q*100, describe(native), describe(classic), by[f])
			}
			for _, n := range native {
				key := n.labels[by[f]]
				c, ok := classicBy[key]
				if !ok {
					t.Errorf("%s p%v: %s %s has a native quantile and no classic one", f, q*100, by[f], key)
					continue
				}
				lo, hi := classicBucket(bounds[f], c)
				if c == slices.Max(bounds[f]) {
					// histogram_quantile answers the highest finite bound
					// for a rank in the +Inf bucket.
					hi = math.Inf(1)
				}
				if n.value <= lo/widest || n.value > hi*widest {
					t.Errorf("%s p%v, %s %s: native %v, classic %v in bucket (%v, %v]: want the native one in (%v, %v]", f, q*100, by[f], key, n.value, c, lo, hi, lo/widest, hi*widest)
				}
				checked++
			}
		}
	}
	t.Logf("Prometheus %s: native and classic quantiles of the same observations agree within the classic bucket for %d (family, quantile, series) triples", prom.version, checked)
}

// sameCounts requires the same series, by label, with the same values in
// both vectors.
func sameCounts(native, classic []sample, label string) error {
	counts := map[string]float64{}
	for _, s := range classic {
		counts[s.labels[label]] = s.value
	}
	if len(native) == 0 || len(native) != len(counts) {
		return fmt.Errorf("native counts%s, classic counts%s: want the same series in both", describe(native), describe(classic))
	}
	for _, s := range native {
		if c, ok := counts[s.labels[label]]; !ok || c != s.value {
			return fmt.Errorf("%s %s: native count %v, classic count %v", label, s.labels[label], s.value, c)
		}
	}
	return nil
}

// classicBucket returns the classic bucket (lo, hi] that holds v.
func classicBucket(bounds []float64, v float64) (lo, hi float64) {
	for _, b := range bounds {
		if v <= b {
			return lo, b
		}
		lo = b
	}
	return lo, math.Inf(1)
}

// checkBucketPanelsBlank requires each panel of d that reads _bucket to
// have no data, and counts them: what a native-only service costs
// dashboard 22130.
func checkBucketPanelsBlank(t *testing.T, d *dashboard, prom *promServer) {
	t.Helper()
	panels, err := d.panelQueries(grafanaVars(testRange))
	if err != nil {
		t.Fatal(err)
	}
	var blank []string
	for _, q := range panels {
		if !strings.Contains(q.expr, "_bucket") {
			continue
		}
		got, err := prom.query(q.expr, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if finiteCount(got) != 0 {
			t.Errorf("panel %q has data%s from a native-only service", q.panel, describe(got))
		}
		blank = append(blank, q.panel)
	}
	if len(blank) != 3 {
		t.Errorf("dashboard %s: %d panels read _bucket (%q), want its 3 quantile panels", d.name, len(blank), blank)
	}
	t.Logf("Prometheus %s, dashboard %s with native histograms only: its %d _bucket panels are blank: %q", prom.version, d.name, len(blank), blank)
}

// sizeObservations are known message sizes: 40 of 100 bytes, 50 of 1,000
// and 10 of 10,000.
var sizeObservations = map[int]int{100: 40, 1000: 50, 10000: 10}

// handleKnownSizes sends messages of sizeObservations through m's
// middleware and returns how many.
func handleKnownSizes(t *testing.T, m *wmprom.Metrics) (total int) {
	t.Helper()
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	for size, n := range sizeObservations {
		for range n {
			if _, err := h(message.NewMessage("m", make([]byte, size))); err != nil {
				t.Fatal(err)
			}
		}
		total += n
	}
	return total
}

// checkKnownQuantiles sends messages of known sizes through wmprom with
// native histograms alongside classic, scrapes them with a Prometheus 3
// that stores both, and compares each quantile from the native series and
// from the classic buckets with the true one: the classic estimate lies in
// the classic bucket of the true value, the native one within a native
// bucket (9%) of it, so the two agree within the classic bucket's width.
func checkKnownQuantiles(t *testing.T, v prometheusVersion) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg, wmprom.WithAppName("quantiles"), wmprom.WithBroker("gochannel"),
		wmprom.WithNativeHistograms(wmprom.AlongsideClassic))
	if err != nil {
		t.Fatal(err)
	}
	total := handleKnownSizes(t, m)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	t.Cleanup(srv.Close)
	prom := startPrometheusWith(t, v, nativeScrape, strings.TrimPrefix(srv.URL, "http://"))

	const native = `faststream_received_messages_size_bytes{app_name="quantiles"}`
	const classic = `sum by (le) (faststream_received_messages_size_bytes_bucket{app_name="quantiles"})`
	err = eventually(context.Background(), 30*time.Second, 250*time.Millisecond, func() error {
		return errors.Join(
			wantValue(prom, "histogram_count("+native+")", float64(total)),
			wantValue(prom, `faststream_received_messages_size_bytes_bucket{app_name="quantiles", le="+Inf"}`, float64(total)),
		)
	})
	if err != nil {
		t.Fatalf("both forms of %d messages not scraped: %v", total, err)
	}
	sizeBounds := []float64{16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216}
	nativeError := math.Pow(2, 1.0/8) - 1
	// True quantiles of the observations, by rank: 40 at 100, then 50 at
	// 1,000, then 10 at 10,000.
	for q, truth := range map[float64]float64{0.25: 100, 0.5: 1000, 0.95: 10000} {
		at := time.Now()
		n := instantValue(t, prom, fmt.Sprintf("histogram_quantile(%v, %s)", q, native), at)
		c := instantValue(t, prom, fmt.Sprintf("histogram_quantile(%v, %s)", q, classic), at)
		lo, hi := classicBucket(sizeBounds, truth)
		if c <= lo || c > hi {
			t.Errorf("p%v: classic %v, want within the classic bucket (%v, %v] of the true %v", q*100, c, lo, hi, truth)
		}
		if math.Abs(n-truth) > nativeError*truth {
			t.Errorf("p%v: native %v, want within %.1f%% of the true %v", q*100, n, nativeError*100, truth)
		}
		if math.Abs(n-c) > hi-lo {
			t.Errorf("p%v: native %v and classic %v differ by more than the classic bucket's width %v", q*100, n, c, hi-lo)
		}
		t.Logf("Prometheus %s, p%v of known sizes: true %v, native %.1f, classic %.1f (classic bucket (%v, %v])", prom.version, q*100, truth, n, c, lo, hi)
	}
}

// instantValue is the value of the one series expr gives at at.
func instantValue(t *testing.T, prom *promServer, expr string, at time.Time) float64 {
	t.Helper()
	got, err := prom.query(expr, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%s gives%s, want one series", expr, describe(got))
	}
	return got[0].value
}

// TestOwnDashboardQuantilesNativeFirst pins the shape of every quantile
// query of grafana/dashboards/wmprom.json over the duration and size
// histograms: the native series first, the
// classic buckets, grouped by the same labels plus le, where the native
// series are absent. One side alone would blank the panel for services
// exposing only the other form.
func TestOwnDashboardQuantilesNativeFirst(t *testing.T) {
	d := loadOwnDashboard(t)
	panels, err := d.panelQueries(grafanaVars("1m"))
	if err != nil {
		t.Fatal(err)
	}
	quantiles := 0
	for _, q := range panels {
		if !strings.Contains(q.expr, "histogram_quantile") || !readsNativeCapable(q.expr) {
			continue
		}
		quantiles++
		m := nativeFirstRE.FindStringSubmatch(q.expr)
		if m == nil || m[1] != m[5] || m[2] != m[6] || m[3] != m[7] || m[4] != m[8] {
			t.Errorf("panel %q: %s\nwant histogram_quantile(q, sum by(g) (rate(x[w]))) or histogram_quantile(q, sum by(g, le) (rate(x_bucket[w]))) with the same q, g, selector and w", q.panel, q.expr)
		}
	}
	if quantiles != 6 {
		t.Errorf("found %d quantile queries, want the 6 of the latency and size panels", quantiles)
	}
}

// readsNativeCapable says whether expr reads one of the three histograms
// WithNativeHistograms makes native (the message age histogram stays
// classic).
func readsNativeCapable(expr string) bool {
	for _, f := range histogramFamilies {
		if strings.Contains(expr, strings.TrimPrefix(f, "faststream")+"_bucket") {
			return true
		}
	}
	return false
}

// nativeFirstRE matches the native-first quantile query; its groups are
// the quantile, grouping, name and rest of the selector with the window, of
// each side.
var nativeFirstRE = regexp.MustCompile(`^histogram_quantile\(([0-9.]+), sum by\(([a-z_, ]+)\) \(rate\(\{__name__=~"([a-z_]+)", ([^}]*\}\[[0-9a-z]+\])\)\)\) or ` +
	`histogram_quantile\(([0-9.]+), sum by\(([a-z_, ]+), le\) \(rate\(\{__name__=~"([a-z_]+)_bucket", ([^}]*\}\[[0-9a-z]+\])\)\)\)$`)
