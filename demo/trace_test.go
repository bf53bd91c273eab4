package main

import (
	"regexp"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-01$`)

func TestNewTraceparentIsValidAndFresh(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tp := newTraceparent()
		m := traceparentRE.FindStringSubmatch(tp)
		if m == nil {
			t.Fatalf("traceparent %q is not W3C version 00, sampled", tp)
		}
		if seen[m[1]] {
			t.Fatalf("trace id %s drawn twice", m[1])
		}
		seen[m[1]] = true
	}
}

func TestChildTraceparent(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	child := childTraceparent(parent)
	m := traceparentRE.FindStringSubmatch(child)
	if m == nil || m[1] != "4bf92f3577b34da6a3ce929d0e0e4736" || m[2] == "00f067aa0ba902b7" {
		t.Errorf("child of %s = %s, want the same trace id and a new span id", parent, child)
	}
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"} {
		if got := childTraceparent(bad); !traceparentRE.MatchString(got) || got[3:35] == "00000000000000000000000000000000" {
			t.Errorf("child of invalid %q = %q, want a fresh valid trace", bad, got)
		}
	}
}

// A handler's produced message continues the trace of the message it came
// from, so one order's exemplars on all three handlers name one trace.
func TestHandlerPropagatesTrace(t *testing.T) {
	p := &pipeline{prefix: "test", health: &pipelineHealth{}}
	st := stage{topic: "orders", next: "payments", work: func() time.Duration { return 0 }, size: func() int { return 100 }}
	in := message.NewMessage("1", []byte("{}"))
	in.Metadata.Set(traceparentKey, newTraceparent())
	out, err := p.handle(st, in)
	if err != nil || len(out) != 1 {
		t.Fatalf("handle: %d messages, %v", len(out), err)
	}
	got, want := out[0].Metadata.Get(traceparentKey), in.Metadata.Get(traceparentKey)
	if !traceparentRE.MatchString(got) || got[3:35] != want[3:35] || got == want {
		t.Errorf("produced traceparent %q, want trace %s with a span of its own", got, want[3:35])
	}
}
