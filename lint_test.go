package wmprom

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// The nine families must pass Prometheus' own linters, on the golden
// exposition and on a live one with every family populated, exemplars
// and all.

// lintTraffic runs the golden exposition's traffic (a message that
// fails in the handler, then in the publish of its produced message,
// then succeeds), traced so that exemplars are exposed too.
func lintTraffic(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	clock := newFakeClock()
	m, reg := newMetrics(t, withClock(clock), WithLabel("region", "eu"))
	var calls atomic.Int32
	tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
		r.AddPlugin(m.Plugin)
		r.AddHandler("orders", "orders", ps, "payments", &failOncePublisher{Publisher: ps},
			func(msg *message.Message) ([]*message.Message, error) {
				clock.Advance(30 * time.Millisecond)
				if calls.Add(1) == 1 {
					return nil, &decodeError{}
				}
				out := message.NewMessage(watermill.NewUUID(), []byte("paid"))
				out.Metadata.Set(traceparentKey, traceparent)
				return []*message.Message{out}, nil
			})
	})
	msg := message.NewMessage(watermill.NewUUID(), make([]byte, 100))
	msg.Metadata.Set(traceparentKey, traceparent)
	if err := tr.pubsub.Publish("orders", msg); err != nil {
		t.Fatal(err)
	}
	waitSamples(t, reg, []string{"app_name", "broker", "region"}, `
		received_messages_total{handler="orders"} 3
		received_messages_in_process{handler="orders"} 0
		`+processed("orders", 1, 2, 0, 0, 0)+`
		received_processed_messages_exceptions_total{exception_type="wmprom.brokerDownError",handler="orders"} 1
		received_processed_messages_exceptions_total{exception_type="wmprom.decodeError",handler="orders"} 1
		published_messages_total{destination="payments",status="error"} 1
		published_messages_total{destination="payments",status="success"} 1
		published_messages_exceptions_total{destination="payments",exception_type="wmprom.brokerDownError"} 1`,
		"received_messages_total", "received_messages_in_process", "received_processed_messages_total",
		"received_processed_messages_exceptions_total", "published_messages_total", "published_messages_exceptions_total")
	return m, reg
}

func (f *families) all() []prometheus.Collector {
	return []prometheus.Collector{f.received, f.receivedSize, f.inProcess, f.processed, f.processDuration,
		f.processExceptions, f.published, f.publishDuration, f.publishExceptions}
}

// Every family, populated, passes client_golang's linter with no problem
// at all: FastStream's names already follow Prometheus' conventions.
func TestFamiliesLint(t *testing.T) {
	m, _ := lintTraffic(t)
	for _, c := range m.families.all() {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

// The golden exposition lints clean too.
func TestGoldenExpositionLints(t *testing.T) {
	golden, err := os.Open("testdata/exposition.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer golden.Close()
	problems, err := promlint.New(golden).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// promtool check metrics on the golden file and on the live text
// exposition. promtool check metrics reads only the text format (2.42
// and 3.x alike stop at the first exemplar: "expected integer as
// timestamp, got #"), so the live OpenMetrics exposition goes through
// Prometheus' strict OpenMetrics parser instead, the one of promtool tsdb
// create-blocks-from openmetrics, which needs a timestamp on every
// sample. CI installs promtool (Debian's prometheus package); without it
// the test says what is missing and skips.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not found in PATH: install it (apt-get install -y prometheus) to run promtool check metrics")
	}
	golden, err := os.ReadFile("testdata/exposition.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, reg := lintTraffic(t)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	defer srv.Close()
	text := scrape(t, srv.URL, "text/plain; version=0.0.4")
	openMetrics := scrape(t, srv.URL, "application/openmetrics-text; version=1.0.0")
	if !strings.Contains(openMetrics, `# {trace_id="`+traceHex+`"}`) || !strings.HasSuffix(openMetrics, "# EOF\n") {
		t.Fatalf("not an OpenMetrics exposition with exemplars:\n%s", openMetrics)
	}
	for name, exposition := range map[string]string{"golden": string(golden), "text": text} {
		if out, err := runPromtool(promtool, exposition, "check", "metrics"); err != nil || out != "" {
			t.Errorf("promtool check metrics on the %s exposition: %v\n%s", name, err, out)
		}
	}

	dir := t.TempDir()
	file := dir + "/exposition.om"
	if err := os.WriteFile(file, []byte(stampSamples(openMetrics)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runPromtool(promtool, "", "tsdb", "create-blocks-from", "openmetrics", file, dir+"/blocks")
	// The output table ends each block's row with its sample and series
	// counts: 60 series (the nine families, buckets included).
	if err != nil || strings.Contains(out, "error") || strings.Contains(out, "expected") || !strings.Contains(out, " 60 ") {
		t.Errorf("Prometheus' OpenMetrics parser refuses the exposition: %v\n%s", err, out)
	}
}

// stampSamples gives every sample of an OpenMetrics exposition a
// timestamp, before its exemplar if it has one.
func stampSamples(openMetrics string) string {
	lines := strings.Split(openMetrics, "\n")
	for i, l := range lines {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if j := strings.Index(l, " # {"); j >= 0 {
			lines[i] = l[:j] + " 1700000000" + l[j:]
		} else {
			lines[i] = l + " 1700000000"
		}
	}
	return strings.Join(lines, "\n")
}

func runPromtool(promtool, stdin string, args ...string) (string, error) {
	cmd := exec.Command(promtool, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func scrape(t *testing.T, url, accept string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
