package wmprom

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Every label value that comes from user data (topics, handler names,
// label functions, error types, type names) goes through labelValue, and
// every trace id through exemplarLabels, before it reaches client_golang,
// which panics on a label value that is not valid UTF-8 and on exemplar
// labels that are invalid or longer than prometheus.ExemplarMaxRunes. A
// metrics library must not crash the service it measures, whatever a
// message or a broker hands it.

// MaxLabelValueRunes is the longest label value wmprom records, in runes.
// Longer values from user data are cut to this length at a rune boundary.
// 256 keeps every legal Kafka topic (249 characters) and RabbitMQ queue
// name (255 bytes) whole, while a runaway value cannot bloat every scrape.
const MaxLabelValueRunes = 256

// invalidRune replaces each invalid UTF-8 sequence, so that a topic with
// stray bytes stays recognisable on a dashboard.
const invalidRune = "\uFFFD"

// labelValue makes a value from user data safe for a label: valid UTF-8,
// at most MaxLabelValueRunes runes, never empty. A value that already is
// comes back as it is, without allocating.
func labelValue(s string) string {
	if s == "" {
		return unknown
	}
	if len(s) <= MaxLabelValueRunes && utf8.ValidString(s) {
		return s // a string of n bytes has at most n runes
	}
	return truncateRunes(strings.ToValidUTF8(s, invalidRune), MaxLabelValueRunes)
}

// truncateRunes cuts valid UTF-8 s to at most n runes.
func truncateRunes(s string, n int) string {
	count := 0
	for i := range s {
		if count == n {
			return s[:i]
		}
		count++
	}
	return s
}

// staticValueProblem says what is wrong with the label value v that an
// option gives as what, or "" when nothing is. Options are code, not
// data: an invalid one is a mistake to fix, so New refuses it rather
// than repair it.
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

// exemplarLabels returns the exemplar labels naming trace id, or nil
// when id cannot make a valid exemplar. Such an id is dropped, never
// repaired or cut: a changed trace id would point at no trace, or at
// someone else's. Small enough to be inlined: most messages carry no
// trace, and pay a test rather than a call.
func exemplarLabels(id string) prometheus.Labels {
	if id == "" {
		return nil
	}
	return traceExemplarLabels(id)
}

func traceExemplarLabels(id string) prometheus.Labels {
	if !utf8.ValidString(id) ||
		len(exemplarLabel)+utf8.RuneCountInString(id) > prometheus.ExemplarMaxRunes {
		return nil
	}
	return prometheus.Labels{exemplarLabel: id}
}
