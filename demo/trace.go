package main

import (
	"encoding/hex"
	"math/rand/v2"
	"strings"
)

// The demo has no tracer, but it carries W3C trace context in message
// metadata exactly as Watermill's OpenTelemetry middlewares do, so that
// wmprom attaches trace ids as exemplars and Grafana's exemplar dots have
// something to link to. A placed order starts a trace; every message a
// handler produces from it continues that trace with a span of its own.

// traceparentKey is the metadata key Watermill's tracing middlewares use.
const traceparentKey = "traceparent"

// newTraceparent starts a sampled trace: "00-<trace id>-<span id>-01".
func newTraceparent() string {
	return "00-" + randomHex(16) + "-" + randomHex(8) + "-01"
}

// childTraceparent continues parent's trace with a new span. A message
// without a valid parent starts a trace of its own, as a tracer would.
func childTraceparent(parent string) string {
	parts := strings.Split(parent, "-")
	if len(parts) != 4 || len(parts[1]) != 32 || !isLowerHex(parts[1]) || strings.Trim(parts[1], "0") == "" {
		return newTraceparent()
	}
	return "00-" + parts[1] + "-" + randomHex(8) + "-" + parts[3]
}

// randomHex returns n random bytes in lower-case hex, never all zero (the
// W3C format reserves zero ids for "invalid").
func randomHex(n int) string {
	b := make([]byte, n)
	for {
		nonZero := false
		for i := range b {
			b[i] = byte(rand.Uint32())
			nonZero = nonZero || b[i] != 0
		}
		if nonZero {
			return hex.EncodeToString(b)
		}
	}
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
