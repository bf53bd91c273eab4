package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// prometheusVersion is one Prometheus server the end-to-end tests run on.
type prometheusVersion struct {
	name    string // subtest name: prometheus-2 or prometheus-3
	major   int
	bin     string
	env     string // the variable that overrides bin
	install string // how to get it, for the skip message
	version string // what the binary says it is, e.g. 3.16.0; "" when absent
}

// prometheus3Version is the Prometheus 3 release the tests, .ci and the
// compose stack use, from .ci/prometheus3.version, the one place that
// names it.
func prometheus3Version(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../.ci/prometheus3.version")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw))
}

// prometheusVersions are the two Prometheus servers every end-to-end proof
// runs on: Debian's 2.42 at /usr/bin (WMPROM_PROMETHEUS) and the Prometheus 3
// that .ci/install-prometheus3 builds (WMPROM_PROMETHEUS3).
func prometheusVersions(t *testing.T) []prometheusVersion {
	t.Helper()
	versions := []prometheusVersion{
		{name: "prometheus-2", major: 2, bin: "/usr/bin/prometheus", env: "WMPROM_PROMETHEUS",
			install: "install Debian's prometheus package, as .ci/run does"},
		{name: "prometheus-3", major: 3, bin: "/var/cache/wmprom/prom3/prometheus", env: "WMPROM_PROMETHEUS3",
			install: "run .ci/install-prometheus3, as .ci/run does"},
	}
	for i := range versions {
		v := &versions[i]
		if p := os.Getenv(v.env); p != "" {
			v.bin = p
		}
		v.version = binaryVersion(v.bin)
	}
	return versions
}

// binaryVersion runs bin --version and returns the version it prints, or
// "" when it cannot.
func binaryVersion(bin string) string {
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return ""
	}
	m := versionLine.FindSubmatch(out)
	if m == nil {
		return ""
	}
	return string(m[1])
}

var versionLine = regexp.MustCompile(`(?m)^\S+, version (\S+)`)

// require skips t, loudly, when this Prometheus is not installed, and fails
// it when the binary is not the major version its subtest is named for, or,
// for the default Prometheus 3, not the release .ci/prometheus3.version
// names. It logs the version, so a verbose run shows what was proven on.
func (v prometheusVersion) require(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(v.bin); err != nil {
		t.Skipf("SKIPPED, NOT PASSED: no Prometheus %d server at %s (%s, or set %s): %v", v.major, v.bin, v.install, v.env, err)
	}
	major, _, _ := strings.Cut(v.version, ".")
	if major != strconv.Itoa(v.major) {
		t.Fatalf("%s --version says version %q, want Prometheus %d.x", v.bin, v.version, v.major)
	}
	if v.major == 3 && os.Getenv(v.env) == "" {
		if want := prometheus3Version(t); v.version != want {
			t.Fatalf("%s is Prometheus %s, .ci/prometheus3.version says %s: run .ci/install-prometheus3", v.bin, v.version, want)
		}
	}
	t.Logf("Prometheus %s (%s)", v.version, v.bin)
}

// forEachPrometheus runs proof as one parallel subtest per Prometheus
// version, each named for it, and returns when all are done.
func forEachPrometheus(t *testing.T, proof func(t *testing.T, v prometheusVersion)) {
	t.Helper()
	t.Run("on", func(t *testing.T) {
		for _, v := range prometheusVersions(t) {
			t.Run(v.name, func(t *testing.T) {
				t.Parallel()
				v.require(t)
				proof(t, v)
			})
		}
	})
}

// rulesPath is the project's recording and alerting rules.
const rulesPath = "../prometheus/wmprom.rules.yml"

// promServer is a real Prometheus scraping the demo.
type promServer struct {
	base    string // http://127.0.0.1:port
	log     *lockedBuffer
	version string // e.g. 3.16.0, for the log lines that say what was proven on
	api     v1.API // its HTTP API, through client_golang
}

