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
//     handler's series at zero from the moment the router subscribes it
//     (unless a WithLabelFunc label makes them depend on each message).
//     Plugins run at Router.Run, after every middleware added before, so
//     the Plugin's middleware is the innermost: it counts every attempt a
//     Retry makes and sees the errors a PoisonQueue or Recoverer handles.
//   - router.AddMiddleware(m.Middleware), added first, is the outermost:
//     one delivery is one message, whatever the middlewares inside it do.
//     Add router.AddPublisherDecorators(m.DecoratePublisher) as well, so
//     that a failed publish of produced messages counts as an error. The
//     series then appear with each handler's first message.
//   - m.DecoratePublisher(pub) instruments a publisher used outside any
//     router. WithDestinations creates its series at zero.
//
// Use one of the first two per router, not both: see ErrInstrumentedTwice.
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
// received_processed_messages_total has one status per message:
//
//   - acked: the handler returned nil (or Ack), and its produced messages,
//     if any, were published;
//   - nacked: the handler returned Nack, or nacked the message itself; the
//     broker delivers it again;
//   - rejected: the handler returned Reject, or a PoisonQueue inside the
//     middleware dead-lettered the message; it is acknowledged and not
//     delivered again;
//   - skipped: the handler returned Skip; the message is acknowledged;
//   - error: the handler returned any other error or panicked, or
//     publishing its produced messages failed; the router nacks it.
//
// The handler's own msg.Ack() or msg.Nack() wins over what it returns.
// All five statuses start at zero with the handler's series. Whenever no
// message is in process, received = acked + nacked + rejected + skipped +
// error.
//
// published_messages_total counts messages with status "success" or
// "error" (a batch Publish counts each of its messages).
//
// # Exception types
//
// A handler's error (other than Ack, Nack, Reject and Skip), a panic, or
// a failed publish adds one to an exceptions family, with an
// exception_type that names the error's kind, never its text: an error
// (anywhere in its chain) with an ErrorType() string method names its own
// type; then "context.Canceled", "context.DeadlineExceeded" and "panic";
// else the Go type of the innermost error that is more than a wrapper
// (fmt.Errorf's %w, errors.Join and github.com/pkg/errors are looked
// through), such as "json.SyntaxError" or "errors.errorString".
// WithErrorType replaces this classifier. Only the first 50 distinct
// types (WithMaxExceptionTypes) are kept per family; later ones are
// counted as "other". The exceptions families have no series until their
// first error.
//
// # Message age
//
// WithMessageAge(true) adds what FastStream does not measure: how long a
// message waited between its publish and its handler, in the histogram
// received_messages_age_seconds and the counters
// received_messages_age_unknown_total (no readable publish time) and
// received_messages_age_clamped_total (published in the future by this
// host's clock), with the labels of the receive families. The publish
// time comes from WithPublishTime (the broker's timestamp) or from the
// stamp the decorated publisher writes under PublishedAtKey.
//
// # Label values
//
// No label value is ever empty, as dashboard 22130 hides such series: a
// missing topic, handler, broker or WithLabelFunc value is "unknown".
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
// The router logs the errors handlers return, Nack's included. Reject,
// Skip and Ack tell it nil, so the Plugin logs their causes on the
// router's logger (Reject at error level, Skip and Ack at info level);
// Middleware and DecoratePublisher used on their own log them through
// WithLogger. A Metrics that finds itself instrumenting a handler or a
// publisher twice says so once (ErrInstrumentedTwice) and counts once.
package wmprom
