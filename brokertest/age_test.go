package brokertest

import (
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wmprom/wmprom"
)

// ageDelay is how long the measured message waits behind a blocked
// handler: the delay the age must show.
const ageDelay = 2 * time.Second

// ageBuckets are the library's default age buckets, which the test reads
// back from the registry to check the one observation's bucket.
var ageBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 10800}

// kafkaTimestamp is the one line a Kafka user adds: the broker's
// timestamp, which watermill-kafka puts into the message's context.
func kafkaTimestamp(msg *message.Message) (time.Time, bool) {
	return kafka.MessageTimestampFromCtx(msg.Context())
}

// TestMessageAge proves where each broker's message age comes from and
// that it is the time a message really waited: on Kafka the broker's
// timestamp (through WithPublishTime), on RabbitMQ, NATS JetStream and
// Redis streams the decorated publisher's metadata stamp.
func TestMessageAge(t *testing.T) {
	t.Run("kafka", func(t *testing.T) {
		brokers, source := kafkaBrokers(t)
		runAgeScenario(t, newKafkaEnv(t, brokers, source), kafkaTimestamp)
	})
	t.Run("rabbit", func(t *testing.T) {
		url, source := amqpURL(t)
		runAgeScenario(t, newAMQPEnv(t, url, source), nil)
	})
	t.Run("nats_jetstream", func(t *testing.T) {
		url, source := natsURL(t)
		runAgeScenario(t, newNATSJetStreamEnv(t, url, source), nil)
	})
	t.Run("nats_jetstream_pkg", func(t *testing.T) {
		url, source := natsURL(t)
		runAgeScenario(t, newNATSJetStreamPkgEnv(t, url, source), nil)
	})
	t.Run("redis", func(t *testing.T) {
		opts, source := redisOptions(t)
		runAgeScenario(t, newRedisEnv(t, opts, source), nil)
	})
}

// delivery is what the handler saw of one message.
type delivery struct {
	id         string
	at         time.Time // wall clock, when the handler started
	stamp      string    // the PublishedAtKey metadata
	brokerTime time.Time // from brokerTime, if given
	brokerOK   bool
}

