package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wmprom/wmprom"
)

// The demo's random traffic cannot say what one message does to a
// dashboard. These tests run a service of their own inside the test
// process, send it single messages and follow them into Prometheus.

// appName is the app_name label of the in-process service.
const appName = "wmprom-e2e"

// route is one handler of the in-process service.
type route struct {
	topic string
	// plugin instruments the handler with the Plugin, which creates its
	// series at zero on Subscribe; otherwise with Middleware alone, whose
	// series are born with the first message.
	plugin bool
}

// instrumentedApp is a Watermill service on a GoChannel, instrumented by
// wmprom and serving OpenMetrics /metrics.
type instrumentedApp struct {
	target  string              // host:port of /metrics
	publish message.Publisher   // the GoChannel, decorated by the Plugin's Metrics
	handled chan string         // the topic of every message its handler ran for
	metrics prometheus.Gatherer // what /metrics serves
}

func startInstrumentedApp(t *testing.T, routes ...route) *instrumentedApp {
	t.Helper()
	reg := prometheus.NewRegistry()
	withPlugin, err := wmprom.New(reg, wmprom.WithAppName(appName))
	if err != nil {
		t.Fatal(err)
	}
	middlewareOnly, err := wmprom.New(reg, wmprom.WithAppName(appName))
	if err != nil {
		t.Fatal(err)
	}
	logger := watermill.NopLogger{}
	pubsub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 16}, logger)
	t.Cleanup(func() { _ = pubsub.Close() })

	app := &instrumentedApp{handled: make(chan string, 16), metrics: reg}
	routers := map[bool]*message.Router{}
	for _, r := range routes {
		router := routers[r.plugin]
		if router == nil {
			router, err = message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, logger)
			if err != nil {
				t.Fatal(err)
			}
			if r.plugin {
				router.AddPlugin(withPlugin.Plugin)
			} else {
				router.AddMiddleware(middlewareOnly.Middleware)
			}
			routers[r.plugin] = router
		}
		router.AddConsumerHandler(r.topic, r.topic, pubsub, func(*message.Message) error {
			app.handled <- r.topic
			return nil
		})
	}
	for _, router := range routers {
		done := make(chan error, 1)
		go func() { done <- router.Run(context.Background()) }()
		t.Cleanup(func() {
			_ = router.Close()
			<-done
		})
		select {
		case <-router.Running():
		case err := <-done:
			t.Fatalf("router stopped at start: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("router not running after 10s")
		}
	}

	app.publish, err = withPlugin.DecoratePublisher(pubsub)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	t.Cleanup(srv.Close)
	app.target = strings.TrimPrefix(srv.URL, "http://")
	return app
}

// send publishes one message to topic and waits until its handler has
// run and wmprom has recorded everything about it: the handler signals
// before it returns, and the middleware records the status, the
// duration and their exemplars after, so a test that looked at the clock
// or at the metrics on the signal could see the message half recorded.
func (a *instrumentedApp) send(t *testing.T, topic string, metadata map[string]string) {
	t.Helper()
	msg := message.NewMessage(watermill.NewUUID(), []byte(`{"order_id":"o-1"}`))
	for k, v := range metadata {
		msg.Metadata.Set(k, v)
	}
	if err := a.publish.Publish(topic, msg); err != nil {
		t.Fatalf("publish to %s: %v", topic, err)
	}
	select {
	case got := <-a.handled:
		if got != topic {
			t.Fatalf("handler of %s ran, want %s", got, topic)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the message to %s was not handled within 10s", topic)
	}
	if err := eventually(context.Background(), 10*time.Second, time.Millisecond, a.nothingInProcess); err != nil {
		t.Fatalf("the message to %s was handled but not recorded within 10s: %v", topic, err)
	}
}

// nothingInProcess tells whether every message received has a status:
// taking a message out of the in-process gauge is the last thing wmprom
// records about it.
func (a *instrumentedApp) nothingInProcess() error {
	mfs, err := a.metrics.Gather()
	if err != nil {
		return err
	}
	for _, mf := range mfs {
		if mf.GetName() != "faststream_received_messages_in_process" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetGauge().GetValue(); v != 0 {
				return fmt.Errorf("%v messages in process on %v", v, m.GetLabel())
			}
		}
		return nil
	}
	return errors.New("no faststream_received_messages_in_process family")
}

