package main

import (
	"testing"
	"time"
)

// TestRetryWaits pins what docs/demo.md says about retrying a broker: the
// backoff starts at 1 s and doubles up to 30 s, and each wait is a random
// time between half and all of it, so the first retry comes after 0.5-1 s.
// The backoff itself is cenkalti/backoff's, which keeps no un-jittered
// value to compare: the waits of 1000 runs pin it instead, each retry's
// between half and all of its backoff, and spread over that whole range
// (within 5% of either end), which a backoff of another size would not be.
func TestRetryWaits(t *testing.T) {
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i := range want {
		want[i] *= time.Second
	}
	lo, hi := make([]time.Duration, len(want)), make([]time.Duration, len(want))
	copy(lo, want)
	for range 1000 {
		retry := newRetryBackoff()
		for i, b := range want {
			w := retry.NextBackOff()
			if w < b/2 || w > b {
				t.Fatalf("retry %d, backoff %v: wait %v, want between %v and %v", i+1, b, w, b/2, b)
			}
			lo[i], hi[i] = min(lo[i], w), max(hi[i], w)
		}
	}
	for i, b := range want {
		if lo[i] > b/2+b/20 || hi[i] < b-b/20 {
			t.Errorf("retry %d, backoff %v: 1000 waits from %v to %v, want them spread from %v to %v", i+1, b, lo[i], hi[i], b/2, b)
		}
		t.Logf("backoff %v: 1000 waits from %v to %v", b, lo[i], hi[i])
	}
}

// TestRetryBackoffResets pins the reset after a healthy session: the wait
// after it is the first retry's again, 0.5-1 s, however long the backoff
// had grown.
func TestRetryBackoffResets(t *testing.T) {
	retry := newRetryBackoff()
	for range 10 {
		retry.NextBackOff()
	}
	retry.Reset()
	if w := retry.NextBackOff(); w < minBackoff/2 || w > minBackoff {
		t.Fatalf("wait after a reset %v, want between %v and %v", w, minBackoff/2, minBackoff)
	}
}
