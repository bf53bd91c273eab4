package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// newKafkaBroker publishes with a sync producer and consumes each topic with
// its own consumer group: topics sharing one group would rebalance each other
// every time one of them joins.
func newKafkaBroker(cfg config) broker {
	return broker{
		name: "kafka",
		addr: strings.Join(cfg.kafkaAddrs, ","),
		// Kafka keeps a timestamp with every record and watermill-kafka hands
		// it over: the message age needs no stamp in the metadata.
		publishTime: func(msg *message.Message) (time.Time, bool) { return kafka.MessageTimestampFromCtx(msg.Context()) },
		connect: func(_ context.Context, logger watermill.LoggerAdapter) (*connection, error) {
			pubCfg := kafka.DefaultSaramaSyncPublisherConfig()
			pubCfg.Net.DialTimeout = 5 * time.Second
			pubCfg.Metadata.Retry.Max = 1
			pub, err := kafka.NewPublisher(kafka.PublisherConfig{
				Brokers:               cfg.kafkaAddrs,
				Marshaler:             kafka.DefaultMarshaler{},
				OverwriteSaramaConfig: pubCfg,
			}, logger)
			if err != nil {
				return nil, err
			}

			var mu sync.Mutex
			var subs []*kafka.Subscriber
			subscriber := func(topic string) (message.Subscriber, error) {
				subCfg := kafka.DefaultSaramaSubscriberConfig()
				subCfg.Net.DialTimeout = 5 * time.Second
				// A new group starts at the oldest message, so orders published while it joins are not lost.
				subCfg.Consumer.Offsets.Initial = sarama.OffsetOldest
				sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
					Brokers:               cfg.kafkaAddrs,
					Unmarshaler:           kafka.DefaultMarshaler{},
					OverwriteSaramaConfig: subCfg,
					ConsumerGroup:         "wmprom-demo-" + topic,
				}, logger)
				if err != nil {
					return nil, err
				}
				mu.Lock()
				defer mu.Unlock()
				subs = append(subs, sub)
				return sub, nil
			}
			return &connection{
				publisher:  pub,
				subscriber: subscriber,
				close: func() error {
					mu.Lock()
					defer mu.Unlock()
					errs := []error{pub.Close()}
					for _, sub := range subs {
						errs = append(errs, sub.Close())
					}
					return errors.Join(errs...)
				},
			}, nil
		},
	}
}
