// Package wmprom records FastStream's Prometheus metrics for Watermill
// routers and publishers, so that services written in Go fill the same
// Grafana dashboard (FastStream Metrics, grafana.com id 22130) as services
// written in Python with FastStream's PrometheusMiddleware.
//
// # Wiring
//
// One *Metrics owns the nine metric families; create it once with New and
// add its Plugin to the router:
//
//	reg := prometheus.NewRegistry()
//	m, err := wmprom.New(reg, wmprom.WithAppName("orders-service"))
//	if err != nil {
//		return err
//	}
//	router.AddPlugin(m.Plugin)
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
//
// There are three ways in, and their place in the chain decides what a
// message is:
//
//   - router.AddPlugin(m.Plugin) instruments the whole router: its
//     handlers, the publishers of their produced messages, and every
//     handler's series at zero from the moment the router subscribes it.
//     The Plugin's middleware is the innermost (plugins run at
//     Router.Run): it counts every attempt a Retry makes and sees the
//     errors a PoisonQueue or Recoverer handles.
//   - router.AddMiddleware(m.Middleware), added first, is the outermost:
//     one delivery is one message. Add
//     router.AddPublisherDecorators(m.DecoratePublisher) too, so that a
//     failed publish of produced messages counts as an error.
//   - m.DecoratePublisher(pub) instruments a publisher used outside any
//     router. WithDestinations creates its series at zero.
//
// Use one of the first two per router, not both: see ErrInstrumentedTwice.
// A service that pushes OTLP instead of being scraped reads the registry
// through OpenTelemetry's Prometheus bridge: see docs/otlp.md.
//
// # Metrics
//
// The names start with the prefix, "faststream" unless WithPrefix says
// otherwise. Every family has the labels app_name (WithAppName, by
// default the prefix) and broker, then the labels of WithLabel and
// WithLabelFunc. The receive families have the label handler, the
// subscribed topic (or the handler's name, see WithHandlerLabel); the
// publish families have destination, the topic published to.
//
//	faststream_received_messages_total                            counter    app_name, broker, handler
//	faststream_received_messages_size_bytes                       histogram  app_name, broker, handler
//	faststream_received_messages_in_process                       gauge      app_name, broker, handler
//	faststream_received_processed_messages_total                  counter    app_name, broker, handler, status
//	faststream_received_processed_messages_duration_seconds       histogram  app_name, broker, handler
//	faststream_received_processed_messages_exceptions_total       counter    app_name, broker, handler, exception_type
//	faststream_published_messages_total                           counter    app_name, broker, destination, status
//	faststream_published_messages_duration_seconds                histogram  app_name, broker, destination
//	faststream_published_messages_exceptions_total                counter    app_name, broker, destination, exception_type
//
// The size histogram's buckets are 2^4, 2^6, ... 2^24 bytes; the duration
// histograms' are FastStream's, .005 to 10 seconds.
//
// broker is "kafka", "rabbit", "nats" or "redis" for the Watermill
// pub/subs of those brokers, as FastStream names them; another pub/sub is
// named by its Go package ("gochannel", "sql"), unless WithBroker names it.
//
// # Statuses
//
// received_processed_messages_total has one status per message: acked
// (the handler returned nil or Ack, and its produced messages, if any,
// were published), nacked (it returned Nack or nacked the message; the
// broker delivers it again), rejected (it returned Reject, or a
// PoisonQueue inside the middleware dead-lettered the message; it is not
// delivered again), skipped (it returned Skip) or error (any other error,
// a panic, or a failed publish of its produced messages; the router nacks
// it). The handler's own msg.Ack() or msg.Nack() wins over what it
// returns. All five statuses start at zero with the handler's series.
// Whenever no message is in process, received = acked + nacked +
// rejected + skipped + error. published_messages_total counts messages
// with status "success" or "error" (a batch counts each of its messages).
//
// # Exception types
//
// A handler's error (other than Ack, Nack, Reject and Skip), a panic, or
// a failed publish adds one to an exceptions family, with an
// exception_type that names the error's kind, never its text: its own
// ErrorType() string method's result; "context.Canceled",
// "context.DeadlineExceeded" or "panic"; else the Go type of the innermost
// error that is more than a wrapper of fmt, errors or github.com/pkg/errors,
// such as "json.SyntaxError". WithErrorType replaces this classifier, and
// past 50 distinct types (WithMaxExceptionTypes) a family counts "other".
//
// # Message age
//
// WithMessageAge(true) adds what FastStream does not measure: how long a
// message waited between its publish and its handler (see WithMessageAge).
//
// # Label values
//
// No label value is ever empty, as dashboard 22130 hides such series: a
// missing topic, handler, broker or WithLabelFunc value is "unknown".
// With WithHandlerLabel(HandlerName) a handler's series appear with its
// first message, as the router names no handler before that.
//
// # Exemplars
//
// A message that carries a W3C traceparent in its metadata (as
// Watermill's tracing middlewares put it) adds its trace id, as exemplar
// label trace_id, to the counters and duration histograms it updates;
// WithTraceID reads it from elsewhere, WithExemplars(false) turns this
// off. Prometheus only receives exemplars in the OpenMetrics format: serve
// /metrics with promhttp.HandlerOpts{EnableOpenMetrics: true} and run
// Prometheus with --enable-feature=exemplar-storage.
//
// # Logs
//
// Reject, Skip and Ack tell the router nil, so the Plugin logs their
// causes on the router's logger (Reject at error level, the others at
// info); Middleware and DecoratePublisher on their own log them through
// WithLogger. Misuse is reported once (ErrInstrumentedTwice).
package wmprom
