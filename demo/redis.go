package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/redis/go-redis/v9"
)

// redisStreamMaxLen caps each stream, since the demo runs for hours in the compose stack.
const redisStreamMaxLen = 10_000

// newRedisBroker uses one Redis stream per topic, consumed by a consumer group.
func newRedisBroker(cfg config) broker {
	return broker{
		name: "redis",
		addr: cfg.redisAddr,
		connect: func(ctx context.Context, logger watermill.LoggerAdapter) (*connection, error) {
			// Publisher and subscriber each close their client, so they must not share one.
			pubClient := redis.NewClient(&redis.Options{Addr: cfg.redisAddr, DialTimeout: 5 * time.Second})
			subClient := redis.NewClient(&redis.Options{Addr: cfg.redisAddr, DialTimeout: 5 * time.Second})
			closeClients := func() error { return errors.Join(pubClient.Close(), subClient.Close()) }
			// go-redis dials lazily; pinging makes "Redis is down" a connect error, not a silent stall.
			pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := pubClient.Ping(pingCtx).Err(); err != nil {
				return nil, errors.Join(fmt.Errorf("ping: %w", err), closeClients())
			}
			pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{
				Client:        pubClient,
				DefaultMaxlen: redisStreamMaxLen,
			}, logger)
			if err != nil {
				return nil, errors.Join(err, closeClients())
			}
			sub, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
				Client:          subClient,
				ConsumerGroup:   "wmprom-demo",
				NackResendSleep: 100 * time.Millisecond,
				// Without this the first read blocks forever and its goroutine outlives the session.
				DisableIndefiniteInitialBlock: true,
			}, logger)
			if err != nil {
				return nil, errors.Join(err, closeClients())
			}
			return sharedConnection(pub, sub, func() error {
				return errors.Join(ignoreClosed(sub.Close()), ignoreClosed(pub.Close()))
			}), nil
		},
	}
}

// ignoreClosed treats "already closed" as success: the router closes the
// publisher and subscriber itself when it stops.
func ignoreClosed(err error) error {
	if errors.Is(err, redis.ErrClosed) {
		return nil
	}
	return err
}
