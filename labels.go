package wmprom

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
)

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

// unknown stands in for any label value that would otherwise be empty:
// dashboard 22130 filters every label with =~".+", which hides series
// with an empty value.
const unknown = "unknown"

// overflowValue stands in for label values past a bound: the exception
// types past WithMaxExceptionTypes, and the handler, destination and
// WithLabelFunc values of label sets past WithMaxLabelSets. One word for
// both, so one dashboard filter finds them all.
const overflowValue = "other"

// MaxLabelValueRunes is the longest label value wmprom records, in runes;
// longer values from user data are cut. 256 keeps every legal Kafka topic
// and RabbitMQ queue name whole.
const MaxLabelValueRunes = 256

// labelValue makes a value from user data (topics, handler names, label
// functions, error and type names) safe for client_golang, which panics
// on invalid UTF-8: valid (each invalid sequence replaced by U+FFFD), at
// most MaxLabelValueRunes runes, never empty. A value that already is
// comes back as it is, without allocating.
func labelValue(s string) string {
	if s == "" {
		return unknown
	}
	if len(s) <= MaxLabelValueRunes && utf8.ValidString(s) {
		return s // a string of n bytes has at most n runes
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	count := 0
	for i := range s {
		if count == MaxLabelValueRunes {
			return s[:i]
		}
		count++
	}
	return s
}

// staticValueProblem says what is wrong with the label value v that an
// option gives as what, or "". Options are code, not data: New refuses
// an invalid one rather than repair it.
func staticValueProblem(what, v string) string {
	switch {
	case v == "":
		return what + " is empty"
	case !utf8.ValidString(v):
		return fmt.Sprintf("%s %q is not valid UTF-8", what, v)
	case utf8.RuneCountInString(v) > MaxLabelValueRunes:
		return fmt.Sprintf("%s is %d runes long, more than MaxLabelValueRunes (%d)", what, utf8.RuneCountInString(v), MaxLabelValueRunes)
	}
	return ""
}

// destinationLabel is the destination label of a publish to topic.
func destinationLabel(topic string) string { return labelValue(topic) }

// handlerOf is the handler label, before it is made a valid label value,
// of a message whose router context is ctx.
func (m *Metrics) handlerOf(ctx context.Context) string {
	if m.cfg.handlerLabel == HandlerName {
		if name := message.HandlerNameFromCtx(ctx); name != "" {
			return name
		}
	}
	if topic := message.SubscribeTopicFromCtx(ctx); topic != "" {
		return topic
	}
	return message.HandlerNameFromCtx(ctx)
}

// customLabel is one WithLabel or WithLabelFunc option.
type customLabel struct {
	name    string
	value   string
	fn      func(*message.Message) string
	dynamic bool
}

// customSeparator joins custom label values into one key: 0xff is never
// in valid UTF-8, which every value joined is.
const customSeparator = "\xff"

// customValues returns the custom label values for msg (nil: before any
// message), joined into one string so that they can be part of a key.
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

// customOverflow is the custom part of an overflow label set: static
// WithLabel values stay (they are not what overflowed), values computed
// per message read overflowValue.
func customOverflow(custom []customLabel) string {
	values := make([]customLabel, len(custom))
	for i, l := range custom {
		values[i] = customLabel{name: l.name, value: l.value}
		if l.dynamic {
			values[i].value = overflowValue
		}
	}
	return customValues(values, nil)
}
