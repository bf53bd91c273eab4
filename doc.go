// Package wmprom records FastStream's Prometheus metrics for Watermill
// routers and publishers, so that services written in Go fill the same
// Grafana dashboard (FastStream Metrics, grafana.com id 22130) as services
// written in Python with FastStream's PrometheusMiddleware.
//
// One *Metrics owns the nine metric families. There are three ways in:
//
//   - router.AddPlugin(m.Plugin): the whole router, handlers and the
//     publishers of their produced messages, with one line;
//   - router.AddMiddleware(m.Middleware) together with
//     router.AddPublisherDecorators(m.DecoratePublisher), when the place of
//     the middleware in the chain matters;
//   - m.DecoratePublisher(pub), for a publisher used outside any router.
//
// Handlers report outcomes other than "acked" and "error" by returning
// Nack, Reject or Skip (or Ack, to acknowledge despite an error). The
// package's README lists the families, labels, statuses and placements.
//
// WithMessageAge(true) adds what FastStream does not measure: how long a
// message waited between its publish and its handler, from the broker's
// timestamp (WithPublishTime) or from the stamp the decorated publisher
// writes under PublishedAtKey.
package wmprom
