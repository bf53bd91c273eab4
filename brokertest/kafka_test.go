package brokertest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/testcontainers/testcontainers-go"
	tckafka "github.com/testcontainers/testcontainers-go/modules/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
)

// kafkaImage is the image testcontainers runs when a Docker engine is
// reachable and WMPROM_TEST_KAFKA is not set.
const kafkaImage = "confluentinc/confluent-local:7.5.0"

// kafkaBrokers finds a Kafka cluster: WMPROM_TEST_KAFKA (comma-separated
// host:port list), a testcontainers Kafka, or an in-process kfake cluster.
func kafkaBrokers(t *testing.T) (brokers []string, source string) {
	t.Helper()
	if v := os.Getenv("WMPROM_TEST_KAFKA"); v != "" {
		return strings.Split(v, ","), "WMPROM_TEST_KAFKA=" + v
	}
	var passed sourceLog
	passed.pass("WMPROM_TEST_KAFKA not set")
	if addr, ok := fromContainer(t, &passed, kafkaImage, func(ctx context.Context) (testcontainers.Container, string, error) {
		c, err := tckafka.Run(ctx, kafkaImage, tckafka.WithClusterID("wmprom-brokertest"))
		if err != nil {
			return c, "", err
		}
		b, err := c.Brokers(ctx)
		return c, strings.Join(b, ","), err
	}); ok {
		return strings.Split(addr, ","), "testcontainers " + kafkaImage + " at " + addr
	}
	return startKfake(t, 0), "in-process franz-go kfake cluster (" + passed.String() + ")"
}

// startKfake starts a one-broker kfake cluster, on port when it is not 0.
func startKfake(t *testing.T, port int) []string {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1)}
	if port != 0 {
		opts = append(opts, kfake.Ports(port))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// kafkaSaramaSubscriberConfig starts new consumer groups at the oldest
// offset (topics are new, and messages may be published before the group
// has joined) and shortens the timings that matter for a test.
func kafkaSaramaSubscriberConfig() *sarama.Config {
	c := kafka.DefaultSaramaSubscriberConfig()
	c.Version = sarama.V2_8_0_0
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	c.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	c.Consumer.Group.Session.Timeout = 6 * time.Second
	c.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	c.Consumer.Retry.Backoff = 100 * time.Millisecond
	c.Consumer.MaxWaitTime = 100 * time.Millisecond
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	return c
}

func kafkaSaramaPublisherConfig() *sarama.Config {
	c := kafka.DefaultSaramaSyncPublisherConfig()
	c.Version = sarama.V2_8_0_0
	c.Producer.Retry.Backoff = 100 * time.Millisecond
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	return c
}

func newKafkaEnv(t *testing.T, brokers []string, source string) *brokerEnv {
	logger := watermillLogger()
	return &brokerEnv{
		source:      source,
		label:       "kafka",
		redelivers:  true,
		nackMeaning: "is resent in-process by watermill-kafka after NackResendSleep (the offset is not committed); Reject is acked, so the offset moves on",
		newPublisher: func(t *testing.T) message.Publisher {
			p, err := kafka.NewPublisher(kafka.PublisherConfig{
				Brokers:               brokers,
				Marshaler:             kafka.DefaultMarshaler{},
				OverwriteSaramaConfig: kafkaSaramaPublisherConfig(),
			}, logger)
			if err != nil {
				t.Fatalf("kafka publisher: %v", err)
			}
			t.Cleanup(func() { _ = p.Close() })
			return p
		},
		newSubscriber: func(t *testing.T, group string) message.Subscriber {
			s, err := kafka.NewSubscriber(kafka.SubscriberConfig{
				Brokers:               brokers,
				Unmarshaler:           kafka.DefaultMarshaler{},
				OverwriteSaramaConfig: kafkaSaramaSubscriberConfig(),
				ConsumerGroup:         uniqueName(group),
				NackResendSleep:       20 * time.Millisecond,
				ReconnectRetrySleep:   100 * time.Millisecond,
			}, logger)
			if err != nil {
				t.Fatalf("kafka subscriber: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		prepare: func(t *testing.T, topics ...string) {
			admin, err := sarama.NewClusterAdmin(brokers, kafkaSaramaPublisherConfig())
			if err != nil {
				t.Fatalf("kafka admin: %v", err)
			}
			for _, topic := range topics {
				if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
					t.Fatalf("create topic %s: %v", topic, err)
				}
			}
			t.Cleanup(func() {
				for _, topic := range topics {
					_ = admin.DeleteTopic(topic)
				}
				_ = admin.Close()
			})
		},
		closedPublishErrorType: "errors.fundamental",
	}
}

// TestKafka runs the shared scenario on watermill-kafka.
func TestKafka(t *testing.T) {
	brokers, source := kafkaBrokers(t)
	runScenario(t, newKafkaEnv(t, brokers, source))
}
