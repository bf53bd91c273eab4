package main

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// newGoChannelBroker runs the pipeline in memory, so the demo works with nothing installed.
func newGoChannelBroker(config) broker {
	return broker{
		name: "gochannel",
		addr: "in-process",
		connect: func(_ context.Context, logger watermill.LoggerAdapter) (*connection, error) {
			ch := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 1024}, logger)
			return &connection{
				publisher:  ch,
				subscriber: func(string) (message.Subscriber, error) { return oneAtATime{ch}, nil },
				close:      ch.Close,
			}, nil
		},
	}
}

// oneAtATime delivers a subscription's messages the way the real brokers'
// subscribers do: the next one only once the previous one is acked or
// nacked. A GoChannel hands every message to the router at once, and the
// router runs each in a goroutine of its own, so a slow handler would never
// make a message wait and the message age panels would have nothing to show.
type oneAtATime struct{ message.Subscriber }

// Subscribe subscribes to topic and passes its messages on one by one.
func (s oneAtATime) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	in, err := s.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	go func() {
		defer close(out)
		for msg := range in {
			select {
			case out <- msg:
			case <-ctx.Done():
				return
			}
			select {
			case <-msg.Acked():
			case <-msg.Nacked():
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
