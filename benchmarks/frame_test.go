package benchmarks

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wmprom/wmprom"
)

// BenchmarkPublisherFrame runs the Redis pipeline of BenchmarkBrokerRedis
// with a publisher decorator only (the middleware and the subscriber
// decorator pass through, as in "hooks"), to show what the decorator's
// own stack frame costs. A broker client's publish runs below it, many
// frames deep, on the router goroutine of the message:
//
//   - frame=small: a do-nothing decorator, whose frame holds its arguments;
//   - frame=large: the same holding 256 bytes more, about what wmprom's
//     Publish kept before its recording moved into frames of its own;
//   - frame=wmprom: wmprom's DecoratePublisher, recording every publish.
//
// On the AMD EPYC VM of this work, frame=large took 8-13% longer per
// message than frame=small, with no work done in it; see BENCHMARKS.md,
// finding 8. Compare frame=wmprom with frame=small, in interleaved
// processes:
//
//	for i in 1 2 3 4 5 6 7 8; do for f in small large wmprom; do
//	  go test -run '^$' -bench "PublisherFrame/frame=$f\$" -benchtime 20000x ./benchmarks/
//	done; done
func BenchmarkPublisherFrame(b *testing.B) {
	env := redisEnv(b)
	for _, in := range []instrumentation{
		{name: "small", add: func(_ testing.TB, r *message.Router, _ *prometheus.Registry) {
			addHooks(r, passThrough, func(pub message.Publisher) (message.Publisher, error) { return noopPublisher{pub}, nil })
		}},
		{name: "large", add: func(_ testing.TB, r *message.Router, _ *prometheus.Registry) {
			addHooks(r, passThrough, func(pub message.Publisher) (message.Publisher, error) { return largeFramePublisher{pub}, nil })
		}},
		{name: "wmprom", add: func(tb testing.TB, r *message.Router, reg *prometheus.Registry) {
			m, err := wmprom.New(reg)
			if err != nil {
				tb.Fatal(err)
			}
			addHooks(r, passThrough, m.DecoratePublisher)
		}},
	} {
		b.Run("frame="+in.name, func(b *testing.B) { benchmarkBroker(b, env, in) })
	}
}

// largeFramePublisher does nothing but keep 256 bytes on its frame while
// the publish it wraps runs.
type largeFramePublisher struct{ message.Publisher }

func (p largeFramePublisher) Publish(topic string, msgs ...*message.Message) error {
	var frame [32]uint64
	keepFrame(&frame)
	err := p.Publisher.Publish(topic, msgs...)
	keepFrame(&frame)
	return err
}

// keepFrame uses frame where the compiler cannot see it, so that it stays
// on the caller's stack.
//
//go:noinline
func keepFrame(frame *[32]uint64) { frame[0]++ }
