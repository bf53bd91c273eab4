// Package benchmarks measures what wmprom costs next to no
// instrumentation, next to do-nothing hooks at the same places, next to
// the bare recording (on GoChannel) and next to Watermill's own
// components/metrics, on paths longer than the root package's hot-path
// benchmarks: a whole router on a GoChannel, a router on NATS JetStream
// (embedded nats-server) and on Redis streams (a redis-server process of
// its own), and 10 to 10,000 distinct handlers and destinations.
//
// It has no code of its own: everything is in _test.go files, and
// everything but its three quick harness tests runs only under -bench. The
// commands and the measured numbers are in BENCHMARKS.md at the
// repository root.
package benchmarks
