// Package e2e holds the project's end-to-end tests: the demo program scraped
// by a real Prometheus server, every query of Grafana dashboard 22130
// evaluated against it, and the docker-compose stack checked without an
// engine. It has no code of its own besides these tests.
package e2e