// scrapeOptions are settings of a test Prometheus's scrape job.
type scrapeOptions struct {
	// nativeHistograms sets scrape_native_histograms: true (Prometheus 3),
	// which scrapes protobuf first, the only format carrying native
	// histograms here; alwaysClassic adds always_scrape_classic_histograms:
	// true, which keeps the classic _bucket series of a histogram that is
	// native as well.
	nativeHistograms, alwaysClassic bool
}

// startPrometheus runs Prometheus v on a free loopback port with a fresh
// TSDB and exemplar storage, scraping targets every second (in OpenMetrics
// when a target offers it, as Prometheus prefers it), and waits until it is
// ready.
func startPrometheus(t *testing.T, v prometheusVersion, targets ...string) *promServer {
	t.Helper()
	return startPrometheusWith(t, v, scrapeOptions{}, targets...)
}

// startPrometheusWith is startPrometheus with scrape options.
func startPrometheusWith(t *testing.T, v prometheusVersion, opts scrapeOptions, targets ...string) *promServer {
	t.Helper()
	dir := t.TempDir()
	// The project's rules run too, so that the recorded series the alerts
	// read can be queried as in production.
	rules, err := filepath.Abs(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: wmprom-demo
`, rules)
	if opts.nativeHistograms {
		b.WriteString("    scrape_native_histograms: true\n")
	}
	if opts.alwaysClassic {
		b.WriteString("    always_scrape_classic_histograms: true\n")
	}
	b.WriteString("    static_configs:\n      - targets:\n")
	for _, target := range targets {
		fmt.Fprintf(&b, "          - %q\n", target)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return runPrometheus(t, v, cfgPath, dir)
}

// runPrometheus runs Prometheus v with the configuration at cfgPath, its
// data under dir, and the flags extra besides launchPrometheus' own.
func runPrometheus(t *testing.T, v prometheusVersion, cfgPath, dir string, extra ...string) *promServer {
	t.Helper()
	// The free port may be taken again before Prometheus binds it (any
	// outgoing connection can borrow it): try a few.
	var lastErr error
	for attempt := range 3 {
		p, err := launchPrometheus(t, v.bin, cfgPath, filepath.Join(dir, fmt.Sprint("data", attempt)), freePort(t), extra...)
		if err == nil {
			p.version = v.version
			return p
		}
		lastErr = err
	}
	t.Fatalf("prometheus %s not ready: %v", v.version, lastErr)
	return nil
}

// launchPrometheus starts Prometheus on port and waits until it is ready.
func launchPrometheus(t *testing.T, bin, cfgPath, dataDir string, port int, extra ...string) (*promServer, error) {
	p := &promServer{base: fmt.Sprintf("http://127.0.0.1:%d", port), log: &lockedBuffer{}}
	client, err := api.NewClient(api.Config{Address: p.base})
	if err != nil {
		t.Fatalf("prometheus API client: %v", err)
	}
	p.api = v1.NewAPI(client)
	cmd := exec.Command(bin, append([]string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + dataDir,
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--log.level=warn",
		// As in the compose stack: keep the exemplars the OpenMetrics
		// scrapes carry, for /api/v1/query_exemplars. Still a feature
		// flag in Prometheus 3 (native-histograms, by contrast, became a
		// no-op there: the scrape config turns them on).
		"--enable-feature=exemplar-storage",
	}, extra...)...)
	done := startProcess(t, "prometheus", cmd, p.log)
	err = eventually(context.Background(), 30*time.Second, 100*time.Millisecond, func() error {
		select {
		case <-done:
			return fmt.Errorf("prometheus exited: %s", p.log.String())
		default:
		}
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// startProcess starts cmd with its output in log, and stops it when the
// test ends (SIGTERM, then SIGKILL after 15 s), showing the end of its
// log if the test failed. done closes when the process has exited.
func startProcess(t *testing.T, name string, cmd *exec.Cmd, log *lockedBuffer) (done <-chan struct{}) {
	t.Helper()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, tail(log.String(), 30))
		}
	})
	return exited
}

// sample is one series of an instant query result.
type sample struct {
	labels map[string]string
	value  float64
}

// query evaluates expr at instant at.
func (p *promServer) query(expr string, at time.Time) ([]sample, error) {
	// at truncated to the millisecond, Prometheus's resolution: given
	// nanoseconds, Prometheus would round them, possibly up.
	value, _, err := p.api.Query(context.Background(), expr, time.UnixMilli(at.UnixMilli()))
	if err != nil {
		return nil, fmt.Errorf("/api/v1/query: %w", err)
	}
	switch value := value.(type) {
	case model.Vector:
		out := make([]sample, 0, len(value))
		for _, s := range value {
			if s.Histogram != nil {
				return nil, fmt.Errorf("sample of %v is a native histogram, not a float", s.Metric)
			}
			out = append(out, sample{labels: labelMap(s.Metric), value: float64(s.Value)})
		}
		return out, nil
	case *model.Scalar:
		return []sample{{value: float64(value.Value)}}, nil
	}
	return nil, fmt.Errorf("unexpected result type %q for %s", value.Type(), expr)
}

// labelMap is a label set as the tests read it.
func labelMap[M ~map[model.LabelName]model.LabelValue](labels M) map[string]string {
	out := make(map[string]string, len(labels))
	for name, value := range labels {
		out[string(name)] = string(value)
	}
	return out
}

// labelValues is what Grafana's label_values(selector, label) runs.
func (p *promServer) labelValues(label, selector string) ([]string, error) {
	var matches []string
	if selector != "" {
		matches = []string{selector}
	}
	values, _, err := p.api.LabelValues(context.Background(), label, matches, time.Time{}, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("/api/v1/label/%s/values: %w", label, err)
	}
	out := make([]string, 0, len(values))
	for _, v := range values {
		out = append(out, string(v))
	}
	return out, nil
}

// finiteCount counts the samples that a Grafana panel would draw.
func finiteCount(samples []sample) int {
	n := 0
	for _, s := range samples {
		if !math.IsNaN(s.value) && !math.IsInf(s.value, 0) {
			n++
		}
	}
	return n
}

func describe(samples []sample) string {
	var b strings.Builder
	for i, s := range samples {
		if i == 5 {
			fmt.Fprintf(&b, " ... (%d series)", len(samples))
			break
		}
		fmt.Fprintf(&b, " %v=%v", s.labels, s.value)
	}
	return b.String()
}

// exemplar is one exemplar Prometheus stored, with the series it belongs to.
type exemplar struct {
	series  map[string]string
	labels  map[string]string
	value   float64
	seconds float64 // its timestamp
}

// exemplars runs /api/v1/query_exemplars for the series selected by expr
// over [start, end].
func (p *promServer) exemplars(expr string, start, end time.Time) ([]exemplar, error) {
	// Truncated to the millisecond, as in query.
	data, err := p.api.QueryExemplars(context.Background(), expr, time.UnixMilli(start.UnixMilli()), time.UnixMilli(end.UnixMilli()))
	if err != nil {
		return nil, fmt.Errorf("/api/v1/query_exemplars: %w", err)
	}
	var out []exemplar
	for _, s := range data {
		for _, e := range s.Exemplars {
			out = append(out, exemplar{series: labelMap(s.SeriesLabels), labels: labelMap(e.Labels), value: float64(e.Value), seconds: float64(e.Timestamp) / 1000})
		}
	}
	return out, nil
}

// majorVersion is the major version of the Prometheus server, whose
// ingestion of OpenMetrics differs between 2 and 3 (see checkOpenMetricsLe).
func (p *promServer) majorVersion() (int, error) {
	info, err := p.api.Buildinfo(context.Background())
	if err != nil {
		return 0, fmt.Errorf("/api/v1/status/buildinfo: %w", err)
	}
	major, _, _ := strings.Cut(info.Version, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return 0, fmt.Errorf("prometheus version %q: %w", info.Version, err)
	}
	return n, nil
}
