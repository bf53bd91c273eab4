package main

import (
	"errors"
	"math/rand/v2"

	"github.com/ThreeDotsLabs/watermill/message"
)

// The demo's simulated failures. They are distinct types on purpose: the
// dashboard's exception panels group by exception type.

var (
	errDuplicateOrder    = errors.New("order already processed")
	errMalformedOrder    = errors.New("order payload cannot be parsed")
	errStockLocked       = errors.New("stock reservation locked by another order, retry later")
	errProviderThrottled = errors.New("payment provider throttled the request, retry later")
	errSMTPUnavailable   = errors.New("smtp: 421 service not available")
	errBouncedAddress    = errors.New("customer e-mail address bounces")
	errUnsubscribed      = errors.New("customer unsubscribed from receipts")
)

// ValidationError is an order that breaks a business rule; retrying it cannot help.
type ValidationError struct {
	Field string
}

func (e *ValidationError) Error() string { return "invalid order: bad " + e.Field }

// ErrorType names the exception_type label; without it the label would be
// the Go type name, "main.ValidationError".
func (e *ValidationError) ErrorType() string { return "ValidationError" }

// ConfirmTimeoutError is a publish the broker did not confirm in time.
type ConfirmTimeoutError struct {
	Topic string
}

func (e *ConfirmTimeoutError) Error() string {
	return "publish to " + e.Topic + ": broker did not confirm in time"
}

// ErrorType names the exception_type label.
func (e *ConfirmTimeoutError) ErrorType() string { return "ConfirmTimeout" }

// flakyPublisher makes a small share of publishes fail, standing in for a
// broker that sometimes does not confirm, so the dashboard's publish-error
// panels are not empty. The metrics decorator wraps it, so the failures are
// measured exactly like real ones.
type flakyPublisher struct {
	message.Publisher
	failRate float64
}

// Publish fails with a *ConfirmTimeoutError for about failRate of the calls.
func (f *flakyPublisher) Publish(topic string, msgs ...*message.Message) error {
	if rand.Float64() < f.failRate {
		return &ConfirmTimeoutError{Topic: topic}
	}
	return f.Publisher.Publish(topic, msgs...)
}
