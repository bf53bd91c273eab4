package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestDemoSurvivesBrokerOutage runs the demo with RabbitMQ unreachable from
// the start and takes its Kafka away mid-run and back: the demo must say so,
// keep retrying, keep the other brokers' traffic and /metrics going, pick
// Kafka up again, and still shut down cleanly.
func TestDemoSurvivesBrokerOutage(t *testing.T) {
	t.Parallel()
	kafka, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	_, port, err := net.SplitHostPort(kafka.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	kafkaUp := true
	t.Cleanup(func() {
		if kafkaUp {
			kafka.Close()
		}
	})
	demo := startDemo(t,
		"-brokers", "gochannel,kafka,rabbit",
		"-rate", "20",
		"-kafka-brokers", kafka.ListenAddrs()[0],
		"-amqp-url", "amqp://guest:guest@"+deadAddr(t)+"/",
		"-stall-timeout", "3s",
	)
	ctx := context.Background()
	const rabbitRetry = `msg="broker unavailable, retrying" broker=rabbit`
	const kafkaRetry = `msg="broker unavailable, retrying" broker=kafka`
	const kafkaConnected = `msg="connected; traffic flowing" broker=kafka`

	// RabbitMQ is down from the start: retried with backoff, others flow.
	err = eventually(ctx, 30*time.Second, 200*time.Millisecond, func() error {
		if n := strings.Count(demo.stderr.String(), rabbitRetry); n < 2 {
			return fmt.Errorf("%d rabbit retry lines, want at least 2", n)
		}
		return receivedAtLeast(demo, map[string]float64{"gochannel-notifications": 1, "kafka-notifications": 1})
	})
	if err != nil {
		t.Fatalf("with RabbitMQ down: %v", err)
	}

	// Kafka goes away: the demo notices, the GoChannel pipeline goes on.
	kafka.Close()
	kafkaUp = false
	before, err := scrapeReceived(demo)
	if err != nil {
		t.Fatal(err)
	}
	err = eventually(ctx, 30*time.Second, 200*time.Millisecond, func() error {
		if !strings.Contains(demo.stderr.String(), kafkaRetry) {
			return fmt.Errorf("no line %q yet", kafkaRetry)
		}
		return receivedAtLeast(demo, map[string]float64{
			"gochannel-notifications": before["gochannel-notifications"] + 1,
			// Kafka's series stay exported while it is away.
			"kafka-notifications": before["kafka-notifications"],
		})
	})
	if err != nil {
		t.Fatalf("with Kafka gone: %v", err)
	}

	// Kafka comes back on the same address: the demo reconnects by itself.
	// The port was free a moment ago, but any outgoing connection may borrow
	// it as its local port meanwhile: retry until it is free again.
	portNum, _ := strconv.Atoi(port)
	err = eventually(ctx, 15*time.Second, 100*time.Millisecond, func() (err error) {
		kafka, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.Ports(portNum))
		return err
	})
	if err != nil {
		t.Fatalf("restart kfake on port %s: %v", port, err)
	}
	kafkaUp = true
	err = eventually(ctx, 60*time.Second, 200*time.Millisecond, func() error {
		if n := strings.Count(demo.stderr.String(), kafkaConnected); n < 2 {
			return fmt.Errorf("%d Kafka connect lines, want a reconnect", n)
		}
		return receivedAtLeast(demo, map[string]float64{"kafka-notifications": before["kafka-notifications"] + 1})
	})
	if err != nil {
		t.Fatalf("after Kafka came back: %v", err)
	}
	if strings.Contains(demo.stderr.String(), "panic") {
		t.Fatalf("demo log mentions a panic:\n%s", tail(demo.stderr.String(), 40))
	}
	demo.stop(t)
}

// scrapeReceived reads the demo's received_messages_total per handler.
func scrapeReceived(demo *demoProc) (map[string]float64, error) {
	resp, err := http.Get(demo.url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", demo.url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	if f := families["faststream_received_messages_total"]; f != nil {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "handler" {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out, nil
}

// receivedAtLeast checks that each handler has received at least the given count.
func receivedAtLeast(demo *demoProc, want map[string]float64) error {
	got, err := scrapeReceived(demo)
	if err != nil {
		return err
	}
	for h, n := range want {
		if v, ok := got[h]; !ok || v < n {
			return fmt.Errorf("handler %s received %v (exported: %v), want at least %v", h, v, ok, n)
		}
	}
	return nil
}
