package wmprom

import (
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Plugin instruments a whole router: it adds Middleware as a router-level
// middleware and DecoratePublisher as a publisher decorator, and creates
// each handler's series at zero when the router subscribes it, so that
// increase() and rate() see even the first message. Register it
// with router.AddPlugin(m.Plugin). Plugins run when the router starts,
// after the middlewares added before, so Middleware ends up innermost:
// it sees every attempt of a Retry and the errors a PoisonQueue or
// Recoverer handles. With both on the router, a handler's produced
// messages are published through this Metrics' decorator, which records
// the status of the message that produced them when the publish returns.
//
// The causes of Reject, Skip and Ack, and misuse reports, go to the
// router's logger unless WithLogger says otherwise. Add either the Plugin
// or Middleware to a router, not both: together, the Plugin's inner
// middleware stops counting and reports ErrInstrumentedTwice.
func (m *Metrics) Plugin(r *message.Router) error {
	if r == nil {
		return errors.New("wmprom: Plugin needs a router, got nil")
	}
	logger := m.cfg.logger
	if logger == nil {
		logger = r.Logger()
	}
	// A router-level middleware is called once for each handler, when the
	// router starts it, and what it returns serves that handler alone.
	r.AddMiddleware(func(h message.HandlerFunc) message.HandlerFunc { return m.instrument(h, logger, true) })
	r.AddPublisherDecorators(func(pub message.Publisher) (message.Publisher, error) { return m.decoratePublisher(pub, logger) })
	r.AddSubscriberDecorators(m.decorateSubscriber)
	return nil
}
