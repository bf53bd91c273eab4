package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	promotel "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/wmprom/wmprom"
	"github.com/wmprom/wmprom/otlp"
)

// otlpStrategies are the values Prometheus 3 accepts for
// otlp.translation_strategy (config/config.go of the release CI builds),
// the default first.
var otlpStrategies = []string{
	"UnderscoreEscapingWithSuffixes",
	"UnderscoreEscapingWithoutSuffixes",
	"NoUTF8EscapingWithSuffixes",
	"NoTranslation",
}

// leRelabel is the metric_relabel_configs of docs/otlp.md that spells the
// le label of a scraped histogram as Prometheus's OTLP receiver spells
// pushed ones: Prometheus 3 stores a scraped bound as "16.0" or
// "1.048576e+06" (the OpenMetrics way, whatever the format), a pushed one
// as "16" or "1048576" (the shortest decimal). The first rule drops the
// ".0" of whole numbers below a million; the other two write out the
// exponent forms of whole numbers from a million up to a billion whose
// mantissa has as many decimals as the exponent, which covers FastStream's
// and wmprom's default size buckets. TestOTLPDocs checks that docs/otlp.md
// shows exactly these lines.
const leRelabel = `    metric_relabel_configs:
      - source_labels: [le]
        regex: "([0-9]+)\\.0"
        target_label: le
        replacement: "$1"
      - source_labels: [le]
        regex: "([0-9])\\.([0-9]{6})e\\+06"
        target_label: le
        replacement: "$1$2"
      - source_labels: [le]
        regex: "([0-9])\\.([0-9]{7})e\\+07"
        target_label: le
        replacement: "$1$2"
`

// otlpPromOptions configure a Prometheus 3 receiving OTLP.
type otlpPromOptions struct {
	strategy string   // otlp.translation_strategy; "" for the default
	scrape   []string // targets of a scrape job named "scraped"
	leFix    bool     // leRelabel on the scrape job
}

// startOTLPPrometheus runs Prometheus v with its OTLP receiver on, at
// otlpEndpoint(), and the project's rules, scraping opts.scrape every
// second.
func startOTLPPrometheus(t *testing.T, v prometheusVersion, opts otlpPromOptions) *promServer {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files: [%q]\n", rules)
	if opts.strategy != "" {
		fmt.Fprintf(&b, "otlp:\n  translation_strategy: %s\n", opts.strategy)
	}
	if len(opts.scrape) > 0 {
		b.WriteString("scrape_configs:\n  - job_name: scraped\n    static_configs:\n      - targets:\n")
		for _, target := range opts.scrape {
			fmt.Fprintf(&b, "          - %q\n", target)
		}
		if opts.leFix {
			b.WriteString(leRelabel)
		}
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return runPrometheus(t, v, cfgPath, dir, "--web.enable-otlp-receiver")
}

// otlpEndpoint is the base URL of Prometheus's OTLP receiver, as
// OTEL_EXPORTER_OTLP_ENDPOINT takes it (the exporter adds /v1/metrics).
func (p *promServer) otlpEndpoint() string { return p.base + "/api/v1/otlp" }

// demoOTLPEnv is the environment that makes the demo push to endpoint
// every second, as the service otlpService, instance otlpInstance.
func demoOTLPEnv(endpoint, protocol string) []string {
	return []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint,
		"OTEL_EXPORTER_OTLP_PROTOCOL=" + protocol,
		"OTEL_METRIC_EXPORT_INTERVAL=1000",
		"OTEL_SERVICE_NAME=" + otlpService,
		"OTEL_RESOURCE_ATTRIBUTES=service.instance.id=" + otlpInstance,
	}
}

// The resource of the pushing demo, and the job and instance labels
// Prometheus's OTLP receiver must make of it.
const (
	otlpService  = "orders-otlp"
	otlpInstance = "otlp-demo-1"
)

// TestOTLPTranslationStrategies pushes the demo's metrics over OTLP/HTTP,
// through the recipe of docs/otlp.md, to Prometheus 3's OTLP receiver under
// each translation strategy, and measures what each stores: the names of
// the nine families, the job and instance labels, every query of 22130 and
// of the project's dashboard, and, for a service of known traffic both
// scraped and pushed, that the two paths store the same counts.
func TestOTLPTranslationStrategies(t *testing.T) {
	t.Parallel()
	v := prometheus3(t)
	for _, strategy := range otlpStrategies {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			t.Run("dashboards", func(t *testing.T) {
				t.Parallel()
				prom := startOTLPPrometheus(t, v, otlpPromOptions{strategy: strategy})
				demo := startDemoEnv(t, demoOTLPEnv(prom.otlpEndpoint(), "http/protobuf"), "-brokers", "gochannel", "-rate", "25")
				checkPushedDemo(t, prom, strategy)
				demo.stop(t)
			})
			t.Run("counts", func(t *testing.T) {
				t.Parallel()
				known := newKnownService(t, "counts")
				prom := startOTLPPrometheus(t, v, otlpPromOptions{strategy: strategy, scrape: []string{known.target}, leFix: true})
				known.pushHTTP(t, prom.otlpEndpoint()+"/v1/metrics")
				checkPushedEqualsScraped(t, prom, known, "under translation strategy "+strategy)
			})
		})
	}
}

