package wmprom

import (
	"context"
	"errors"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// exceptionPanic is the exception type of a panic.
const exceptionPanic = "panic"

// errorTyper lets an error name its own exception_type; it wins over
// every other rule of the default classifier.
type errorTyper interface{ ErrorType() string }

// defaultErrorType names an error by its kind, never by its text, so the
// exception_type label stays low-cardinality.
func defaultErrorType(err error) string {
	var typed errorTyper
	if errors.As(err, &typed) {
		if t := typed.ErrorType(); t != "" {
			return t
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return "context.Canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "context.DeadlineExceeded"
	case errors.As(err, new(middleware.RecoveredPanicError)):
		return exceptionPanic
	}
	return typeName(innermost(err))
}

// innermost unwraps the wrappers that add text or a stack trace but no
// meaning (fmt's %w, errors.Join, github.com/pkg/errors) and stops at the
// first error that is a type of its own.
func innermost(err error) error {
	for plainWrapper(err) {
		var next error
		switch w := err.(type) {
		case interface{ Unwrap() error }:
			next = w.Unwrap()
		case interface{ Unwrap() []error }:
			if errs := w.Unwrap(); len(errs) > 0 {
				next = errs[0]
			}
		case interface{ Cause() error }:
			next = w.Cause()
		}
		if next == nil {
			return err
		}
		err = next
	}
	return err
}

func plainWrapper(err error) bool {
	if _, ok := err.(*outcome); ok || err == nil {
		return ok
	}
	pkg, _ := errorType(err)
	return pkg == "fmt" || pkg == "errors" || pkg == "github.com/pkg/errors"
}

func typeName(err error) string {
	if err == nil {
		return unknown
	}
	_, name := errorType(err)
	return labelValue(name)
}

// exceptionTypes bounds the exception_type values of one family: the
// first max distinct values are kept, later ones become "other".
type exceptionTypes struct {
	classify func(error) string
	max      int
	mu       sync.Mutex
	seen     map[string]bool
}

func newExceptionTypes(classify func(error) string, max int) *exceptionTypes {
	return &exceptionTypes{classify: classify, max: max, seen: map[string]bool{}}
}

// of classifies err. An ErrorType method or a WithErrorType function is
// user code: its result is made a valid label value before it is counted
// against the bound, so two spellings of one broken value take one place.
// A panic is always its own value, never just "other".
func (e *exceptionTypes) of(err error) string {
	t := ""
	if e.classify != nil {
		t = e.classify(err)
	}
	if t == "" {
		t = defaultErrorType(err)
	}
	t = labelValue(t)
	e.mu.Lock()
	defer e.mu.Unlock()
	if t == exceptionPanic || e.seen[t] || len(e.seen) < e.max {
		e.seen[t] = true
		return t
	}
	return overflowValue
}
