package wmprom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	pkgerrors "github.com/pkg/errors"
)

type typedError struct{ kind string }

func (e typedError) Error() string     { return "typed: " + e.kind }
func (e typedError) ErrorType() string { return e.kind }

func TestDefaultErrorType(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"errors.New", errors.New("x"), "errors.errorString"},
		{"an error type of its own", &decodeError{}, "wmprom.decodeError"},
		{"wrapped with %w", fmt.Errorf("a: %w", &decodeError{}), "wmprom.decodeError"},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", io.ErrUnexpectedEOF)), "errors.errorString"},
		{"joined: the first error", errors.Join(&decodeError{}, io.EOF), "wmprom.decodeError"},
		{"fmt with two %w", fmt.Errorf("%w and %w", &decodeError{}, io.EOF), "wmprom.decodeError"},
		{"pkg/errors Wrap", pkgerrors.Wrap(&decodeError{}, "a"), "wmprom.decodeError"},
		{"pkg/errors WithMessage", pkgerrors.WithMessage(brokerDownError{}, "a"), "wmprom.brokerDownError"},
		{"pkg/errors New", pkgerrors.New("x"), "errors.fundamental"},
		{"ErrorType wins", typedError{"Validation"}, "Validation"},
		{"ErrorType deep in the chain wins", fmt.Errorf("a: %w", pkgerrors.Wrap(typedError{"Validation"}, "b")), "Validation"},
		{"empty ErrorType falls through", typedError{""}, "wmprom.typedError"},
		{"context.Canceled", fmt.Errorf("a: %w", context.Canceled), "context.Canceled"},
		{"context.DeadlineExceeded", context.DeadlineExceeded, "context.DeadlineExceeded"},
		{"a recovered panic", pkgerrors.WithStack(middleware.RecoveredPanicError{V: "x"}), "panic"},
		{"a type that wraps is kept", &wrapping{io.EOF}, "wmprom.wrapping"},
		{"an outcome wrapping an error", Nack(&decodeError{}), "wmprom.decodeError"},
	}
	for _, tc := range cases {
		if got := defaultErrorType(tc.err); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// wrapping has a meaning of its own, so it is not unwrapped.
type wrapping struct{ err error }

func (w *wrapping) Error() string { return "wrapping: " + w.err.Error() }
func (w *wrapping) Unwrap() error { return w.err }

func TestWithErrorType(t *testing.T) {
	classify := func(err error) string {
		if errors.Is(err, io.EOF) {
			return "EOF"
		}
		return "" // the default decides
	}
	m, reg := newMetrics(t, WithErrorType(classify))
	for _, err := range []error{io.EOF, &decodeError{}} {
		h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, err })
		_, _ = h(message.NewMessage("1", nil))
	}
	assertSamples(t, reg, []string{"app_name", "broker", "handler"}, `
		received_processed_messages_exceptions_total{exception_type="EOF"} 1
		received_processed_messages_exceptions_total{exception_type="wmprom.decodeError"} 1`,
		"received_processed_messages_exceptions_total")
}

// Past the bound every new exception type is "other"; known ones and
// panics keep their names.
func TestExceptionTypesAreBounded(t *testing.T) {
	kinds := []string{"A", "B", "C", "A", "D"}
	m, reg := newMetrics(t, WithMaxExceptionTypes(2))
	for _, k := range kinds {
		h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, typedError{k} })
		_, _ = h(message.NewMessage("1", nil))
	}
	func() {
		defer func() { _ = recover() }()
		h := m.Middleware(func(*message.Message) ([]*message.Message, error) { panic("x") })
		_, _ = h(message.NewMessage("1", nil))
	}()
	pub, _ := m.DecoratePublisher(failingPublisher{typedError{"Z"}})
	_ = pub.Publish("t", message.NewMessage("1", nil))
	assertSamples(t, reg, []string{"app_name", "broker", "handler", "destination"}, `
		received_processed_messages_exceptions_total{exception_type="A"} 2
		received_processed_messages_exceptions_total{exception_type="B"} 1
		received_processed_messages_exceptions_total{exception_type="other"} 2
		received_processed_messages_exceptions_total{exception_type="panic"} 1
		published_messages_exceptions_total{exception_type="Z"} 1`,
		"received_processed_messages_exceptions_total", "published_messages_exceptions_total")
}

// The error text never becomes a label: two errors of one type with
// different texts share one series.
func TestErrorTextIsNotALabel(t *testing.T) {
	m, reg := newMetrics(t)
	for _, text := range []string{"order 1 failed", "order 2 failed"} {
		h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errors.New(text) })
		_, _ = h(message.NewMessage("1", nil))
	}
	assertSamples(t, reg, []string{"app_name", "broker", "handler"}, `
		received_processed_messages_exceptions_total{exception_type="errors.errorString"} 2`,
		"received_processed_messages_exceptions_total")
}
