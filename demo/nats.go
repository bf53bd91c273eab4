package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/nats-io/nats.go"
)

// natsStreamMaxAge bounds what the demo leaves in JetStream: it runs for hours
// in the compose stack and nobody reads old orders.
const natsStreamMaxAge = 10 * time.Minute

// newNATSBroker uses JetStream: one stream per topic (the stream is named after
// the topic), so that Nack really redelivers.
func newNATSBroker(cfg config) broker {
	p := pipeline{prefix: "nats"}
	return broker{
		name: "nats",
		addr: redactURL(cfg.natsURL),
		connect: func(_ context.Context, logger watermill.LoggerAdapter) (*connection, error) {
			opts := []nats.Option{
				nats.Name("wmprom-demo"),
				nats.Timeout(5 * time.Second),
				nats.MaxReconnects(-1),
			}
			if err := provisionStreams(cfg.natsURL, opts, p.topics()); err != nil {
				return nil, err
			}
			jsCfg := wmnats.JetStreamConfig{
				// Streams are provisioned above, with limits watermill's auto-provisioning would not set.
				AutoProvision:    false,
				SubscribeOptions: []nats.SubOpt{nats.DeliverNew(), nats.AckExplicit()},
			}
			pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{
				URL:         cfg.natsURL,
				NatsOptions: opts,
				Marshaler:   &wmnats.NATSMarshaler{},
				JetStream:   jsCfg,
			}, logger)
			if err != nil {
				return nil, err
			}
			sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
				URL:            cfg.natsURL,
				NatsOptions:    opts,
				Unmarshaler:    &wmnats.NATSMarshaler{},
				AckWaitTimeout: 30 * time.Second,
				CloseTimeout:   10 * time.Second,
				JetStream:      jsCfg,
			}, logger)
			if err != nil {
				return nil, errors.Join(err, pub.Close())
			}
			return sharedConnection(pub, sub, func() error { return errors.Join(pub.Close(), sub.Close()) }), nil
		},
	}
}

// provisionStreams creates the pipeline's streams if missing, with an age limit.
func provisionStreams(url string, opts []nats.Option, topics []string) error {
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		return err
	}
	for _, topic := range topics {
		if _, err := js.StreamInfo(topic); err == nil {
			continue
		} else if !errors.Is(err, nats.ErrStreamNotFound) {
			return fmt.Errorf("look up stream %s: %w", topic, err)
		}
		if _, err := js.AddStream(&nats.StreamConfig{
			Name:     topic,
			Subjects: []string{topic},
			MaxAge:   natsStreamMaxAge,
		}); err != nil {
			return fmt.Errorf("create stream %s: %w", topic, err)
		}
	}
	return nil
}
