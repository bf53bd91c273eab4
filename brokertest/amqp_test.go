package brokertest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"
	tcrabbitmq "github.com/testcontainers/testcontainers-go/modules/rabbitmq"
)

// rabbitImage is the image testcontainers runs when a Docker engine is
// reachable and WMPROM_TEST_AMQP is not set.
const rabbitImage = "rabbitmq:3.13-management-alpine"

// amqpURL finds a RabbitMQ: WMPROM_TEST_AMQP, a testcontainers RabbitMQ,
// or one answering on the default local address; otherwise the test skips.
func amqpURL(t *testing.T) (url, source string) {
	t.Helper()
	if v := os.Getenv("WMPROM_TEST_AMQP"); v != "" {
		return v, "WMPROM_TEST_AMQP=" + redactURL(v)
	}
	var passed sourceLog
	passed.pass("WMPROM_TEST_AMQP not set")
	if u, ok := fromContainer(t, &passed, rabbitImage, func(ctx context.Context) (testcontainers.Container, string, error) {
		c, err := tcrabbitmq.Run(ctx, rabbitImage)
		if err != nil {
			return c, "", err
		}
		u, err := c.AmqpURL(ctx)
		return c, u, err
	}); ok {
		return u, "testcontainers " + rabbitImage + " at " + redactURL(u)
	}
	// Nothing embeds an AMQP broker in Go; a RabbitMQ on the default local
	// address with the default account is the last resort.
	conn, err := amqp091.DialConfig(localAMQP, amqp091.Config{Dial: amqp091.DefaultDial(time.Second)})
	if err == nil {
		_ = conn.Close()
		return localAMQP, "RabbitMQ answering on the default local address " + redactURL(localAMQP) + " (" + passed.String() + ")"
	}
	passed.pass("nothing answers on %s (%v)", redactURL(localAMQP), err)
	t.Skipf("no RabbitMQ: %s; set WMPROM_TEST_AMQP=amqp://user:pass@host:5672/", passed)
	return "", ""
}

// localAMQP is RabbitMQ's default local address and account.
const localAMQP = "amqp://guest:guest@127.0.0.1:5672/"

// redactURL drops the password from a broker URL before it is logged.
func redactURL(u string) string {
	uri, err := amqp091.ParseURI(u)
	if err != nil || uri.Password == "" {
		return u
	}
	uri.Password = "xxx"
	return uri.String()
}

func newAMQPEnv(t *testing.T, url, source string) *brokerEnv {
	logger := watermillLogger()
	// Durable queues named after the topics, on the default exchange:
	// the configuration users get from NewDurableQueueConfig.
	cfg := amqp.NewDurableQueueConfig(url)
	return &brokerEnv{
		source:      source,
		label:       "rabbit",
		redelivers:  true,
		nackMeaning: "is basic.nack with requeue: RabbitMQ puts the message back on the queue and delivers it again; Reject acks it, so it leaves the queue",
		newPublisher: func(t *testing.T) message.Publisher {
			p, err := amqp.NewPublisher(cfg, logger)
			if err != nil {
				t.Fatalf("amqp publisher: %v", err)
			}
			t.Cleanup(func() { _ = p.Close() })
			return p
		},
		newSubscriber: func(t *testing.T, group string) message.Subscriber {
			s, err := amqp.NewSubscriber(cfg, logger)
			if err != nil {
				t.Fatalf("amqp subscriber: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		prepare: func(t *testing.T, topics ...string) {
			// Durable queues survive the test: delete them afterwards.
			t.Cleanup(func() {
				conn, err := amqp091.Dial(url)
				if err != nil {
					return
				}
				defer conn.Close()
				ch, err := conn.Channel()
				if err != nil {
					return
				}
				defer ch.Close()
				for _, topic := range topics {
					_, _ = ch.QueueDelete(topic, false, false, false)
				}
			})
		},
		closedPublishErrorType: "errors.fundamental",
	}
}

// TestAMQP runs the shared scenario on watermill-amqp (RabbitMQ).
func TestAMQP(t *testing.T) {
	url, source := amqpURL(t)
	runScenario(t, newAMQPEnv(t, url, source))
}
