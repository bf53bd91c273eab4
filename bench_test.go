package wmprom

import (
	"context"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
)

// routerContext returns the context a router gives messages of handler
// "orders" on a GoChannel, so benchmarks see what production sees.
func routerContext(b *testing.B, topic string) context.Context {
	b.Helper()
	got := make(chan context.Context, 1)
	t := &testing.T{}
	tr := runRouterB(b, func(r *message.Router, ps *gochannel.GoChannel) {
		addConsumer(r, topic, topic, ps, func(msg *message.Message) error {
			select {
			case got <- msg.Context():
			default:
			}
			return nil
		})
	})
	tr.publish(t, topic, "x")
	return <-got
}

func runRouterB(b *testing.B, setup func(r *message.Router, ps *gochannel.GoChannel)) *testRouter {
	t := &testing.T{}
	tr := runRouter(t, setup)
	b.Cleanup(func() { _ = tr.Close() })
	return tr
}

// instrumentations are the middlewares compared: none, wmprom, and
// Watermill's own components/metrics.
func instrumentations(b *testing.B) []struct {
	name string
	mw   message.HandlerMiddleware
} {
	m, err := New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	wm := metrics.NewPrometheusMetricsBuilder(prometheus.NewRegistry(), "", "").NewRouterMiddleware()
	return []struct {
		name string
		mw   message.HandlerMiddleware
	}{
		{"none", func(h message.HandlerFunc) message.HandlerFunc { return h }},
		{"wmprom", m.Middleware},
		{"watermill", wm.Middleware},
	}
}

func emptyHandler(*message.Message) ([]*message.Message, error) { return nil, nil }

func BenchmarkMiddleware(b *testing.B) {
	ctx := routerContext(b, "orders")
	for _, in := range instrumentations(b) {
		b.Run(in.name, func(b *testing.B) {
			h := in.mw(emptyHandler)
			msg := message.NewMessage("1", []byte("payload"))
			msg.SetContext(ctx)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				_, _ = h(msg)
			}
		})
	}
}

// BenchmarkMiddlewareParallel runs one handler from GOMAXPROCS goroutines.
func BenchmarkMiddlewareParallel(b *testing.B) {
	ctx := routerContext(b, "orders")
	for _, in := range instrumentations(b) {
		b.Run(in.name, func(b *testing.B) {
			h := in.mw(emptyHandler)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				msg := message.NewMessage("1", []byte("payload"))
				msg.SetContext(ctx)
				for pb.Next() {
					_, _ = h(msg)
				}
			})
		})
	}
}

// BenchmarkMiddlewareParallelHandlers gives each goroutine its own handler.
func BenchmarkMiddlewareParallelHandlers(b *testing.B) {
	ctxs := make(chan context.Context, 16)
	for i := range cap(ctxs) {
		ctxs <- routerContext(b, fmt.Sprintf("orders-%d", i))
	}
	for _, in := range instrumentations(b) {
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := <-ctxs
				defer func() { ctxs <- ctx }()
				h := in.mw(emptyHandler)
				msg := message.NewMessage("1", []byte("payload"))
				msg.SetContext(ctx)
				for pb.Next() {
					_, _ = h(msg)
				}
			})
		})
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(string, ...*message.Message) error { return nil }
func (nopPublisher) Close() error                              { return nil }

func BenchmarkPublisher(b *testing.B) {
	m, err := New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	wm := metrics.NewPrometheusMetricsBuilder(prometheus.NewRegistry(), "", "")
	decorators := []struct {
		name     string
		decorate message.PublisherDecorator
	}{
		{"none", func(p message.Publisher) (message.Publisher, error) { return p, nil }},
		{"wmprom", m.DecoratePublisher},
		{"watermill", wm.DecoratePublisher},
	}
	for _, d := range decorators {
		b.Run(d.name, func(b *testing.B) {
			pub, err := d.decorate(nopPublisher{})
			if err != nil {
				b.Fatal(err)
			}
			msgs := []*message.Message{message.NewMessage("1", []byte("payload"))}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				// Watermill's decorator marks the message's context on
				// every publish; a fresh context keeps its chain from
				// growing over the iterations.
				msgs[0].SetContext(context.Background())
				_ = pub.Publish("payments", msgs...)
			}
		})
	}
}

