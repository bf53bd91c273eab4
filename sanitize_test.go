package wmprom

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

func TestLabelValue(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "unknown"},
		{"orders", "orders"},
		{badTopic, repairedTopic},
		{"\xff", "\uFFFD"},
		{"a\xffb\xfe\xfdc", "a\uFFFDb\uFFFDc"},
		{longText, boundedText},
		{boundedText, boundedText},
		{strings.Repeat("a", MaxLabelValueRunes+1), strings.Repeat("a", MaxLabelValueRunes)},
		{strings.Repeat("\xff", 1000), "\uFFFD"},
		// Cut at a rune boundary: 255 ASCII runes, then a two-byte rune.
		{strings.Repeat("a", MaxLabelValueRunes-1) + "éé", strings.Repeat("a", MaxLabelValueRunes-1) + "é"},
	}
	for _, tc := range cases {
		if got := labelValue(tc.in); got != tc.want {
			t.Errorf("labelValue(%.40q) = %.40q, want %.40q", tc.in, got, tc.want)
		}
	}
}

// A valid value is returned as it is: no allocation on the hot path.
func TestLabelValueDoesNotAllocate(t *testing.T) {
	topic := strings.Repeat("orders.", 10)
	if n := testing.AllocsPerRun(100, func() { _ = labelValue(topic) }); n != 0 {
		t.Errorf("labelValue of a valid value: %v allocs, want 0", n)
	}
}

func TestExemplarLabels(t *testing.T) {
	cases := []struct {
		id   string
		want prometheus.Labels
	}{
		{"", nil},
		{traceHex, prometheus.Labels{"trace_id": traceHex}},
		{strings.Repeat("a", 120), prometheus.Labels{"trace_id": strings.Repeat("a", 120)}},
		{longTraceID, nil},              // 8 + 121 runes
		{strings.Repeat("é", 121), nil}, // runes, not bytes, are counted
		{strings.Repeat("é", 120), prometheus.Labels{"trace_id": strings.Repeat("é", 120)}},
		{brokenTraceID, nil}, // dropped, never repaired
	}
	for _, tc := range cases {
		got := exemplarLabels(tc.id)
		if len(got) != len(tc.want) || got["trace_id"] != tc.want["trace_id"] {
			t.Errorf("exemplarLabels(%.20q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

// Custom label values are joined with 0xff into one cache key. Values
// from a label function are made valid first, so a 0xff they carry is
// replaced and cannot shift the values after it.
func TestCustomValuesSurviveTheSeparator(t *testing.T) {
	custom := []customLabel{
		{name: "a", dynamic: true, fn: func(m *message.Message) string { return m.Metadata.Get("a") }},
		{name: "region", value: "eu"},
		{name: "b", dynamic: true, fn: func(m *message.Message) string { return m.Metadata.Get("b") }},
	}
	msg := message.NewMessage("1", nil)
	msg.Metadata.Set("a", "x\xffy\xff")
	msg.Metadata.Set("b", "\xff")
	got := splitCustomValues(customValues(custom, msg), len(custom))
	want := []string{"x\uFFFDy\uFFFD", "eu", "\uFFFD"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("split = %q, want %q", got, want)
	}
	for _, v := range got {
		if !utf8.ValidString(v) {
			t.Errorf("%q is not valid UTF-8", v)
		}
	}
}
