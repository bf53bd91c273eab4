package wmprom

import (
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
)

// unknown stands in for any label value that would otherwise be empty:
// dashboard 22130 filters every label with =~".+", which hides series
// with an empty value.
const unknown = "unknown"

// Built-in label names, in the order they appear on the families.
const (
	labelAppName       = "app_name"
	labelBroker        = "broker"
	labelHandler       = "handler"
	labelDestination   = "destination"
	labelStatus        = "status"
	labelExceptionType = "exception_type"
)

var builtinLabels = map[string]bool{
	labelAppName: true, labelBroker: true, labelHandler: true, labelDestination: true,
	labelStatus: true, labelExceptionType: true, "le": true,
}

// customLabel is one WithLabel or WithLabelFunc option.
type customLabel struct {
	name    string
	value   string
	fn      func(*message.Message) string
	dynamic bool
}

func customLabelNames(custom []customLabel) []string {
	names := make([]string, len(custom))
	for i, l := range custom {
		names[i] = l.name
	}
	return names
}

// hasDynamic tells whether label values depend on the message, which rules
// out caching one series per handler.
func hasDynamic(custom []customLabel) bool {
	for _, l := range custom {
		if l.dynamic {
			return true
		}
	}
	return false
}

// customSeparator joins custom label values into one cache key. The
// byte 0xff never occurs in valid UTF-8, and every value joined has been
// made valid (labelValue) or checked by New, so no value can contain it
// and splitting the key gives back exactly the values joined.
const customSeparator = "\xff"

// customValues returns the custom label values for msg, joined into one
// string so that they can be part of a cache key.
func customValues(custom []customLabel, msg *message.Message) string {
	var b strings.Builder
	for i, l := range custom {
		if i > 0 {
			b.WriteString(customSeparator)
		}
		v := l.value
		if l.dynamic {
			v = unknown
			if msg != nil {
				v = labelValue(l.fn(msg))
			}
		}
		b.WriteString(v)
	}
	return b.String()
}

func splitCustomValues(joined string, n int) []string {
	if n == 0 {
		return nil
	}
	return strings.SplitN(joined, customSeparator, n)
}

// destinationLabel is the destination label of a publish to topic.
func destinationLabel(topic string) string { return labelValue(topic) }
