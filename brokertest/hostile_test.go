package brokertest

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wmprom/wmprom"
)

// TestRedisByteArbitraryTopic: Redis stream keys are byte strings, so a
// topic that is not UTF-8 is legal there. Before wmprom made label values
// valid, Router.Run panicked on it with the Plugin, and a decorated
// publisher panicked before sending. Here a router consumes such a
// topic, publishes the produced messages to another one, which a second
// handler consumes, and the application publishes to it directly too:
// every message is handled once and counted once, under the topic with
// its bad bytes replaced by U+FFFD.
func TestRedisByteArbitraryTopic(t *testing.T) {
	opts, source := redisOptions(t)
	env := newRedisEnv(t, opts, source)
	t.Logf("redis broker: %s", source)

	base := uniqueName("redis", "hostile")
	inTopic, outTopic := base+"_in\xff\xfe", base+"_out\xc3"
	inLabel, outLabel := base+"_in\uFFFD", base+"_out\uFFFD"
	env.prepare(t, inTopic, outTopic)

	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg, wmprom.WithAppName(appName))
	if err != nil {
		t.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 15 * time.Second}, watermillLogger())
	if err != nil {
		t.Fatal(err)
	}
	router.AddPlugin(m.Plugin)

	var mu sync.Mutex
	seen := map[string]int{}
	saw := func(handler string, msg *message.Message) {
		mu.Lock()
		defer mu.Unlock()
		seen[handler+" "+string(msg.Payload)]++
	}
	router.AddHandler("forward", inTopic, env.newSubscriber(t, base+"_forward"), outTopic, env.newPublisher(t),
		func(msg *message.Message) ([]*message.Message, error) {
			saw("forward", msg)
			return []*message.Message{message.NewMessage(watermill.NewUUID(), msg.Payload)}, nil
		})
	router.AddConsumerHandler("sink", outTopic, env.newSubscriber(t, base+"_sink"), func(msg *message.Message) error {
		saw("sink", msg)
		return nil
	})
	closeRouter := runRouter(t, router, nil)
	defer closeRouter()

	pub, err := m.DecoratePublisher(env.newPublisher(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := pub.Publish(inTopic, message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(i)))); err != nil {
			t.Fatalf("Publish = %v, want Redis' nil", err)
		}
	}

	want := fmt.Sprintf(`
		faststream_published_messages_total{app_name=%[1]q,broker="redis",destination=%[2]q,status="error"} 0
		faststream_published_messages_total{app_name=%[1]q,broker="redis",destination=%[2]q,status="success"} 3
		faststream_published_messages_total{app_name=%[1]q,broker="redis",destination=%[3]q,status="error"} 0
		faststream_published_messages_total{app_name=%[1]q,broker="redis",destination=%[3]q,status="success"} 3
		faststream_received_messages_total{app_name=%[1]q,broker="redis",handler=%[2]q} 3
		faststream_received_messages_total{app_name=%[1]q,broker="redis",handler=%[3]q} 3
		faststream_received_processed_messages_total{app_name=%[1]q,broker="redis",handler=%[2]q,status="acked"} 3
		faststream_received_processed_messages_total{app_name=%[1]q,broker="redis",handler=%[3]q,status="acked"} 3`,
		appName, inLabel, outLabel)
	var got string
	deadline := time.Now().Add(drainTimeout)
	for {
		got = nonZero(snapshot(t, reg), "faststream_published_messages_total", "faststream_received_messages_total",
			"faststream_received_processed_messages_total")
		if got == sortedLines(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got != sortedLines(want) {
		t.Fatalf("series differ\n--- got\n%s\n--- want\n%s", got, sortedLines(want))
	}
	mu.Lock()
	defer mu.Unlock()
	if got := fmt.Sprint(seen); got != "map[forward 0:1 forward 1:1 forward 2:1 sink 0:1 sink 1:1 sink 2:1]" {
		t.Errorf("deliveries: %s, want each message once in each handler", got)
	}
}

// nonZero renders the series of the named families, leaving out the
// processed statuses at zero (the other four of each handler), sorted.
func nonZero(s series, families ...string) string {
	var lines []string
	for k, v := range s {
		for _, f := range families {
			if !strings.HasPrefix(k, f+"{") {
				continue
			}
			if f == "faststream_received_processed_messages_total" && v == 0 {
				continue
			}
			lines = append(lines, fmt.Sprintf("%s %v", k, v))
		}
	}
	return sortedLines(strings.Join(lines, "\n"))
}

func sortedLines(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
