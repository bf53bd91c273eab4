package wmprom

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// TestParallelHandlers runs several handlers, each with several messages
// in flight at once, and checks every count exactly. Run it with -race.
func TestParallelHandlers(t *testing.T) {
	const handlers, perHandler = 4, 200
	m, reg := newMetrics(t)
	boom := errors.New("boom")
	tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
		r.AddPlugin(m.Plugin)
		for i := range handlers {
			topic := fmt.Sprintf("topic-%d", i)
			r.AddHandler(topic, topic, ps, topic+"-out", ps, func(msg *message.Message) ([]*message.Message, error) {
				switch msg.Metadata.Get("outcome") {
				case "skip":
					return nil, Skip(nil)
				case "error":
					return nil, Reject(boom)
				}
				return produce("out"), nil
			})
		}
	})
	var wg sync.WaitGroup
	for i := range handlers {
		for j := range perHandler {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := message.NewMessage(fmt.Sprintf("%d-%d", i, j), []byte("0123456789"))
				msg.Metadata.Set("outcome", []string{"ack", "ack", "skip", "error"}[j%4])
				if err := tr.pubsub.Publish(fmt.Sprintf("topic-%d", i), msg); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	waitProcessed(t, reg, handlers*perHandler)
	want := ""
	for i := range handlers {
		topic := fmt.Sprintf("topic-%d", i)
		want += fmt.Sprintf(`
			received_messages_total{handler=%[1]q} 200
			received_messages_in_process{handler=%[1]q} 0
			received_messages_size_bytes_count{handler=%[1]q} 200
			received_messages_size_bytes_sum{handler=%[1]q} 2000
			received_processed_messages_total{handler=%[1]q,status="acked"} 100
			received_processed_messages_total{handler=%[1]q,status="error"} 0
			received_processed_messages_total{handler=%[1]q,status="nacked"} 0
			received_processed_messages_total{handler=%[1]q,status="rejected"} 50
			received_processed_messages_total{handler=%[1]q,status="skipped"} 50
			published_messages_total{destination="%[1]s-out",status="error"} 0
			published_messages_total{destination="%[1]s-out",status="success"} 100`, topic)
	}
	assertSamples(t, reg, []string{"app_name", "broker"}, want,
		"received_messages_total", "received_messages_in_process", "received_messages_size_bytes",
		"received_processed_messages_total", "published_messages_total")
}
