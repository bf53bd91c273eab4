package wmprom

import (
	"context"
	"errors"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// Exception types the default classifier gives to errors whose Go type
// would say little.
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
	if _, ok := err.(*outcome); ok {
		return true
	}
	if err == nil {
		return false
	}
	switch pkg, _ := errorType(err); pkg {
	case "fmt", "errors", "github.com/pkg/errors":
		return true
	}
	return false
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
	seen     sync.Map // string -> struct{}
	mu       sync.Mutex
	n        int
}

func newExceptionTypes(classify func(error) string, max int) *exceptionTypes {
	return &exceptionTypes{classify: classify, max: max}
}

func (e *exceptionTypes) of(err error) string {
	t := ""
	if e.classify != nil {
		t = e.classify(err)
	}
	if t == "" {
		t = defaultErrorType(err)
	}
	// An ErrorType method or a WithErrorType function is user code: its
	// result is made a valid label value before it is counted against the
	// bound, so two spellings of one broken value take one place.
	return e.admit(labelValue(t))
}

func (e *exceptionTypes) admit(t string) string {
	if t == exceptionPanic {
		return t // always its own value: a panic is never just "other"
	}
	if _, ok := e.seen.Load(t); ok {
		return t
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.seen.Load(t); ok {
		return t
	}
	if e.n >= e.max {
		return overflowValue
	}
	e.n++
	e.seen.Store(t, struct{}{})
	return t
}
