package wmprom

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
)

// captureLogger keeps every entry, for tests to compare exactly.
// Watermill v1.4's CaptureLoggerAdapter hands out its map unlocked, so
// the tests, which read while the router writes, use their own.
type captureLogger struct {
	log    *entries
	fields watermill.LogFields
}

type entries struct {
	mu   sync.Mutex
	list []logEntry
}

type logEntry struct {
	level  string
	msg    string
	err    error
	fields watermill.LogFields
}

func newCaptureLogger() captureLogger { return captureLogger{log: &entries{}} }

func (c captureLogger) add(level, msg string, err error, fields watermill.LogFields) {
	c.log.mu.Lock()
	defer c.log.mu.Unlock()
	c.log.list = append(c.log.list, logEntry{level: level, msg: msg, err: err, fields: c.fields.Add(fields)})
}

func (c captureLogger) Error(msg string, err error, fields watermill.LogFields) {
	c.add("ERROR", msg, err, fields)
}
func (c captureLogger) Info(msg string, fields watermill.LogFields) { c.add("INFO", msg, nil, fields) }
func (c captureLogger) Debug(msg string, fields watermill.LogFields) {
	c.add("DEBUG", msg, nil, fields)
}
func (c captureLogger) Trace(msg string, fields watermill.LogFields) {
	c.add("TRACE", msg, nil, fields)
}
func (c captureLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return captureLogger{log: c.log, fields: c.fields.Add(fields)}
}

