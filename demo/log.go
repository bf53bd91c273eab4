package main

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// expectedErrors are Watermill log lines that the demo causes on purpose (every
// simulated failure) or that repeat what the supervisor already reports once
// per outage. Shown only with -v, so real problems stay visible.
var expectedErrors = map[string]bool{
	"Handler returned error":               true,
	"Publishing produced messages failed":  true,
	"Cannot publish messages":              true,
	"read fail":                            true, // redisstream, every 500 ms while Redis is down
	"All handlers stopped, closing router": true,

	// wmprom logs the cause of every Reject, and the demo rejects on purpose.
	"Handler rejected the message: acknowledged, not delivered again": true,
}

// repeatWindow is how long an error message is not repeated: a broker that is
// down makes its client log the same error for every partition every second.
const repeatWindow = 30 * time.Second

// quietLogger hides Watermill's per-message chatter unless -v is given.
type quietLogger struct {
	inner   watermill.LoggerAdapter
	verbose bool
	seen    *repeats
}

// repeats remembers when each error message was last shown, across derived loggers.
type repeats struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (r *repeats) fresh(msg string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.last[msg]; ok && now.Sub(t) < repeatWindow {
		return false
	}
	r.last[msg] = now
	return true
}

func newWatermillLogger(logger *slog.Logger, verbose bool) watermill.LoggerAdapter {
	return quietLogger{
		inner:   watermill.NewSlogLogger(logger.With("component", "watermill")),
		verbose: verbose,
		seen:    &repeats{last: map[string]time.Time{}},
	}
}

// Error logs err unless it is one of the demo's own simulated failures or
// repeats an error shown less than repeatWindow ago.
func (l quietLogger) Error(msg string, err error, fields watermill.LogFields) {
	if !l.verbose && (expectedErrors[msg] || !l.seen.fresh(msg, time.Now())) {
		l.inner.Debug(msg, fields.Add(watermill.LogFields{"err": err}))
		return
	}
	if !l.verbose && err != nil {
		// slog prints errors with %+v: pkg/errors values would bring their stack trace.
		err = errors.New(err.Error())
	}
	l.inner.Error(msg, err, fields)
}

// Info is demoted to debug: router start and stop lines would bury the demo's own.
func (l quietLogger) Info(msg string, fields watermill.LogFields) {
	if !l.verbose {
		l.inner.Debug(msg, fields)
		return
	}
	l.inner.Info(msg, fields)
}

// Debug passes through; the slog level decides.
func (l quietLogger) Debug(msg string, fields watermill.LogFields) { l.inner.Debug(msg, fields) }

// Trace passes through; the slog level decides.
func (l quietLogger) Trace(msg string, fields watermill.LogFields) { l.inner.Trace(msg, fields) }

// With keeps the filtering for loggers derived by Watermill's components.
func (l quietLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return quietLogger{inner: l.inner.With(fields), verbose: l.verbose, seen: l.seen}
}
