package wmprom

import (
	"context"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// The router publishes a handler's produced messages after the whole
// middleware chain has returned, and nacks the consumed message when that
// publish fails. A message whose handler returned produced messages is
// therefore not known to be acked until the publish returns: the
// middleware hands its status to the decorated publisher through the
// produced messages' context, and the publisher records it.

type awaitingKey struct{}

// awaiting is the undecided status of one consumed message.
type awaiting struct {
	series   *receiveSeries
	exemplar prometheus.Labels
	decided  atomic.Bool
}

// awaitPublish arranges for the status of msg to be recorded when the
// router publishes produced. It refuses when no decorated publisher of
// this Metrics can be on the way: then the caller records the status now.
func (m *Metrics) awaitPublish(s *receiveSeries, msg *message.Message, produced []*message.Message, ex prometheus.Labels) bool {
	if message.PublisherNameFromCtx(msg.Context()) == "<nil>" {
		// The handler has no publisher: the router fails before any
		// publish, with ErrOutputInNoPublisherHandler.
		m.record(s, statusError, message.ErrOutputInNoPublisherHandler, ex)
		return true
	}
	if !m.decoratesPublishers.Load() || message.PublishTopicFromCtx(msg.Context()) == "" {
		return false
	}
	a := &awaiting{series: s, exemplar: ex}
	m.pending.Add(1)
	for _, p := range produced {
		p.SetContext(context.WithValue(p.Context(), awaitingKey{}, a))
	}
	return true
}

// settle records the statuses that msgs were carrying, now that their
// publish returned err.
func (m *Metrics) settle(msgs []*message.Message, err error) {
	if m.pending.Load() == 0 {
		return
	}
	for _, msg := range msgs {
		a, ok := msg.Context().Value(awaitingKey{}).(*awaiting)
		if !ok || !a.decided.CompareAndSwap(false, true) {
			continue
		}
		m.pending.Add(-1)
		if err != nil {
			m.record(a.series, statusError, err, a.exemplar)
		} else {
			m.record(a.series, statusAcked, nil, a.exemplar)
		}
	}
}
