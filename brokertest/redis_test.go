package brokertest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
)

// redisImage is the image testcontainers runs when a Docker engine is
// reachable and WMPROM_TEST_REDIS is not set.
const redisImage = "redis:7-alpine"

// redisOptions finds a Redis: WMPROM_TEST_REDIS (host:port or a redis://
// URL), a testcontainers Redis, or an in-process miniredis.
func redisOptions(t *testing.T) (*redis.Options, string) {
	t.Helper()
	if v := os.Getenv("WMPROM_TEST_REDIS"); v != "" {
		return parseRedis(t, v), "WMPROM_TEST_REDIS=" + v
	}
	var passed sourceLog
	passed.pass("WMPROM_TEST_REDIS not set")
	if u, ok := fromContainer(t, &passed, redisImage, func(ctx context.Context) (testcontainers.Container, string, error) {
		c, err := tcredis.Run(ctx, redisImage)
		if err != nil {
			return c, "", err
		}
		u, err := c.ConnectionString(ctx)
		return c, u, err
	}); ok {
		return parseRedis(t, u), "testcontainers " + redisImage + " at " + u
	}
	mr := miniredis.RunT(t)
	return &redis.Options{Addr: mr.Addr()}, "in-process miniredis at " + mr.Addr() + " (" + passed.String() + ")"
}

func parseRedis(t *testing.T, v string) *redis.Options {
	t.Helper()
	if !strings.Contains(v, "://") {
		return &redis.Options{Addr: v}
	}
	o, err := redis.ParseURL(v)
	if err != nil {
		t.Fatalf("redis address %q: %v", v, err)
	}
	return o
}

// newRedisClient gives every publisher and subscriber a client of its own:
// their Close also closes the client they were given.
func newRedisClient(opts *redis.Options) *redis.Client {
	o := *opts
	return redis.NewClient(&o)
}

func newRedisEnv(t *testing.T, opts *redis.Options, source string) *brokerEnv {
	logger := watermillLogger()
	return &brokerEnv{
		source:      source,
		label:       "redis",
		redelivers:  true,
		nackMeaning: "is resent in-process by watermill-redisstream (after NackResendSleep; the entry stays pending until acked); Reject XACKs it, so it is not redelivered",
		newPublisher: func(t *testing.T) message.Publisher {
			p, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: newRedisClient(opts)}, logger)
			if err != nil {
				t.Fatalf("redis publisher: %v", err)
			}
			t.Cleanup(func() { _ = p.Close() })
			return p
		},
		newSubscriber: func(t *testing.T, group string) message.Subscriber {
			s, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
				Client:        newRedisClient(opts),
				ConsumerGroup: group,
				BlockTime:     50 * time.Millisecond,
				// Without this the first XREADGROUP blocks forever and Close
				// waits for it.
				DisableIndefiniteInitialBlock: true,
			}, logger)
			if err != nil {
				t.Fatalf("redis subscriber: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		prepare: func(t *testing.T, topics ...string) {
			t.Cleanup(func() {
				c := newRedisClient(opts)
				defer c.Close()
				_ = c.Del(context.Background(), topics...).Err()
			})
		},
		closedPublishErrorType: "errors.fundamental",
	}
}

// TestRedis runs the shared scenario on watermill-redisstream.
func TestRedis(t *testing.T) {
	opts, source := redisOptions(t)
	runScenario(t, newRedisEnv(t, opts, source))
}