// BenchmarkMiddlewareExemplars prices exemplars: off, on for a message
// without a trace (one metadata look-up), and on with a traceparent.
func BenchmarkMiddlewareExemplars(b *testing.B) {
	ctx := routerContext(b, "orders")
	cases := []struct {
		name   string
		opts   []Option
		traced bool
	}{
		{"off", []Option{WithExemplars(false)}, false},
		{"on-untraced", nil, false},
		{"on-traced", nil, true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			m, err := New(prometheus.NewRegistry(), tc.opts...)
			if err != nil {
				b.Fatal(err)
			}
			h := m.Middleware(emptyHandler)
			msg := message.NewMessage("1", []byte("payload"))
			if tc.traced {
				msg.Metadata.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			}
			msg.SetContext(ctx)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				_, _ = h(msg)
			}
		})
	}
}

// routerPublishingContext returns the context a router gives messages of
// a handler "orders" that publishes to "payments" on a GoChannel.
func routerPublishingContext(b *testing.B) context.Context {
	b.Helper()
	got := make(chan context.Context, 1)
	t := &testing.T{}
	tr := runRouterB(b, func(r *message.Router, ps *gochannel.GoChannel) {
		r.AddHandler("orders", "orders", ps, "payments", ps, func(msg *message.Message) ([]*message.Message, error) {
			select {
			case got <- msg.Context():
			default:
			}
			return nil, nil
		})
	})
	tr.publish(t, "orders", "x")
	return <-got
}

// BenchmarkProduced prices a message whose handler returns 1 or 3
// produced messages, doing what the router does: the handler chain, the publish of
// the produced message through the decorated publisher, then the ack.
// "none" allocates what every such message costs without instrumentation
// (the consumed and the produced messages); the difference is wmprom's.
func BenchmarkProduced(b *testing.B) {
	ctx := routerPublishingContext(b)
	m, err := New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name     string
		mw       message.HandlerMiddleware
		decorate message.PublisherDecorator
	}{
		{"none", func(h message.HandlerFunc) message.HandlerFunc { return h },
			func(p message.Publisher) (message.Publisher, error) { return p, nil }},
		{"wmprom", m.Middleware, m.DecoratePublisher},
	}
	for _, n := range []int{1, 3} {
		for _, tc := range cases {
			b.Run(fmt.Sprintf("produced=%d/%s", n, tc.name), func(b *testing.B) {
				benchmarkProduced(b, ctx, n, tc.mw, tc.decorate)
			})
		}
	}
}

func benchmarkProduced(b *testing.B, ctx context.Context, n int, mw message.HandlerMiddleware, decorate message.PublisherDecorator) {
	pub, err := decorate(nopPublisher{})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(func(*message.Message) ([]*message.Message, error) {
		out := make([]*message.Message, n)
		for i := range out {
			out[i] = message.NewMessage("2", nil)
		}
		return out, nil
	})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		msg := message.NewMessage("1", []byte("payload"))
		msg.SetContext(ctx)
		produced, err := h(msg)
		if err == nil {
			err = pub.Publish("payments", produced...)
		}
		if err != nil {
			msg.Nack()
		} else {
			msg.Ack()
		}
	}
}

// BenchmarkProducedInFlight prices a message with produced messages while
// n other statuses wait for their publish (a slow broker, many handlers):
// each op handles a message and publishes the produced message of the
// oldest one in flight, so that finding its status is the worst case of
// a search from the newest.
func BenchmarkProducedInFlight(b *testing.B) {
	for _, n := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("in-flight=%d", n), func(b *testing.B) {
			m, err := New(prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			pub, err := m.DecoratePublisher(nopPublisher{})
			if err != nil {
				b.Fatal(err)
			}
			produced := make([][]*message.Message, n)
			for i := range produced {
				produced[i] = []*message.Message{message.NewMessage("2", nil)}
			}
			next := 0
			h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return produced[next], nil })
			msg := message.NewMessage("1", nil)
			handle := func() {
				if _, err := h(msg); err != nil {
					b.Fatal(err)
				}
				next = (next + 1) % n
			}
			for range n - 1 {
				handle()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				handle()                                                           // the newest...
				if err := pub.Publish("payments", produced[next]...); err != nil { // ...and the oldest's publish
					b.Fatal(err)
				}
			}
		})
	}
}
