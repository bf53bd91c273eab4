package main

import (
	"slices"
	"testing"
	"time"
)

// TestRetryWaits pins what docs/demo.md says about retrying a broker: the
// backoff starts at 1 s and doubles up to 30 s, and each wait is a random
// time between half and all of it, so the first retry comes after 0.5-1 s.
func TestRetryWaits(t *testing.T) {
	var backoffs []time.Duration
	for b := minBackoff; len(backoffs) < 8; b = nextBackoff(b) {
		backoffs = append(backoffs, b)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(backoffs, want) {
		t.Fatalf("backoffs %v, want %v", backoffs, want)
	}
	for _, b := range backoffs {
		lo, hi := b, time.Duration(0)
		for range 1000 {
			w := jittered(b)
			if w < b/2 || w > b {
				t.Fatalf("backoff %v: wait %v, want between %v and %v", b, w, b/2, b)
			}
			lo, hi = min(lo, w), max(hi, w)
		}
		t.Logf("backoff %v: 1000 waits from %v to %v", b, lo, hi)
	}
}
