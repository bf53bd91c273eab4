package main

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// newRabbitBroker uses one durable queue per topic on RabbitMQ's default exchange.
func newRabbitBroker(cfg config) broker {
	return broker{
		name: "rabbit",
		addr: redactURL(cfg.amqpURL),
		connect: func(_ context.Context, logger watermill.LoggerAdapter) (*connection, error) {
			amqpCfg := amqp.NewDurableQueueConfig(cfg.amqpURL)
			// The client's default dial timeout is 30 s; a dead address should fail fast.
			amqpCfg.Connection.AmqpConfig = &amqp091.Config{
				Heartbeat: 10 * time.Second,
				Locale:    "en_US",
				Dial:      amqp091.DefaultDial(5 * time.Second),
			}
			pub, err := amqp.NewPublisher(amqpCfg, logger)
			if err != nil {
				return nil, err
			}
			sub, err := amqp.NewSubscriber(amqpCfg, logger)
			if err != nil {
				return nil, errors.Join(err, pub.Close())
			}
			return sharedConnection(pub, sub, func() error { return errors.Join(pub.Close(), sub.Close()) }), nil
		},
	}
}