// wmpromFamilies are the names Prometheus stores for wmprom's nine
// families by default, as a scrape does.
var wmpromFamilies = []string{
	"faststream_published_messages_duration_seconds_bucket",
	"faststream_published_messages_duration_seconds_count",
	"faststream_published_messages_duration_seconds_sum",
	"faststream_published_messages_exceptions_total",
	"faststream_published_messages_total",
	"faststream_received_messages_in_process",
	"faststream_received_messages_size_bytes_bucket",
	"faststream_received_messages_size_bytes_count",
	"faststream_received_messages_size_bytes_sum",
	"faststream_received_messages_total",
	"faststream_received_processed_messages_duration_seconds_bucket",
	"faststream_received_processed_messages_duration_seconds_count",
	"faststream_received_processed_messages_duration_seconds_sum",
	"faststream_received_processed_messages_exceptions_total",
	"faststream_received_processed_messages_total",
}

// checkPushedNames waits until the pushed demo's faststream_ series are
// stored and requires their names to be exactly those a scrape stores:
// the bridge passes client_golang's names, which already end in _total,
// _seconds and _bytes and use only [a-z_], so no strategy has anything to
// add, escape or strip, and it sets no unit for a strategy to append.
func checkPushedNames(t *testing.T, prom *promServer, strategy string) {
	t.Helper()
	// The demo's message age histogram (opt-in in wmprom, on in the demo)
	// is not one of the nine; leave it out of the comparison.
	want := wmpromFamilies
	var got []string
	err := eventually(context.Background(), dataTimeout, time.Second, func() error {
		names, err := prom.labelValues("__name__", fmt.Sprintf(`{job=%q, __name__=~"faststream_.+", __name__!~"faststream_received_messages_age_.+"}`, otlpService))
		if err != nil {
			return err
		}
		got = slices.Sorted(slices.Values(names))
		if !slices.Equal(got, want) {
			return fmt.Errorf("stored names %v, want %v", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("translation strategy %s: %v", strategyName(strategy), err)
	}
	t.Logf("Prometheus %s, translation strategy %s: the pushed demo's %d faststream_ series names are the scraped ones", prom.version, strategyName(strategy), len(got))
}

// strategyName is strategy for the log, "" being the default.
func strategyName(strategy string) string {
	if strategy == "" {
		return otlpStrategies[0] + " (the default)"
	}
	return strategy
}

// checkPushedJob requires the pushed series to carry job and instance from
// OTEL_SERVICE_NAME and service.instance.id, as a scraped target's do.
func checkPushedJob(t *testing.T, prom *promServer, strategy string) {
	t.Helper()
	got, err := prom.query(`count by (job, instance) (faststream_received_messages_total)`, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].labels["job"] != otlpService || got[0].labels["instance"] != otlpInstance {
		t.Fatalf("pushed series by job and instance:%s, want only job=%q, instance=%q", describe(got), otlpService, otlpInstance)
	}
	// The resource's other attributes (the SDK's telemetry.sdk.*) are on
	// target_info, one series per pushing service, their names escaped to
	// underscores or kept with their dots as the strategy says.
	info, err := prom.query(fmt.Sprintf(`target_info{job=%q, instance=%q}`, otlpService, otlpInstance), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := "telemetry_sdk_language"
	if strategy == "NoUTF8EscapingWithSuffixes" || strategy == "NoTranslation" {
		want = "telemetry.sdk.language"
	}
	if len(info) != 1 || info[0].labels[want] != "go" {
		t.Fatalf("target_info of the pushed demo:%s, want one series with %s=\"go\"", describe(info), want)
	}
	t.Logf("Prometheus %s, translation strategy %s: pushed series have job=%q (service.name) and instance=%q (service.instance.id); "+
		"the other resource attributes are on target_info, as %s", prom.version, strategyName(strategy), otlpService, otlpInstance, want)
}

// knownService is a wmprom registry with a known number of messages per
// outcome, served on /metrics (OpenMetrics) and pushed over OTLP on demand.
type knownService struct {
	app    string
	target string // host:port of /metrics
	reg    *prometheus.Registry
}

// The known traffic: messages handled per status (each failing one with an
// exception), and messages published per outcome.
var (
	knownHandled   = map[string]int{"acked": 7, "nacked": 3, "rejected": 2, "skipped": 1, "error": 4}
	knownPublished = map[string]int{"success": 5, "error": 2}
)

// knownSizes gives the payload size of the i-th message handled: small,
// medium and large ones, below and above the million-byte bounds.
func knownSizes(i int) int { return []int{20, 300, 5000, 2_000_000}[i%4] }

// newKnownService records knownHandled and knownPublished into a new
// registry, with native histograms alongside classic when native is set.
func newKnownService(t *testing.T, app string, opts ...wmprom.Option) *knownService {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg, append([]wmprom.Option{wmprom.WithAppName(app), wmprom.WithBroker("gochannel")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, status := range slices.Sorted(maps.Keys(knownHandled)) {
		for range knownHandled[status] {
			var result error
			switch status {
			case "nacked":
				result = wmprom.Nack(errors.New("not yet"))
			case "rejected":
				result = wmprom.Reject(errors.New("bad input"))
			case "skipped":
				result = wmprom.Skip(nil)
			case "error":
				result = fmt.Errorf("handler failed: %w", os.ErrDeadlineExceeded)
			}
			h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, result })
			_, _ = h(message.NewMessage(fmt.Sprint("m", i), make([]byte, knownSizes(i))))
			i++
		}
	}
	pub, err := m.DecoratePublisher(failingPublisher{})
	if err != nil {
		t.Fatal(err)
	}
	for _, outcome := range slices.Sorted(maps.Keys(knownPublished)) {
		for range knownPublished[outcome] {
			msg := message.NewMessage("p", []byte("{}"))
			if outcome == "error" {
				msg.Metadata.Set("fail", "yes")
			}
			_ = pub.Publish("payments", msg)
		}
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	t.Cleanup(srv.Close)
	return &knownService{app: app, target: strings.TrimPrefix(srv.URL, "http://"), reg: reg}
}

// failingPublisher fails the messages whose metadata says fail.
type failingPublisher struct{}

func (failingPublisher) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if m.Metadata.Get("fail") != "" {
			return errors.New("broker unavailable")
		}
	}
	return nil
}

func (failingPublisher) Close() error { return nil }

// pushHTTP pushes the service's registry once over OTLP/HTTP to url, as
// service.name k.app: a MeterProvider whose reader has the bridge over
// otlp.TraceIDGatherer as producer, as otlp.NewReader builds it, flushed
// rather than waited for.
func (k *knownService) pushHTTP(t *testing.T, url string) {
	t.Helper()
	if err := pushOnce(httpExporter(t, url), otlp.TraceIDGatherer(k.reg), k.app); err != nil {
		t.Fatalf("push: %v", err)
	}
}

// pushGRPC is pushHTTP over OTLP/gRPC to endpoint (host:port).
func (k *knownService) pushGRPC(t *testing.T, endpoint string) {
	t.Helper()
	exp, err := otlpmetricgrpc.New(context.Background(), otlpmetricgrpc.WithEndpoint(endpoint), otlpmetricgrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	if err := pushOnce(exp, otlp.TraceIDGatherer(k.reg), k.app); err != nil {
		t.Fatalf("push: %v", err)
	}
}

// httpExporter is an OTLP/HTTP exporter to url.
func httpExporter(t *testing.T, url string) sdkmetric.Exporter {
	t.Helper()
	exp, err := otlpmetrichttp.New(context.Background(), otlpmetrichttp.WithEndpointURL(url))
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

// pushOnce exports what g gathers once through exp, as service.name app,
// instance app-1, and returns the exporter's error.
func pushOnce(exp sdkmetric.Exporter, g prometheus.Gatherer, app string) error {
	res := resource.NewSchemaless(attribute.String("service.name", app), attribute.String("service.instance.id", app+"-1"))
	reader := sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour),
		sdkmetric.WithProducer(promotel.NewMetricProducer(promotel.WithGatherer(g))))
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(reader))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Shutdown exports once more; a failed flush has said what went wrong.
	return errors.Join(provider.ForceFlush(ctx), provider.Shutdown(ctx))
}

// countQueries are what must be equal, series by series, whether the known
// service was scraped or pushed: every count it recorded. %s is the job.
var countQueries = []string{
	`sum by (handler, status) (faststream_received_processed_messages_total{job=%q})`,
	`sum by (handler, exception_type) (faststream_received_processed_messages_exceptions_total{job=%q})`,
	`sum by (handler) (faststream_received_messages_total{job=%q})`,
	`sum by (handler) (faststream_received_messages_in_process{job=%q})`,
	`sum by (destination, status) (faststream_published_messages_total{job=%q})`,
	`sum by (destination, exception_type) (faststream_published_messages_exceptions_total{job=%q})`,
	`sum by (handler, le) (faststream_received_messages_size_bytes_bucket{job=%q})`,
	`sum by (handler) (faststream_received_messages_size_bytes_count{job=%q})`,
	`sum by (handler) (faststream_received_messages_size_bytes_sum{job=%q})`,
	`sum by (handler, le) (faststream_received_processed_messages_duration_seconds_bucket{job=%q})`,
	`sum by (handler) (faststream_received_processed_messages_duration_seconds_count{job=%q})`,
	`sum by (destination, le) (faststream_published_messages_duration_seconds_bucket{job=%q})`,
	`sum by (destination) (faststream_published_messages_duration_seconds_count{job=%q})`,
}

// seriesKey identifies a series by its labels, with le as a number, so that
// "16.0" and "16" are one key.
func seriesKey(labels map[string]string) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(labels)) {
		value := labels[name]
		if name == "le" {
			if f, err := strconv.ParseFloat(value, 64); err == nil {
				value = strconv.FormatFloat(f, 'g', -1, 64)
			}
		}
		parts = append(parts, name+"="+value)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// queryByKey runs expr and returns its series by seriesKey.
func queryByKey(prom *promServer, expr string) (map[string]float64, error) {
	samples, err := prom.query(expr, time.Now())
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, s := range samples {
		out[seriesKey(s.labels)] = s.value
	}
	return out, nil
}

// checkPushedEqualsScraped waits until Prometheus has the known service's
// counts from the scrape (job "scraped") and from the push (job k.app), then
// requires every series of countQueries to be equal on both, and the
// statuses and outcomes to be the known numbers.
func checkPushedEqualsScraped(t *testing.T, prom *promServer, k *knownService, how string) {
	t.Helper()
	handled := 0
	for _, n := range knownHandled {
		handled += n
	}
	err := eventually(context.Background(), 30*time.Second, 250*time.Millisecond, func() error {
		return errors.Join(
			wantValue(prom, `sum(faststream_received_processed_messages_total{job="scraped"})`, float64(handled)),
			wantValue(prom, fmt.Sprintf(`sum(faststream_received_processed_messages_total{job=%q})`, k.app), float64(handled)),
		)
	})
	if err != nil {
		t.Fatalf("known traffic not stored from both paths: %v", err)
	}
	series := 0
	for _, q := range countQueries {
		scraped, err := queryByKey(prom, fmt.Sprintf(q, "scraped"))
		if err != nil {
			t.Fatal(err)
		}
		pushed, err := queryByKey(prom, fmt.Sprintf(q, k.app))
		if err != nil {
			t.Fatal(err)
		}
		if len(scraped) == 0 || !maps.Equal(scraped, pushed) {
			t.Errorf("%s:\nscraped %v\npushed  %v", q, scraped, pushed)
		}
		series += len(scraped)
	}
	for status, n := range knownHandled {
		if err := wantValue(prom, fmt.Sprintf(`sum(faststream_received_processed_messages_total{job=%q, status=%q})`, k.app, status), float64(n)); err != nil {
			t.Error(err)
		}
	}
	for outcome, n := range knownPublished {
		if err := wantValue(prom, fmt.Sprintf(`sum(faststream_published_messages_total{job=%q, status=%q})`, k.app, outcome), float64(n)); err != nil {
			t.Error(err)
		}
	}
	// An exception is counted for a handler's error; Nack and Reject
	// carry their cause to the router's log, not to exception_type.
	exceptions := knownHandled["error"]
	if err := wantValue(prom, fmt.Sprintf(`sum(faststream_received_processed_messages_exceptions_total{job=%q})`, k.app), float64(exceptions)); err != nil {
		t.Error(err)
	}
	if !t.Failed() {
		t.Logf("Prometheus %s, %s: pushed counts equal scraped counts exactly in all %d series of %d count queries "+
			"(statuses %v, published %v, %d exceptions, every bucket)", prom.version, how, series, len(countQueries), knownHandled, knownPublished, exceptions)
	}
}

// leValues are the distinct le values of the bucket series selected, in
// the order of their bounds.
func leValues(t *testing.T, prom *promServer, selector string) []string {
	t.Helper()
	samples, err := prom.query(fmt.Sprintf(`count by (le) (%s)`, selector), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range samples {
		out = append(out, s.labels["le"])
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.ParseFloat(out[i], 64)
		b, _ := strconv.ParseFloat(out[j], 64)
		return a < b || (a == b && out[i] < out[j])
	})
	return out
}

// quantileOf is histogram_quantile's estimate over cumulative buckets
// (bounds ascending, the last +Inf), by linear interpolation in the bucket
// holding the rank, from 0 for the first.
func quantileOf(q float64, bounds []float64, cumulative []float64) float64 {
	total := cumulative[len(cumulative)-1]
	rank := q * total
	lo, below := 0.0, 0.0
	for i, hi := range bounds {
		if cumulative[i] >= rank {
			if math.IsInf(hi, 1) {
				return lo
			}
			return lo + (hi-lo)*(rank-below)/(cumulative[i]-below)
		}
		lo, below = hi, cumulative[i]
	}
	return math.NaN()
}

// otelcolBin is the OpenTelemetry Collector that .ci/install-otelcol
// builds (WMPROM_OTELCOL overrides it); t is skipped, loudly, without it.
func otelcolBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("WMPROM_OTELCOL")
	if bin == "" {
		bin = "/var/cache/wmprom/otelcol/otelcol-wmprom"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("SKIPPED, NOT PASSED: no OpenTelemetry Collector at %s (run .ci/install-otelcol, as .ci/run does, or set WMPROM_OTELCOL): %v", bin, err)
	}
	return bin
}

// collector is a running OpenTelemetry Collector.
type collector struct {
	grpc string // host:port of its OTLP/gRPC receiver
	log  *lockedBuffer
}

// startCollector runs the collector bin with an OTLP receiver (gRPC and
// HTTP) on free loopback ports, the batch processor and the OTLP/HTTP
// exporter to endpoint, and waits until its gRPC port accepts connections.
func startCollector(t *testing.T, bin, endpoint string) *collector {
	t.Helper()
	grpcPort, httpPort := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
      http:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 200ms
exporters:
  otlp_http:
    endpoint: %s
service:
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp_http]
`, grpcPort, httpPort, endpoint)
	cfgPath := filepath.Join(t.TempDir(), "otelcol.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &collector{grpc: fmt.Sprintf("127.0.0.1:%d", grpcPort), log: &lockedBuffer{}}
	done := startProcess(t, "collector", exec.Command(bin, "--config="+cfgPath), c.log)
	err := eventually(context.Background(), 30*time.Second, 100*time.Millisecond, func() error {
		select {
		case <-done:
			return fmt.Errorf("collector exited: %s", c.log.String())
		default:
		}
		conn, err := net.DialTimeout("tcp", c.grpc, time.Second)
		if err != nil {
			return err
		}
		return conn.Close()
	})
	if err != nil {
		t.Fatalf("collector not listening: %v", err)
	}
	return c
}

// TestOTLPCollector puts an OpenTelemetry Collector (OTLP receiver, batch
// processor, OTLP/HTTP exporter) between the pushing services and
// Prometheus 3's OTLP receiver, the services pushing to it over OTLP/gRPC,
// and makes the checks of TestOTLPTranslationStrategies under the default
// strategy.
func TestOTLPCollector(t *testing.T) {
	t.Parallel()
	v := prometheus3(t)
	bin := otelcolBin(t)
	t.Run("dashboards", func(t *testing.T) {
		t.Parallel()
		prom := startOTLPPrometheus(t, v, otlpPromOptions{})
		col := startCollector(t, bin, prom.otlpEndpoint())
		demo := startDemoEnv(t, demoOTLPEnv("http://"+col.grpc, "grpc"), "-brokers", "gochannel", "-rate", "25")
		checkPushedDemo(t, prom, "")
		demo.stop(t)
	})
	t.Run("counts", func(t *testing.T) {
		t.Parallel()
		known := newKnownService(t, "counts")
		prom := startOTLPPrometheus(t, v, otlpPromOptions{scrape: []string{known.target}, leFix: true})
		col := startCollector(t, bin, prom.otlpEndpoint())
		known.pushGRPC(t, col.grpc)
		checkPushedEqualsScraped(t, prom, known, "through the collector over gRPC")
	})
}

// sizeBoundsOTLP are the default size bounds as Prometheus's OTLP receiver
// spells them, with the cumulative counts of two services that each
// received a message of 20 and one of 300 bytes.
var sizeBoundsOTLP = []string{"16", "64", "256", "1024", "4096", "16384", "65536", "262144",
	"1048576", "4194304", "16777216", "+Inf"}

// TestOTLPMixedFleet is issue 23's fleet: one Prometheus 3 scrapes a wmprom
// service (OpenMetrics) and the Python-shaped exposition of TestMixedFleet
// and receives OTLP from another wmprom service, the two Go services having
// received the same messages. It measures the le values stored and what sum
// by (le) and histogram_quantile make of them, without and with the
// leRelabel rules on the scrape job.
func TestOTLPMixedFleet(t *testing.T) {
	t.Parallel()
	v := prometheus3(t)
	python := servePython(t)
	scraped := serveGoSizes(t, true)
	pushed := newSizesRegistry(t, "go-push")
	for _, tc := range []struct {
		name  string
		leFix bool
	}{{"as stored", false}, {"le relabelled", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			prom := startOTLPPrometheus(t, v, otlpPromOptions{scrape: []string{python, scraped}, leFix: tc.leFix})
			if err := pushOnce(httpExporter(t, prom.otlpEndpoint()+"/v1/metrics"), pushed, "go-push"); err != nil {
				t.Fatalf("push: %v", err)
			}
			const count = `sum(faststream_received_messages_size_bytes_count)`
			err := eventually(context.Background(), 30*time.Second, 250*time.Millisecond, func() error {
				return errors.Join(wantValue(prom, count, 5+2+2),
					wantValue(prom, `count(count by (job) (faststream_received_messages_size_bytes_count))`, 2))
			})
			if err != nil {
				t.Fatalf("the three services' sizes not stored: %v", err)
			}

			// What each path stores.
			scrapedLe := leValues(t, prom, `faststream_received_messages_size_bytes_bucket{job="scraped"}`)
			pushedLe := leValues(t, prom, `faststream_received_messages_size_bytes_bucket{job="go-push"}`)
			allLe := leValues(t, prom, `faststream_received_messages_size_bytes_bucket`)
			durLe := leValues(t, prom, `faststream_received_processed_messages_duration_seconds_bucket`)
			wantScraped := sizeBoundsOM
			if tc.leFix {
				wantScraped = sizeBoundsOTLP
			}
			if !slices.Equal(scrapedLe, wantScraped) || !slices.Equal(pushedLe, sizeBoundsOTLP) {
				t.Errorf("size le values: scraped %v, want %v; pushed %v, want %v", scrapedLe, wantScraped, pushedLe, sizeBoundsOTLP)
			}
			wantAll, wantDur := 23, 18 // 12 + 12 - "+Inf"; 15 + 15 - the 12 not whole
			if tc.leFix {
				wantAll, wantDur = 12, 15
			}
			if len(allLe) != wantAll || len(durLe) != wantDur {
				t.Errorf("distinct le values: size %d %v, want %d; processing duration %d %v, want %d", len(allLe), allLe, wantAll, len(durLe), durLe, wantDur)
			}

			// sum by (le), as a heatmap or a bucket table shows it.
			merged := map[float64]float64{}
			for i, le := range sizeBoundsOM {
				f, _ := strconv.ParseFloat(le, 64)
				merged[f] = pythonCounts[i] + 2*goCounts[i]
			}
			const byLe = `sum by (le) (faststream_received_messages_size_bytes_bucket)`
			samples, err := prom.query(byLe, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			numeric := map[float64]float64{}
			for _, s := range samples {
				got[s.labels["le"]] = s.value
				f, _ := strconv.ParseFloat(s.labels["le"], 64)
				numeric[f] += s.value
			}
			if len(got) != wantAll || !maps.Equal(numeric, merged) {
				t.Errorf("%s: %d buckets%s, want %d adding up by bound to %v", byLe, len(got), sortedLe(got), wantAll, merged)
			}

			// histogram_quantile, as 22130's quantile panels run it: it adds
			// up the buckets of one bound whatever their spelling, so the
			// answer is the merged histogram's either way.
			bounds := make([]float64, len(sizeBoundsOM))
			cumulative := make([]float64, len(sizeBoundsOM))
			for i, le := range sizeBoundsOM {
				bounds[i], _ = strconv.ParseFloat(le, 64)
				cumulative[i] = merged[bounds[i]]
			}
			var quantiles []string
			for _, q := range []float64{0.5, 0.99} {
				want := quantileOf(q, bounds, cumulative)
				if err := wantValue(prom, fmt.Sprintf("histogram_quantile(%v, %s)", q, byLe), want); err != nil {
					t.Error(err)
				}
				quantiles = append(quantiles, fmt.Sprintf("p%v=%v", q*100, want))
			}
			t.Logf("Prometheus %s, %s: le values stored: scraped %d, pushed %d, size histogram %d distinct, processing duration %d distinct; "+
				"sum by (le) gives %d buckets:%s; histogram_quantile %s, the merged histogram's",
				prom.version, tc.name, len(scrapedLe), len(pushedLe), len(allLe), len(durLe), len(got), sortedLe(got), strings.Join(quantiles, ", "))
		})
	}
}

// newSizesRegistry is serveGoSizes's registry without the server: a wmprom
// service that has received a message of 20 and one of 300 bytes.
func newSizesRegistry(t *testing.T, app string, opts ...wmprom.Option) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg, append([]wmprom.Option{wmprom.WithAppName(app), wmprom.WithBroker("kafka")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	for _, size := range []int{20, 300} {
		if _, err := h(message.NewMessage("m", make([]byte, size))); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// TestOTLPExemplarsAndNative pushes, through the bridge, what wmprom records
// for a traced message and for native histograms, to Prometheus 3's OTLP
// receiver with exemplar storage, and measures what arrives.
func TestOTLPExemplarsAndNative(t *testing.T) {
	t.Parallel()
	v := prometheus3(t)
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	traced := func(t *testing.T, app string) *prometheus.Registry {
		t.Helper()
		reg := prometheus.NewRegistry()
		m, err := wmprom.New(reg, wmprom.WithAppName(app))
		if err != nil {
			t.Fatal(err)
		}
		msg := message.NewMessage("m", []byte("{}"))
		msg.Metadata.Set("traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
		h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		if _, err := h(msg); err != nil {
			t.Fatal(err)
		}
		return reg
	}

	// The bridge copies the 32 hex digits of trace_id into the OTLP trace
	// id, which must be 16 bytes: Prometheus rejects the whole request, so
	// a service whose messages carry a trace pushes nothing at all.
	t.Run("bridge alone", func(t *testing.T) {
		t.Parallel()
		prom := startOTLPPrometheus(t, v, otlpPromOptions{})
		err := pushOnce(httpExporter(t, prom.otlpEndpoint()+"/v1/metrics"), traced(t, "bridge-alone"), "bridge-alone")
		if err == nil || !strings.Contains(err.Error(), "400") {
			t.Fatalf("push of a 32-byte trace id: %v, want Prometheus to reject it with 400 Bad Request", err)
		}
		got, qerr := prom.query(`count({job="bridge-alone"})`, time.Now())
		if qerr != nil || len(got) != 0 {
			t.Fatalf("count({job=\"bridge-alone\"}):%s %v, want nothing stored", describe(got), qerr)
		}
		first, _, _ := strings.Cut(err.Error(), "\n")
		t.Logf("Prometheus %s: the bridge alone, with a traced message: push rejected, nothing stored: %s", prom.version, first)
	})

	// Through otlp.TraceIDGatherer the exemplars arrive, with the trace id
	// a scrape stores, on every series the message updated.
	t.Run("exemplars", func(t *testing.T) {
		t.Parallel()
		prom := startOTLPPrometheus(t, v, otlpPromOptions{})
		before := time.Now()
		if err := pushOnce(httpExporter(t, prom.otlpEndpoint()+"/v1/metrics"), otlp.TraceIDGatherer(traced(t, "traced")), "traced"); err != nil {
			t.Fatalf("push: %v", err)
		}
		selectors := []string{
			`faststream_received_messages_total{job="traced"}`,
			`faststream_received_processed_messages_total{job="traced", status="acked"}`,
			`faststream_received_processed_messages_duration_seconds_bucket{job="traced"}`,
		}
		err := eventually(context.Background(), 20*time.Second, 200*time.Millisecond, func() error {
			var problems []error
			for _, sel := range selectors {
				ex, err := prom.exemplars(sel, before.Add(-time.Minute), time.Now().Add(time.Minute))
				if err != nil {
					return err
				}
				if len(ex) != 1 || len(ex[0].labels) != 1 || ex[0].labels["trace_id"] != traceID {
					problems = append(problems, fmt.Errorf("%s: exemplars %v, want one with only trace_id=%s", sel, ex, traceID))
				}
			}
			return errors.Join(problems...)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("Prometheus %s: exemplars with trace_id %s pushed through otlp.TraceIDGatherer on all %d series the message updated", prom.version, traceID, len(selectors))
	})

	// A histogram that is native as well as classic in client_golang
	// reaches OTLP as an exponential histogram only (the bridge converts one
	// form), which Prometheus stores as a native histogram: no _bucket
	// series, so 22130's quantile panels have nothing from such a service.
	for _, form := range []struct {
		name string
		opt  wmprom.NativeHistograms
	}{{"native alongside classic", wmprom.AlongsideClassic}, {"native instead of classic", wmprom.InsteadOfClassic}} {
		t.Run(form.name, func(t *testing.T) {
			t.Parallel()
			prom := startOTLPPrometheus(t, v, otlpPromOptions{})
			reg := prometheus.NewRegistry()
			m, err := wmprom.New(reg, wmprom.WithAppName("native"), wmprom.WithNativeHistograms(form.opt))
			if err != nil {
				t.Fatal(err)
			}
			total := handleKnownSizes(t, m)
			if err := pushOnce(httpExporter(t, prom.otlpEndpoint()+"/v1/metrics"), otlp.TraceIDGatherer(reg), "native"); err != nil {
				t.Fatalf("push: %v", err)
			}
			const native = `faststream_received_messages_size_bytes{job="native"}`
			err = eventually(context.Background(), 20*time.Second, 200*time.Millisecond, func() error {
				return wantValue(prom, "histogram_count("+native+")", float64(total))
			})
			if err != nil {
				t.Fatalf("native histogram not stored: %v", err)
			}
			for _, classic := range []string{"_bucket", "_count", "_sum"} {
				got, err := prom.query(fmt.Sprintf(`count(faststream_received_messages_size_bytes%s{job="native"})`, classic), time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 0 {
					t.Errorf("classic %s series stored:%s, want none", classic, describe(got))
				}
			}
			nativeError := math.Pow(2, 1.0/8) - 1
			var quantiles []string
			for _, q := range []struct{ q, truth float64 }{{0.25, 100}, {0.5, 1000}, {0.95, 10000}} {
				n := instantValue(t, prom, fmt.Sprintf("histogram_quantile(%v, %s)", q.q, native), time.Now())
				if math.Abs(n-q.truth) > nativeError*q.truth {
					t.Errorf("p%v: native %v, want within %.1f%% of the true %v", q.q*100, n, nativeError*100, q.truth)
				}
				quantiles = append(quantiles, fmt.Sprintf("p%v=%.1f (true %v)", q.q*100, n, q.truth))
			}
			t.Logf("Prometheus %s, %s: pushed as an exponential histogram, stored native only (no _bucket, _count or _sum series); %s",
				prom.version, form.name, strings.Join(quantiles, ", "))
		})
	}
}

// TestOTLPDocs requires docs/otlp.md to show the le relabelling the tests
// prove, line for line.
func TestOTLPDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/otlp.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), leRelabel) {
		t.Errorf("docs/otlp.md does not show the metric_relabel_configs of leRelabel as they are:\n%s", leRelabel)
	}
}

// TestOTLPRecipe runs the program docs/otlp.md shows (otlp/recipe), as a
// user would after copying it, configured only by OTEL_* variables, against
// Prometheus 3's OTLP receiver: its one message arrives, as FastStream's
// families under the service's job and instance, and 22130's template
// variables find the service and its handler.
func TestOTLPRecipe(t *testing.T) {
	t.Parallel()
	v := prometheus3(t)
	prom := startOTLPPrometheus(t, v, otlpPromOptions{})

	bin := filepath.Join(t.TempDir(), "recipe")
	build := exec.Command("go", "build", "-o", bin, "./recipe")
	build.Dir = "../otlp"
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./recipe: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"OTEL_EXPORTER_OTLP_ENDPOINT="+prom.otlpEndpoint(),
		"OTEL_METRIC_EXPORT_INTERVAL=500",
		"OTEL_RESOURCE_ATTRIBUTES=service.instance.id=orders-1",
	)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("recipe output:\n%s", tail(out.String(), 30))
		}
	})

	const acked = `faststream_received_processed_messages_total{job="orders-service", instance="orders-1", app_name="orders-service", handler="orders", status="acked"}`
	err := eventually(context.Background(), 30*time.Second, 250*time.Millisecond, func() error {
		return errors.Join(
			wantValue(prom, acked, 1),
			wantValue(prom, `faststream_received_messages_total{job="orders-service", handler="orders"}`, 1),
		)
	})
	if err != nil {
		t.Fatalf("the recipe's message did not arrive: %v", err)
	}
	d := loadDashboard(t)
	varQueries, err := d.variableQueries(grafanaVars(testRange))
	if err != nil {
		t.Fatal(err)
	}
	for _, vq := range varQueries {
		if vq.label != "app_name" && vq.label != "handler" {
			continue
		}
		values, err := prom.labelValues(vq.label, vq.selector)
		want := map[string]string{"app_name": "orders-service", "handler": "orders"}[vq.label]
		if err != nil || !slices.Equal(values, []string{want}) {
			t.Errorf("22130's variable %s (%s): %v %v, want [%s]", vq.variable, vq.raw, values, err, want)
		}
	}

	// Ctrl-C: the router stops and the last push goes out.
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("recipe exit after Ctrl-C: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the recipe did not exit within 20 s of Ctrl-C")
	}
	t.Logf("Prometheus %s: the recipe of docs/otlp.md, configured by OTEL_* alone, pushed its message: %s = 1; 22130's app_name and handler variables find it", prom.version, acked)
}

// checkPushedDemo checks what the pushed GoChannel demo stored under
// strategy ("" for the default): FastStream's names, job and instance,
// every query of 22130 and of our dashboard, and our exemplar panels.
func checkPushedDemo(t *testing.T, prom *promServer, strategy string) {
	t.Helper()
	checkPushedNames(t, prom, strategy)
	checkPushedJob(t, prom, strategy)
	checkDashboard(t, loadDashboard(t), prom, []string{"gochannel"})
	d := loadOwnDashboard(t)
	checkDashboard(t, d, prom, []string{"gochannel"})
	checkPanelExemplars(t, d, prom)
}
