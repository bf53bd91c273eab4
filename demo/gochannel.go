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
				subscriber: func(string) (message.Subscriber, error) { return ch, nil },
				close:      ch.Close,
			}, nil
		},
	}
}
