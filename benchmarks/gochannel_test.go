package benchmarks

import (
	"strconv"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
)

// goChannelWindow is how many messages the benchmark keeps in flight on
// a GoChannel. Enough to keep both cores busy; bounded so that GoChannel,
// which starts a goroutine per message published, does not pile up
// goroutines faster than the router drains them.
const goChannelWindow = 64

// BenchmarkRouterGoChannel pushes messages through a router on an
// in-memory GoChannel: one handler consumes "in" and produces one message
// to "out". With out=dropped nobody consumes "out" (GoChannel drops it);
// with out=consumed a second handler consumes it, so each message crosses
// two instrumented handlers and one instrumented publish. One op is one
// message through the whole pipeline. Besides the four setups of every
// end-to-end benchmark it runs the floor (floor_test.go), the bare
// recording that wmprom's cost over the hooks is to be compared with.
func BenchmarkRouterGoChannel(b *testing.B) {
	for _, consume := range []bool{false, true} {
		out := "dropped"
		if consume {
			out = "consumed"
		}
		for _, in := range append(routerInstrumentations, floorInstrumentation) {
			b.Run("out="+out+"/instr="+in.name, func(b *testing.B) {
				runGoChannel(b, in, b.N, consume, prometheus.NewRegistry())
			})
		}
	}
}

// runGoChannel runs n messages through the GoChannel pipeline; under a
// benchmark it times them, without the router's start and stop.
func runGoChannel(tb testing.TB, in instrumentation, n int, consume bool, reg *prometheus.Registry) {
	tb.Helper()
	ps := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	defer ps.Close()
	p := newPipeline(n, goChannelWindow)

	r := newRouter(tb)
	in.add(tb, r, reg)
	var out message.Publisher = &countingPublisher{next: ps, p: p}
	if consume {
		out = ps
		r.AddConsumerHandler("consume", "out", ps, func(*message.Message) error {
			p.complete()
			return nil
		})
	}
	r.AddHandler("produce", "in", ps, "out", out, produce)
	rr := start(tb, r)
	defer rr.stop(tb)

	payload := make([]byte, payloadSize)
	b, timed := tb.(*testing.B)
	if timed {
		b.ResetTimer()
	}
	c := startClock()
	for i := range n {
		p.acquire()
		if err := ps.Publish("in", message.NewMessage(strconv.Itoa(i), payload)); err != nil {
			tb.Fatal(err)
		}
	}
	p.wait(tb)
	if timed {
		b.StopTimer()
		c.report(b)
	}
}
