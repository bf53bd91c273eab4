package main

import (
	"time"
)

// slowPhase makes one stage of one broker's pipeline periodically slower
// than orders arrive, the way a handler slows down when a database it
// calls is busy: a backlog builds, the age of the messages the stage
// starts grows, and once the phase ends the stage catches up and the age
// falls back. The dashboard's message age panels show it.
type slowPhase struct {
	start time.Time
	// every is the period; the last length of each period is slow.
	every, length time.Duration
	// work is how long one message takes while slow.
	work time.Duration
}

// newSlowPhase returns the slow phase for a pipeline receiving rate orders
// per second, or nil when length is zero. While slow, the stage takes 2.5
// times the gap between orders per message: it falls behind at 60 % of the
// arrival rate, and the default one phase of 30 s every 2 minutes leaves it
// time to catch up at the demo's rates.
func newSlowPhase(start time.Time, every, length time.Duration, rate float64) *slowPhase {
	if length <= 0 {
		return nil
	}
	return &slowPhase{start: start, every: every, length: length, work: time.Duration(2.5 / rate * float64(time.Second))}
}

// active tells whether now is in a slow phase. A nil slowPhase never is.
func (s *slowPhase) active(now time.Time) bool {
	if s == nil {
		return false
	}
	return now.Sub(s.start)%s.every >= s.every-s.length
}
