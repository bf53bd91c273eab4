package wmprom

import (
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestExposition pins the whole exposition of all nine families, HELP,
// TYPE, buckets and all, after one message that fails in the handler,
// then in the publish of its produced message, then succeeds. The clock
// is fake: each handler call takes exactly 30 ms.
func TestExposition(t *testing.T) {
	clock := newFakeClock()
	m, reg := newMetrics(t, withClock(clock))
	var calls atomic.Int32
	tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
		r.AddPlugin(m.Plugin)
		r.AddHandler("orders", "orders", ps, "payments", &failOncePublisher{Publisher: ps},
			func(msg *message.Message) ([]*message.Message, error) {
				clock.Advance(30 * time.Millisecond)
				if calls.Add(1) == 1 {
					return nil, &decodeError{}
				}
				return produce("paid"), nil
			})
	})
	tr.publish(t, "orders", string(make([]byte, 100)))
	waitProcessed(t, reg, 3)

	want, err := os.Open("testdata/exposition.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if err := testutil.GatherAndCompare(reg, want); err != nil {
		t.Error(err)
	}
}
