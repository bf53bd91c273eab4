package promrules

import (
	"errors"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wmprom/wmprom"
)

// stubPublisher accepts or refuses every publish, so the publish families
// get both a success and an error (and an exception) series.
type stubPublisher struct{ err error }

func (p stubPublisher) Publish(string, ...*message.Message) error { return p.err }
func (p stubPublisher) Close() error                              { return nil }

// exposedSeries runs wmprom once through every code path that creates a
// family, with the optional message age families on, and returns, per
// exposed series name (histograms split into _bucket, _sum and _count), its
// label names, plus each histogram's buckets by its _bucket series name.
func exposedSeries(t *testing.T) (map[string][]string, map[string][]float64) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg, wmprom.WithAppName("demo"), wmprom.WithMessageAge(true))
	if err != nil {
		t.Fatal(err)
	}
	ok := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	fail := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errors.New("boom") })
	for _, h := range []message.HandlerFunc{ok, fail} {
		_, _ = h(message.NewMessage(watermill.NewUUID(), []byte("x")))
	}
	for _, perr := range []error{nil, errors.New("down")} {
		pub, err := m.DecoratePublisher(stubPublisher{err: perr})
		if err != nil {
			t.Fatal(err)
		}
		_ = pub.Publish("payments", message.NewMessage(watermill.NewUUID(), []byte("x")))
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string][]string{}
	buckets := map[string][]float64{}
	for _, mf := range mfs {
		if len(mf.GetMetric()) == 0 {
			continue
		}
		var labels []string
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, lp.GetName())
		}
		sort.Strings(labels)
		name := mf.GetName()
		if mf.GetType() != dto.MetricType_HISTOGRAM {
			series[name] = labels
			continue
		}
		series[name+"_sum"] = labels
		series[name+"_count"] = labels
		series[name+"_bucket"] = sortedWith(labels, "le")
		for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
			buckets[name+"_bucket"] = append(buckets[name+"_bucket"], b.GetUpperBound())
		}
	}
	// 6 counters and gauges + 3 histograms x 3, and the message age
	// families: 2 counters + 1 histogram x 3.
	if len(series) != 20 {
		t.Fatalf("wmprom exposed %d series names, want 20: %v", len(series), series)
	}
	return series, buckets
}

func sortedWith(labels []string, extra string) []string {
	out := append(slices.Clone(labels), extra)
	sort.Strings(out)
	return out
}

var (
	// A metric name that is not part of a recorded name (those contain ':').
	metricName = regexp.MustCompile(`[a-z_:]*faststream_[a-z_:]+`)
	// One input series of a promtool unit test: name{labels}.
	inputSeries = regexp.MustCompile(`series: '([a-z_:]+)\{([^}]*)\}'`)
	labelPair   = regexp.MustCompile(`([a-z_]+)="([^"]*)"`)
)

// TestRulesMatchLibrary ties the rules and their unit tests to what wmprom
// really exports. promtool alone cannot catch a misspelt metric or label:
// the unit tests would feed the same misspelling to the rule and pass while
// the alert never fires in production.
func TestRulesMatchLibrary(t *testing.T) {
	series, buckets := exposedSeries(t)

	for _, f := range ruleFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, name := range metricName.FindAllString(string(b), -1) {
			if strings.Contains(name, ":") {
				continue // a recorded series, defined in the rule files
			}
			n++
			if _, ok := series[name]; !ok {
				t.Errorf("%s uses %s, which wmprom does not export", f, name)
			}
		}
		t.Logf("%s: %d references to wmprom series checked", f, n)
	}

	// Labels Prometheus itself adds at scrape time.
	scrape := map[string]bool{"instance": true, "job": true}
	for _, f := range testFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range inputSeries.FindAllStringSubmatch(string(b), -1) {
			name := m[1]
			if strings.Contains(name, ":") {
				continue
			}
			n++
			want, ok := series[name]
			if !ok {
				t.Errorf("%s feeds %s, which wmprom does not export", f, name)
				continue
			}
			var got []string
			for _, lp := range labelPair.FindAllStringSubmatch(m[2], -1) {
				if lp[1] == "le" {
					checkBucket(t, f, name, lp[2], buckets)
				}
				if !scrape[lp[1]] {
					got = append(got, lp[1])
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s feeds %s with labels %v; wmprom exports it with %v", f, m[0], got, want)
			}
		}
		if n == 0 {
			t.Errorf("%s has no input series of wmprom families", f)
		}
		t.Logf("%s: %d input series checked against wmprom's label sets", f, n)
	}

	// The latency and age alerts mean "more than 1% of messages took
	// longer than the threshold" only when the threshold is a bucket
	// boundary.
	for family, threshold := range map[string]float64{
		"faststream_received_processed_messages_duration_seconds_bucket": 1,
		"faststream_received_messages_age_seconds_bucket":                60,
	} {
		if !slices.Contains(buckets[family], threshold) {
			t.Errorf("the p99 threshold %vs is not one of wmprom's default buckets of %s %v", threshold, family, buckets[family])
		}
	}
}

// checkBucket insists that unit-test buckets are real default buckets, so the
// quantiles computed in the tests are ones production can produce.
func checkBucket(t *testing.T, file, name, le string, buckets map[string][]float64) {
	t.Helper()
	if le == "+Inf" {
		return
	}
	v, err := strconv.ParseFloat(le, 64)
	if err != nil || math.IsInf(v, 0) {
		t.Errorf("%s: %s has an unparsable le=%q", file, name, le)
		return
	}
	if !slices.Contains(buckets[name], v) {
		t.Errorf("%s: %s le=%q is not a default bucket %v", file, name, le, buckets[name])
	}
}