// runAgeScenario builds a backlog of one message and measures its age.
//
// A first message (the blocker) is published by an undecorated publisher,
// so it carries no stamp, and its handler blocks. The measured message is
// then published through the decorated publisher and waits behind the
// blocker, in the broker or the subscriber, for ageDelay, timed by the
// test; then the blocker is released. Its age must lie in the window the
// test measured around it, on the wall clock, as the age is:
//
//	lower: release - (return of Publish)             >= ageDelay
//	upper: (handler start) - (call of Publish, floored to the millisecond)
//
// so the tolerance is the test's own publish and delivery latency,
// measured, not a fixed allowance (the floor: stamps and Kafka timestamps
// are in milliseconds).
//
// The source is proven by what the messages carry. Without brokerTime, the
// blocker has no stamp and must be counted as unknown, and the measured
// message's stamp must lie within its Publish call. With brokerTime
// (Kafka), the blocker has the broker's time and must be observed, and the
// measured message carries an unreadable stamp of its own (which the
// decorated publisher keeps), so only the broker's time can give it an age.
func runAgeScenario(t *testing.T, env *brokerEnv, brokerTime func(*message.Message) (time.Time, bool)) {
	t.Logf("%s broker: %s", env.label, env.source)
	topic := uniqueName(env.label, "age")
	if env.prepare != nil {
		env.prepare(t, topic)
	}
	opts := []wmprom.Option{wmprom.WithAppName(appName), wmprom.WithMessageAge(true)}
	if brokerTime != nil {
		opts = append(opts, wmprom.WithPublishTime(brokerTime))
	}
	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 15 * time.Second}, watermillLogger())
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	router.AddPlugin(m.Plugin)
	seen := make(chan delivery, 16)
	release := make(chan struct{})
	router.AddConsumerHandler("brokertest_age", topic, env.newSubscriber(t, "brokertest_age"), func(msg *message.Message) error {
		d := delivery{id: msg.Metadata.Get("id"), at: time.Now().Round(0), stamp: msg.Metadata.Get(wmprom.PublishedAtKey)}
		if brokerTime != nil {
			d.brokerTime, d.brokerOK = brokerTime(msg)
		}
		seen <- d
		if d.id == "blocker" {
			select {
			case <-release:
			case <-msg.Context().Done():
			}
		}
		return nil
	})
	released := false
	closeRouter := runRouter(t, router, func() {
		if !released {
			close(release)
		}
	})
	defer closeRouter()
	if env.afterRunning != nil {
		env.afterRunning(t)
	}

	raw := env.newPublisher(t)
	pub, err := m.DecoratePublisher(env.newPublisher(t))
	if err != nil {
		t.Fatalf("DecoratePublisher: %v", err)
	}
	publish := func(p message.Publisher, id, stamp string) (called, returned time.Time) {
		msg := message.NewMessage(watermill.NewUUID(), []byte(id))
		msg.Metadata.Set("id", id)
		if stamp != "" {
			msg.Metadata.Set(wmprom.PublishedAtKey, stamp)
		}
		called = time.Now().Round(0)
		if err := p.Publish(topic, msg); err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
		return called, time.Now().Round(0)
	}
	next := func(want string) delivery {
		t.Helper()
		select {
		case d := <-seen:
			if d.id != want {
				t.Fatalf("handler got %q, want %q", d.id, want)
			}
			return d
		case <-time.After(drainTimeout):
			t.Fatalf("message %s not delivered within %s", want, drainTimeout)
			return delivery{}
		}
	}
	family := metricPrefix + "received_messages_age_seconds"
	handler := []string{"handler", topic}

	publish(raw, "blocker", "")
	blocker := next("blocker")
	// The middleware observes before the handler starts: the blocker's
	// part of the registry is final.
	before := snapshot(t, reg)
	if brokerTime == nil {
		if blocker.stamp != "" {
			t.Errorf("blocker from an undecorated publisher arrived with stamp %q", blocker.stamp)
		}
		expectSeries(t, before, 0, family+"_count", handler...)
		expectSeries(t, before, 1, metricPrefix+"received_messages_age_unknown_total", handler...)
	} else {
		if !blocker.brokerOK {
			t.Errorf("blocker arrived without a broker timestamp")
		}
		expectSeries(t, before, 1, family+"_count", handler...)
		expectSeries(t, before, 0, metricPrefix+"received_messages_age_unknown_total", handler...)
	}

	ownStamp := ""
	if brokerTime != nil {
		ownStamp = "not a time" // kept by the decorated publisher, unreadable
	}
	called, returned := publish(pub, "aged", ownStamp)
	waitStart := time.Now()
	<-time.After(ageDelay)
	waited := time.Since(waitStart)
	releasedAt := time.Now().Round(0)
	released = true
	close(release)
	aged := next("aged")

	eventually(t, drainTimeout, "both messages processed", func() bool {
		return snapshot(t, reg).sum(metricPrefix+"received_processed_messages_total", handler...) == 2
	})
	closeRouter()
	after := snapshot(t, reg)

	// The source.
	calledMilli := time.UnixMilli(called.UnixMilli())
	within := func(what string, at time.Time) {
		if at.Before(calledMilli) || at.After(returned) {
			t.Errorf("%s %s is outside the Publish call [%s, %s]", what, at.Format(time.RFC3339Nano),
				calledMilli.Format(time.RFC3339Nano), returned.Format(time.RFC3339Nano))
		}
	}
	if brokerTime == nil {
		ms, err := strconv.ParseInt(aged.stamp, 10, 64)
		if err != nil {
			t.Fatalf("measured message arrived with stamp %q, want Unix milliseconds: %v", aged.stamp, err)
		}
		within("its stamp", time.UnixMilli(ms))
	} else {
		if aged.stamp != ownStamp {
			t.Errorf("measured message arrived with stamp %q, want its own %q", aged.stamp, ownStamp)
		}
		if !aged.brokerOK {
			t.Fatalf("measured message arrived without a broker timestamp")
		}
		within("its broker timestamp", aged.brokerTime)
	}

	// One more observation, its value in the measured window, in its bucket.
	if n := after.get(family+"_count", handler...) - before.get(family+"_count", handler...); n != 1 {
		t.Fatalf("age observations of the measured message: %v, want 1", n)
	}
	age := after.get(family+"_sum", handler...) - before.get(family+"_sum", handler...)
	lower := releasedAt.Sub(returned).Seconds()
	upper := aged.at.Sub(calledMilli).Seconds()
	// A check of the test itself: the wall clock saw the timer's delay
	// (within a millisecond of NTP slewing).
	if lower < ageDelay.Seconds()-0.001 {
		t.Errorf("the test's own wait: timer %s, wall clock %.3fs; want at least %s", waited, lower, ageDelay)
	}
	if age < lower || age > upper {
		t.Errorf("age %.6fs outside the measured window [%.6fs, %.6fs]", age, lower, upper)
	}
	for _, le := range ageBuckets {
		pairs := append([]string{"le", formatLe(le)}, handler...)
		got := after.get(family+"_bucket", pairs...) - before.get(family+"_bucket", pairs...)
		want := 0.0
		if age <= le {
			want = 1
		}
		if got != want {
			t.Errorf("bucket le=%v gained %v, want %v for age %.6fs", le, got, want, age)
		}
	}
	expectSeries(t, after, 0, metricPrefix+"received_messages_age_clamped_total", handler...)
	expectSeries(t, after, before.get(metricPrefix+"received_messages_age_unknown_total", handler...),
		metricPrefix+"received_messages_age_unknown_total", handler...)

	source := "metadata stamp (" + wmprom.PublishedAtKey + ")"
	if brokerTime != nil {
		source = "broker timestamp via WithPublishTime"
	}
	t.Logf("%s: source %s; age %.3fs for a delay of %s, window [%.3fs, %.3fs] (measured publish and delivery latency %.1f ms)",
		env.label, source, age, ageDelay, lower, upper, (upper-lower)*1000)
}

// expectSeries fails unless the series of name with pairs has value want.
func expectSeries(t *testing.T, s series, want float64, name string, pairs ...string) {
	t.Helper()
	if got := s.get(name, pairs...); got != want {
		t.Errorf("%s%v = %v, want %v", name, pairs, got, want)
	}
}
