// Package e2e holds the project's end-to-end tests, each run on Prometheus
// 2.42 and on Prometheus 3 (.ci/prometheus3.version): the demo program scraped
// by a real Prometheus server (OpenMetrics, exemplar storage on), every query
// of Grafana dashboard 22130 and of the project's own dashboard evaluated
// against it, a service in the test process followed message by message into
// Prometheus (the first message counted, a trace id stored as exemplar),
// native histograms on Prometheus 3, a mixed Python and Go fleet, and the
// docker-compose stack checked without an engine. It has no code of its
// own besides these tests.
package e2e