// wmpromEntries renders, one per line, the entries this package logs
// (every field, message UUIDs replaced by their payloads) and the
// router's entries at Info or above that name one of msgs (level, message
// and error only, as Watermill versions differ in the fields they add).
func (c captureLogger) entries(msgs ...*message.Message) string {
	names := map[string]string{}
	for _, m := range msgs {
		names[m.UUID] = string(m.Payload)
	}
	ours := map[string]bool{logRejected: true, logSkipped: true, logAcked: true, logNestedMiddleware: true, logDecoratedTwice: true}
	c.log.mu.Lock()
	defer c.log.mu.Unlock()
	var lines []string
	for _, e := range c.log.list {
		uuid, _ := e.fields["message_uuid"].(string)
		if !ours[e.msg] && (e.level == "TRACE" || e.level == "DEBUG" || names[uuid] == "") {
			continue
		}
		line := e.level + " " + e.msg
		if e.err != nil {
			line += " | err=" + e.err.Error()
		}
		if ours[e.msg] {
			var fs []string
			for k, v := range e.fields {
				if k == "message_uuid" {
					v = "<" + names[fmt.Sprint(v)] + ">"
				}
				fs = append(fs, fmt.Sprintf("%s=%v", k, v))
			}
			sort.Strings(fs)
			if len(fs) > 0 {
				line += " | " + strings.Join(fs, " ")
			}
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// runLoggedRouter is runRouter with logger as the router's logger.
func runLoggedRouter(t *testing.T, logger watermill.LoggerAdapter, setup func(r *message.Router, ps *gochannel.GoChannel)) *gochannel.GoChannel {
	t.Helper()
	return runRouterWithLogger(t, logger, setup).pubsub
}

// assertEntries polls until the entries about msgs are want (the router
// logs after the middleware has counted), then fails with both if not.
func assertEntries(t *testing.T, logger captureLogger, want string, msgs ...*message.Message) {
	t.Helper()
	want = strings.TrimSpace(want)
	deadline := time.Now().Add(10 * time.Second)
	got := logger.entries(msgs...)
	for got != want && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
		got = logger.entries(msgs...)
	}
	if got != want {
		t.Errorf("log entries differ\n--- got\n%s\n--- want\n%s", got, want)
	}
}

// settled waits until n messages were processed and none is in process.
func settled(t *testing.T, reg prometheus.Gatherer, n float64) {
	t.Helper()
	eventually(t, fmt.Sprintf("%v messages processed", n), func() bool {
		return processedTotal(t, reg) == n &&
			counterValue(t, reg, "faststream_received_messages_in_process", nil) == 0
	})
}

// Reject, Skip and Ack tell the router nil, so the router logs nothing
// about them: their causes reach its logger through the Plugin. A Nack
// and a plain error reach the router, which logs them, and nothing is
// logged twice. The router acks exactly as without the logging.
func TestCausesReachTheRouterLogger(t *testing.T) {
	logger := newCaptureLogger()
	m, reg := newMetrics(t)
	nacked := new(atomic.Bool)
	handlers := map[string]func(*message.Message) error{
		"reject":     func(*message.Message) error { return Reject(errors.New("no customer id")) },
		"reject-nil": func(*message.Message) error { return Reject(nil) },
		"skip":       func(*message.Message) error { return Skip(errors.New("test order")) },
		"skip-nil":   func(*message.Message) error { return Skip(nil) },
		"ack":        func(*message.Message) error { return Ack(errors.New("already paid")) },
		"ack-nil":    func(*message.Message) error { return Ack(nil) },
		"wrapped":    func(*message.Message) error { return fmt.Errorf("checkout: %w", Reject(errors.New("expired"))) },
		"nack": func(*message.Message) error {
			if nacked.CompareAndSwap(false, true) {
				return Nack(errors.New("stock service busy"))
			}
			return nil
		},
	}
	ps := runLoggedRouter(t, logger, func(r *message.Router, ps *gochannel.GoChannel) {
		r.AddPlugin(m.Plugin)
		for name, h := range handlers {
			h := h
			addConsumer(r, name, name, ps, func(msg *message.Message) error { return h(msg) })
		}
	})
	var sent []*message.Message
	for _, name := range []string{"reject", "reject-nil", "skip", "skip-nil", "ack", "ack-nil", "wrapped", "nack"} {
		msg := message.NewMessage(watermill.NewUUID(), []byte(name))
		sent = append(sent, msg)
		if err := ps.Publish(name, msg); err != nil {
			t.Fatal(err)
		}
		settled(t, reg, float64(len(sent)+btoi(name == "nack")))
	}
	assertEntries(t, logger, `
ERROR Handler rejected the message: acknowledged, not delivered again | err=wmprom: reject: no customer id | handler_name=reject message_uuid=<reject> topic=reject
ERROR Handler rejected the message: acknowledged, not delivered again | err=wmprom: reject | handler_name=reject-nil message_uuid=<reject-nil> topic=reject-nil
INFO Handler skipped the message | cause=test order handler_name=skip message_uuid=<skip> topic=skip
INFO Handler skipped the message | handler_name=skip-nil message_uuid=<skip-nil> topic=skip-nil
INFO Handler acknowledged the message despite an error | cause=already paid handler_name=ack message_uuid=<ack> topic=ack
ERROR Handler rejected the message: acknowledged, not delivered again | err=checkout: wmprom: reject: expired | handler_name=wrapped message_uuid=<wrapped> topic=wrapped
ERROR Handler returned error | err=wmprom: nack: stock service busy`, sent...)
	assertSamples(t, reg, []string{"app_name", "broker"}, `
		received_messages_total{handler="ack"} 1
		received_messages_total{handler="ack-nil"} 1
		received_messages_total{handler="nack"} 2
		received_messages_total{handler="reject"} 1
		received_messages_total{handler="reject-nil"} 1
		received_messages_total{handler="skip"} 1
		received_messages_total{handler="skip-nil"} 1
		received_messages_total{handler="wrapped"} 1`, "received_messages_total")
	for handler, st := range map[string]string{
		"reject": "rejected", "reject-nil": "rejected", "wrapped": "rejected",
		"skip": "skipped", "skip-nil": "skipped", "ack": "acked", "ack-nil": "acked",
	} {
		if got := counterValue(t, reg, "faststream_received_processed_messages_total", map[string]string{"handler": handler, "status": st}); got != 1 {
			t.Errorf("%s: %s %v, want 1", handler, st, got)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Middleware on its own logs causes only through WithLogger, and what it
// returns to the router is unchanged.
func TestMiddlewareWithLogger(t *testing.T) {
	logger := newCaptureLogger()
	m, _ := newMetrics(t, WithLogger(logger))
	cause := errors.New("no customer id")
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, Reject(cause) })
	skip := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, Skip(cause) })
	plain := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, cause })
	first := message.NewMessage(watermill.NewUUID(), []byte("first"))
	second := message.NewMessage(watermill.NewUUID(), []byte("second"))
	third := message.NewMessage(watermill.NewUUID(), []byte("third"))
	if _, err := h(first); err != nil {
		t.Errorf("a rejected message must be acked: got %v", err)
	}
	if _, err := skip(second); err != nil {
		t.Errorf("a skipped message must be acked: got %v", err)
	}
	if _, err := plain(third); err != cause {
		t.Errorf("a plain error must reach the router: got %v", err)
	}
	assertEntries(t, logger, `
ERROR Handler rejected the message: acknowledged, not delivered again | err=wmprom: reject: no customer id | message_uuid=<first>
INFO Handler skipped the message | cause=no customer id message_uuid=<second>`, first, second, third)
}
