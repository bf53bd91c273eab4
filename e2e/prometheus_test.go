package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// prometheusBinary is Debian's prometheus package; .ci/run installs it.
const prometheusBinary = "/usr/bin/prometheus"

// rulesPath is the project's recording and alerting rules.
const rulesPath = "../prometheus/wmprom.rules.yml"

// promServer is a real Prometheus scraping the demo.
type promServer struct {
	base string // http://127.0.0.1:port
	log  *lockedBuffer
}

// startPrometheus runs Prometheus on a free loopback port with a fresh TSDB
// and exemplar storage, scraping target every second (in OpenMetrics when the
// target offers it, as Prometheus prefers it), and waits until it is ready.
func startPrometheus(t *testing.T, target string) *promServer {
	t.Helper()
	bin := prometheusBinary
	if p := os.Getenv("WMPROM_PROMETHEUS"); p != "" {
		bin = p
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("SKIPPED, NOT PASSED: no Prometheus server at %s (install Debian's prometheus package, as .ci/run does, or set WMPROM_PROMETHEUS): %v", bin, err)
	}
	dir := t.TempDir()
	// The project's rules run too, so that the recorded series the alerts
	// read can be queried as in production.
	rules, err := filepath.Abs(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: wmprom-demo
    static_configs:
      - targets: [%q]
`, rules, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// The free port may be taken again before Prometheus binds it (any
	// outgoing connection can borrow it): try a few.
	var lastErr error
	for attempt := range 3 {
		p, err := launchPrometheus(t, bin, cfgPath, filepath.Join(dir, fmt.Sprint("data", attempt)), freePort(t))
		if err == nil {
			return p
		}
		lastErr = err
	}
	t.Fatalf("prometheus not ready: %v", lastErr)
	return nil
}

// launchPrometheus starts Prometheus on port and waits until it is ready.
func launchPrometheus(t *testing.T, bin, cfgPath, dataDir string, port int) (*promServer, error) {
	p := &promServer{base: fmt.Sprintf("http://127.0.0.1:%d", port), log: &lockedBuffer{}}
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+dataDir,
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--log.level=warn",
		// As in the compose stack: keep the exemplars the OpenMetrics
		// scrapes carry, for /api/v1/query_exemplars.
		"--enable-feature=exemplar-storage",
	)
	cmd.Stdout = p.log
	cmd.Stderr = p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", tail(p.log.String(), 30))
		}
	})
	err := eventually(context.Background(), 30*time.Second, 100*time.Millisecond, func() error {
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

// sample is one series of an instant query result.
type sample struct {
	labels map[string]string
	value  float64
}

// apiGet calls a Prometheus HTTP API endpoint and decodes its data field.
func (p *promServer) apiGet(path string, params url.Values, data any) error {
	resp, err := http.Get(p.base + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var envelope struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil {
		return fmt.Errorf("%s: %s: undecodable answer %q", path, resp.Status, body)
	}
	if envelope.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, envelope.ErrorType, envelope.Error)
	}
	return json.Unmarshal(envelope.Data, data)
}

// query evaluates expr at instant at.
func (p *promServer) query(expr string, at time.Time) ([]sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	params := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	if err := p.apiGet("/api/v1/query", params, &data); err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &vec); err != nil {
			return nil, err
		}
		out := make([]sample, 0, len(vec))
		for _, s := range vec {
			v, err := parseValue(s.Value[1])
			if err != nil {
				return nil, err
			}
			out = append(out, sample{labels: s.Metric, value: v})
		}
		return out, nil
	case "scalar":
		var sc [2]any
		if err := json.Unmarshal(data.Result, &sc); err != nil {
			return nil, err
		}
		v, err := parseValue(sc[1])
		if err != nil {
			return nil, err
		}
		return []sample{{value: v}}, nil
	}
	return nil, fmt.Errorf("unexpected result type %q for %s", data.ResultType, expr)
}

func parseValue(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", v)
	}
	return strconv.ParseFloat(s, 64)
}

// labelValues is what Grafana's label_values(selector, label) runs.
func (p *promServer) labelValues(label, selector string) ([]string, error) {
	params := url.Values{}
	if selector != "" {
		params.Set("match[]", selector)
	}
	var values []string
	err := p.apiGet("/api/v1/label/"+url.PathEscape(label)+"/values", params, &values)
	return values, err
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
	var data []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Labels    map[string]string `json:"labels"`
			Value     string            `json:"value"`
			Timestamp float64           `json:"timestamp"`
		} `json:"exemplars"`
	}
	params := url.Values{
		"query": {expr},
		"start": {strconv.FormatFloat(float64(start.UnixMilli())/1000, 'f', 3, 64)},
		"end":   {strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64)},
	}
	if err := p.apiGet("/api/v1/query_exemplars", params, &data); err != nil {
		return nil, err
	}
	var out []exemplar
	for _, s := range data {
		for _, e := range s.Exemplars {
			v, err := strconv.ParseFloat(e.Value, 64)
			if err != nil {
				return nil, fmt.Errorf("exemplar value %q: %w", e.Value, err)
			}
			out = append(out, exemplar{series: s.SeriesLabels, labels: e.Labels, value: v, seconds: e.Timestamp})
		}
	}
	return out, nil
}

// majorVersion is the major version of the Prometheus server, whose
// ingestion of OpenMetrics differs between 2 and 3 (see checkOpenMetricsLe).
func (p *promServer) majorVersion() (int, error) {
	var info struct {
		Version string `json:"version"`
	}
	if err := p.apiGet("/api/v1/status/buildinfo", nil, &info); err != nil {
		return 0, err
	}
	major, _, _ := strings.Cut(info.Version, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return 0, fmt.Errorf("prometheus version %q: %w", info.Version, err)
	}
	return n, nil
}
