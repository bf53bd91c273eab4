package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// testRange is the dashboard's $__range during the test: the window the
// stat panels' increase() looks back over.
const testRange = "1m"

// dataTimeout bounds how long a run waits for every panel to have data; the
// demo fills them in seconds, so this only matters when something is broken.
const dataTimeout = 75 * time.Second

// TestDashboard22130 proves that every panel and variable of FastStream's
// dashboard shows data for the demo, scraped by a real Prometheus: once on
// the in-memory GoChannel and once on real brokers.
func TestDashboard22130(t *testing.T) {
	d := loadDashboard(t)

	t.Run("gochannel", func(t *testing.T) {
		t.Parallel()
		demo := startDemo(t, "-brokers", "gochannel", "-rate", "25")
		checkDashboard(t, d, demo, []string{"gochannel"})
		demo.stop(t)
	})

	t.Run("brokers", func(t *testing.T) {
		t.Parallel()
		env := map[string]string{}
		for _, name := range []string{"WMPROM_TEST_AMQP", "WMPROM_TEST_NATS", "WMPROM_TEST_REDIS"} {
			env[name] = os.Getenv(name)
			if env[name] == "" {
				t.Skipf("SKIPPED, NOT PASSED: %s is not set; .ci/run exports WMPROM_TEST_AMQP, WMPROM_TEST_NATS and WMPROM_TEST_REDIS for the RabbitMQ, NATS and Redis services", name)
			}
		}
		kafka := startKfake(t, 0)
		demo := startDemo(t,
			"-brokers", "kafka,rabbit,nats,redis",
			"-rate", "15",
			"-kafka-brokers", kafka,
			"-amqp-url", env["WMPROM_TEST_AMQP"],
			"-nats-url", env["WMPROM_TEST_NATS"],
			"-redis-addr", env["WMPROM_TEST_REDIS"],
		)
		checkDashboard(t, d, demo, []string{"kafka", "nats", "rabbit", "redis"})
		demo.stop(t)
	})
}

// startKfake runs an in-process Kafka (franz-go's kfake) on port (0: any)
// and returns its address.
func startKfake(t *testing.T, port int) string {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation()}
	if port != 0 {
		opts = append(opts, kfake.Ports(port))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// checkDashboard waits until Prometheus, scraping demo, answers every query
// of the dashboard with data, then checks the status-share panels.
func checkDashboard(t *testing.T, d *dashboard, demo *demoProc, brokers []string) {
	t.Helper()
	prom := startPrometheus(t, demo.hostPort())
	vars := grafanaVars(testRange)
	panels, err := d.panelQueries(vars)
	if err != nil {
		t.Fatal(err)
	}
	varQueries, err := d.variableQueries(vars)
	if err != nil {
		t.Fatal(err)
	}

	var handlers, destinations []string
	for _, b := range brokers {
		handlers = append(handlers, b+"-orders", b+"-payments", b+"-notifications")
		destinations = append(destinations, b+"-orders", b+"-payments", b+"-notifications")
	}
	wantLabels := map[string][]string{
		"app_name":    {"wmprom-demo"},
		"broker":      brokers,
		"handler":     handlers,
		"destination": destinations,
	}

	start := time.Now()
	var checked report
	err = eventually(context.Background(), dataTimeout, time.Second, func() error {
		at := time.Now()
		r, err := evaluate(prom, panels, varQueries, wantLabels, at)
		checked = r
		return err
	})
	if err != nil {
		t.Fatalf("after %s, the dashboard still lacks data:\n%v", time.Since(start).Round(time.Second), err)
	}
	t.Logf("dashboard 22130 on %s: checked %d panel queries and %d template-variable queries against Prometheus "+
		"(all with >= 1 finite series; status shares of %d handlers in [0,1] summing to 1), data complete after %s",
		strings.Join(brokers, ","), checked.panels, checked.variables, checked.handlers, time.Since(start).Round(100*time.Millisecond))
}

// report says how much one evaluation checked.
type report struct{ panels, variables, handlers int }

// evaluate runs every query at instant at and returns all that is wrong.
func evaluate(prom *promServer, panels []panelQuery, varQueries []varQuery, wantLabels map[string][]string, at time.Time) (report, error) {
	var problems []error
	var r report

	for _, vq := range varQueries {
		values, err := prom.labelValues(vq.label, vq.selector)
		switch {
		case err != nil:
			problems = append(problems, fmt.Errorf("variable %s (%s): %w", vq.variable, vq.raw, err))
		case len(values) == 0:
			problems = append(problems, fmt.Errorf("variable %s (%s): no values", vq.variable, vq.raw))
		default:
			r.variables++
		}
	}
	for label, want := range wantLabels {
		values, err := prom.labelValues(label, `{__name__=~"faststream_.+"}`)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		sort.Strings(values)
		want = slices.Sorted(slices.Values(want))
		if !slices.Equal(values, want) {
			problems = append(problems, fmt.Errorf("label %s has values %v, want %v", label, values, want))
		}
	}

	shares := map[string]map[string]float64{} // panel title -> handler -> share
	for _, q := range panels {
		samples, err := prom.query(q.expr, at)
		if err != nil {
			problems = append(problems, fmt.Errorf("panel %q: %w", q.panel, err))
			continue
		}
		if finiteCount(samples) == 0 {
			problems = append(problems, fmt.Errorf("panel %q: no series with a finite value (got%s) for %s", q.panel, describe(samples), q.expr))
			continue
		}
		r.panels++
		if strings.HasPrefix(q.panel, "Percent of ") {
			byHandler := map[string]float64{}
			for _, s := range samples {
				byHandler[s.labels["handler"]] = s.value
			}
			shares[q.panel] = byHandler
		}
	}

	sharePanels := []string{"Percent of acked messages", "Percent of error messages", "Percent of nacked, rejected, skipped messages"}
	if len(shares) == len(sharePanels) {
		handlers := wantLabels["handler"]
		for _, h := range handlers {
			sum := 0.0
			for _, title := range sharePanels {
				v, ok := shares[title][h]
				switch {
				case !ok:
					problems = append(problems, fmt.Errorf("panel %q has no series for handler %s", title, h))
				case math.IsNaN(v) || v < 0 || v > 1:
					problems = append(problems, fmt.Errorf("panel %q: handler %s has share %v, outside [0,1]", title, h, v))
				}
				sum += v
			}
			if math.Abs(sum-1) > 1e-9 {
				problems = append(problems, fmt.Errorf("handler %s: acked+error+nacked/rejected/skipped shares sum to %v, want 1", h, sum))
			}
		}
		for _, title := range sharePanels {
			if len(shares[title]) != len(handlers) {
				problems = append(problems, fmt.Errorf("panel %q has series for %d handlers, want %d", title, len(shares[title]), len(handlers)))
			}
		}
		r.handlers = len(handlers)
	} else if len(problems) == 0 {
		problems = append(problems, fmt.Errorf("found status-share panels %v, want %v", keys(shares), sharePanels))
	}
	return r, errors.Join(problems...)
}

func keys[V any](m map[string]V) []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
}

// loopbackAddr is host:port of an address nothing listens on, for a broker
// that is down.
func deadAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(freePort(t)))
}