// TestExemplarReachesPrometheus publishes one message with a known W3C
// traceparent and finds its trace id, through OpenMetrics and a real
// Prometheus with exemplar storage, on every counter and histogram the
// message updated.
func TestExemplarReachesPrometheus(t *testing.T) {
	t.Parallel()
	forEachPrometheus(t, exemplarReachesPrometheus)
}

func exemplarReachesPrometheus(t *testing.T, v prometheusVersion) {
	const topic = "traced"
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	app := startInstrumentedApp(t, route{topic: topic, plugin: true})
	prom := startPrometheus(t, v, app.target)

	before := time.Now()
	app.send(t, topic, map[string]string{"traceparent": "00-" + traceID + "-b7ad6b7169203331-01"})
	after := time.Now()

	// Series selector -> the exemplar value: 1 for a counter (the amount
	// added), the observed duration for a histogram (checked against its le).
	selectors := []string{
		`faststream_received_messages_total{handler="traced"}`,
		`faststream_received_processed_messages_total{handler="traced", status="acked"}`,
		`faststream_received_processed_messages_duration_seconds_bucket{handler="traced"}`,
		`faststream_published_messages_total{destination="traced", status="success"}`,
		`faststream_published_messages_duration_seconds_bucket{destination="traced"}`,
	}
	err := eventually(context.Background(), 20*time.Second, 200*time.Millisecond, func() error {
		var problems []error
		for _, sel := range selectors {
			ex, err := prom.exemplars(sel, before.Add(-time.Minute), after.Add(time.Minute))
			if err != nil {
				return err
			}
			if len(ex) != 1 {
				problems = append(problems, fmt.Errorf("%s: %d exemplars, want 1", sel, len(ex)))
				continue
			}
			problems = append(problems, checkExemplar(sel, ex[0], traceID, before, after))
		}
		return errors.Join(problems...)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Prometheus %s: trace id %s found on all %d series the message updated", prom.version, traceID, len(selectors))
}

// checkExemplar checks one stored exemplar of the message sent between
// before and after.
func checkExemplar(sel string, e exemplar, traceID string, before, after time.Time) error {
	if len(e.labels) != 1 || e.labels["trace_id"] != traceID {
		return fmt.Errorf("%s: exemplar labels %v, want only trace_id=%s", sel, e.labels, traceID)
	}
	// Prometheus keeps the exemplar's own timestamp, in milliseconds.
	if ms := int64(math.Round(e.seconds * 1000)); ms < before.UnixMilli() || ms > after.UnixMilli() {
		return fmt.Errorf("%s: exemplar at %v, want between %v and %v", sel, e.seconds, before.UnixMilli(), after.UnixMilli())
	}
	le, isBucket := e.series["le"]
	if !isBucket {
		if e.value != 1 {
			return fmt.Errorf("%s: exemplar value %v, want 1 (one message)", sel, e.value)
		}
		return nil
	}
	bound, err := strconv.ParseFloat(le, 64)
	if err != nil {
		return fmt.Errorf("%s: le %q: %w", sel, le, err)
	}
	if took := after.Sub(before).Seconds(); e.value < 0 || e.value > took || e.value > bound {
		return fmt.Errorf("%s: exemplar duration %v in bucket le=%s, want at most the bound and the %vs the send took", sel, e.value, le, took)
	}
	return nil
}

// TestFirstMessageCounted is issue 6's first-message proof on dashboard
// 22130's "Total messages received" stat, sum(increase(...[$__range])):
// a handler whose series Prometheus has scraped at zero receives exactly one
// message, and the stat says 1. A handler instrumented with Middleware
// alone, whose series is born at 1 with that message, says 0 for the same
// message: that is the blind spot, and the contrast that shows this test can
// fail.
//
// The expected values are exact because the query is evaluated at the
// timestamp of the series' newest sample. increase() extrapolates the
// increase between the first and last sample in the window towards both
// window ends: towards the end by the time since the last sample, here 0;
// towards the start by at most the time a counter needs to fall to zero at
// the observed rate, here 0 as the first sample already is 0. So the result
// is the raw difference, 1 - 0. Evaluated later, as Grafana does, the
// extrapolation towards the window's end scales it by (sampled span + time
// since the newest sample) / sampled span: with a 1 s scrape interval and
// two zero samples, up to (2 + 1.1) / 2, about 1.5; in the compose stack's
// steady state (5 s scrapes, a 1 h window) about 1.0. A series born at 1
// reads 0 wherever it is evaluated, since every sample in its window is 1.
func TestFirstMessageCounted(t *testing.T) {
	t.Parallel()
	d := loadDashboard(t)
	forEachPrometheus(t, func(t *testing.T, v prometheusVersion) { firstMessageCounted(t, v, d) })
}

func firstMessageCounted(t *testing.T, v prometheusVersion, d *dashboard) {
	const zeroTopic, bornAtOneTopic = "first-message", "born-at-one"
	app := startInstrumentedApp(t, route{topic: zeroTopic, plugin: true}, route{topic: bornAtOneTopic})
	prom := startPrometheus(t, v, app.target)
	ctx := context.Background()
	series := func(topic string) string {
		return fmt.Sprintf(`faststream_received_messages_total{app_name=%q, handler=%q}`, appName, topic)
	}

	// Prometheus has scraped the Plugin's handler at 0; the other handler
	// has no series yet.
	err := eventually(ctx, 20*time.Second, 200*time.Millisecond, func() error {
		if err := wantValue(prom, series(zeroTopic), 0); err != nil {
			return err
		}
		return wantValue(prom, fmt.Sprintf(`absent(%s)`, series(bornAtOneTopic)), 1)
	})
	if err != nil {
		t.Fatalf("before the first message: %v", err)
	}

	app.send(t, zeroTopic, nil)
	app.send(t, bornAtOneTopic, nil)

	// Both counters scraped at 1; the one born at 1 twice, so that
	// increase() has the two samples it needs to give a value at all.
	err = eventually(ctx, 20*time.Second, 200*time.Millisecond, func() error {
		return errors.Join(
			wantValue(prom, series(zeroTopic), 1),
			wantValue(prom, series(bornAtOneTopic), 1),
			wantValue(prom, fmt.Sprintf(`count_over_time(%s[5m]) >= bool 2`, series(bornAtOneTopic)), 1),
		)
	})
	if err != nil {
		t.Fatalf("after one message each: %v", err)
	}
	select {
	case topic := <-app.handled:
		t.Fatalf("a second message was handled, on %s; want exactly one per handler", topic)
	default:
	}

	for topic, want := range map[string]float64{zeroTopic: 1, bornAtOneTopic: 0} {
		expr := totalReceivedQuery(t, d, topic)
		at := newestSample(t, prom, series(topic))
		got, err := prom.query(expr, at)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].value != want {
			t.Errorf("handler %s: %q at its newest sample gives%s, want %v", topic, expr, describe(got), want)
			continue
		}
		t.Logf("Prometheus %s, handler %s: dashboard 22130's \"Total messages received\" = %v after its one message", prom.version, topic, got[0].value)
	}
}

// totalReceivedQuery is dashboard 22130's "Total messages received" query,
// as Grafana sends it with the app and handler selected and a 5-minute range.
func totalReceivedQuery(t *testing.T, d *dashboard, handler string) string {
	t.Helper()
	vars := grafanaVars("5m")
	vars["app_name"], vars["handler"] = appName, handler
	panels, err := d.panelQueries(vars)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range panels {
		if q.panel == "Total messages received" {
			return q.expr
		}
	}
	t.Fatal(`dashboard 22130 has no panel "Total messages received"`)
	return ""
}

// wantValue requires expr to give exactly one series, of value want, now.
func wantValue(prom *promServer, expr string, want float64) error {
	got, err := prom.query(expr, time.Now())
	if err != nil {
		return err
	}
	if len(got) != 1 || got[0].value != want {
		return fmt.Errorf("%s = %s, want one series of value %v", expr, describe(got), want)
	}
	return nil
}

// newestSample is the time of the newest sample of the series selected.
func newestSample(t *testing.T, prom *promServer, selector string) time.Time {
	t.Helper()
	got, err := prom.query("timestamp("+selector+")", time.Now())
	if err != nil || len(got) != 1 {
		t.Fatalf("timestamp(%s): %v%s", selector, err, describe(got))
	}
	return time.UnixMilli(int64(math.Round(got[0].value * 1000)))
}
