package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// Each message arrives only after the one before it was acked or nacked,
// and a nacked one comes again (GoChannel keeps no order: it sends each
// message from a goroutine of its own).
func TestOneAtATime(t *testing.T) {
	ch := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 1024, Persistent: true}, watermill.NopLogger{})
	defer ch.Close()
	const n = 20
	for i := range n {
		if err := ch.Publish("t", message.NewMessage(fmt.Sprint(i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, err := oneAtATime{ch}.Subscribe(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	var settled atomic.Bool
	settled.Store(true)
	var got []string
	for len(got) < n+1 {
		select {
		case msg := <-out:
			if !settled.Load() {
				t.Fatalf("message %s arrived before the one before it was settled", msg.UUID)
			}
			settled.Store(false)
			got = append(got, msg.UUID)
			nack := len(got) == 3 // the third delivery is nacked once
			go func() {
				settled.Store(true)
				if nack {
					msg.Nack()
				} else {
					msg.Ack()
				}
			}()
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d deliveries: %v", len(got), got)
		}
	}
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	if len(seen) != n || seen[got[2]] != 2 {
		t.Errorf("deliveries %v: want each of %d messages once and the nacked %s twice", got, n, got[2])
	}
}
