package wmprom

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// A chain the router builds for one handler counts every message under
// that handler, and reads the handler from the first message's context
// only: a later message whose context an outer middleware replaced is
// still the handler's. A chain built anywhere else reads every message's
// context, and counts a message without the router's context under
// "unknown".
func TestMiddlewareBuiltByRouter(t *testing.T) {
	const builtByRouter = `
		received_messages_total{handler="orders"} 2`
	const checksEveryMessage = `
		received_messages_total{handler="orders"} 1
		received_messages_total{handler="unknown"} 1`
	consume := func(*message.Message) ([]*message.Message, error) { return nil, nil }
	for _, tc := range []struct {
		name  string
		setup func(m *Metrics, r *message.Router, ps *gochannel.GoChannel)
		want  string
	}{
		{"router middleware", func(m *Metrics, r *message.Router, ps *gochannel.GoChannel) {
			r.AddMiddleware(stripContextAfterFirst(), m.Middleware)
			addConsumer(r, "orders", "orders", ps, noPublish(consume))
		}, builtByRouter},
		{"handler middleware", func(m *Metrics, r *message.Router, ps *gochannel.GoChannel) {
			addConsumer(r, "orders", "orders", ps, noPublish(consume)).AddMiddleware(stripContextAfterFirst(), m.Middleware)
		}, builtByRouter},
		{"called by a middleware of the application", func(m *Metrics, r *message.Router, ps *gochannel.GoChannel) {
			r.AddMiddleware(stripContextAfterFirst(), func(h message.HandlerFunc) message.HandlerFunc { return m.Middleware(h) })
			addConsumer(r, "orders", "orders", ps, noPublish(consume))
		}, checksEveryMessage},
		{"handler function wrapped by the application", func(m *Metrics, r *message.Router, ps *gochannel.GoChannel) {
			r.AddMiddleware(stripContextAfterFirst())
			addConsumer(r, "orders", "orders", ps, noPublish(m.Middleware(consume)))
		}, checksEveryMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, reg := newMetrics(t)
			tr := runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) { tc.setup(m, r, ps) })
			// One at a time: a router may run a handler's messages
			// concurrently, and the second could come before the first
			// has filled the chain.
			tr.publish(t, "orders", "1")
			waitProcessed(t, reg, 1)
			tr.publish(t, "orders", "2")
			waitProcessed(t, reg, 2)
			assertSamples(t, reg, []string{"app_name", "broker"}, tc.want, "received_messages_total")
		})
	}
}

// stripContextAfterFirst gives every message after the first an empty
// context, without the router's names of its handler.
func stripContextAfterFirst() message.HandlerMiddleware {
	var seen atomic.Int32
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			if seen.Add(1) > 1 {
				msg.SetContext(context.Background())
			}
			return h(msg)
		}
	}
}

func noPublish(h message.HandlerFunc) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		_, err := h(msg)
		return err
	}
}
