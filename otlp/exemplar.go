package otlp

import (
	"encoding/hex"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The exemplar labels that the bridge turns into an OTLP exemplar's trace
// and span id, and the lengths OTLP requires of those ids, in bytes.
const (
	traceIDLabel = "trace_id"
	spanIDLabel  = "span_id"
	traceIDBytes = 16
	spanIDBytes  = 8
)

// TraceIDGatherer returns a Gatherer that gathers from g and rewrites the
// trace_id and span_id labels of every exemplar from hex, as wmprom and
// OpenMetrics write them, into the raw bytes that OTLP carries.
//
// The Prometheus bridge copies the characters of those labels into the
// OTLP exemplar as they are: a W3C trace id of 32 hex digits becomes a
// 32-byte trace id, where OTLP requires 16, and a receiver that checks,
// such as Prometheus's OTLP receiver or a Collector, rejects the whole
// request, every series with it. After this rewrite the bridge sends the
// 16 bytes, and the receiver stores the exemplar with the same hex
// trace_id a scrape stores. Values that are not hex of the right length
// are left alone. [NewReader] applies it.
func TraceIDGatherer(g prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := g.Gather()
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if c := m.GetCounter(); c != nil {
					c.Exemplar = rawIDs(c.GetExemplar())
				}
				if h := m.GetHistogram(); h != nil {
					for _, b := range h.GetBucket() {
						b.Exemplar = rawIDs(b.GetExemplar())
					}
					for i, e := range h.GetExemplars() {
						h.Exemplars[i] = rawIDs(e)
					}
				}
			}
		}
		return mfs, err
	})
}

// rawIDs returns e with its trace and span ids decoded from hex: a copy,
// since the gathered exemplar may be the one the collector keeps and
// serves on /metrics too; e itself when it has nothing to decode.
func rawIDs(e *dto.Exemplar) *dto.Exemplar {
	if e == nil {
		return nil
	}
	var labels []*dto.LabelPair
	for i, l := range e.GetLabel() {
		raw, ok := decodeID(l)
		if !ok {
			continue
		}
		if labels == nil {
			labels = append([]*dto.LabelPair(nil), e.GetLabel()...)
		}
		name := l.GetName()
		labels[i] = &dto.LabelPair{Name: &name, Value: &raw}
	}
	if labels == nil {
		return e
	}
	return &dto.Exemplar{Label: labels, Value: e.Value, Timestamp: e.Timestamp}
}

// decodeID decodes a trace_id or span_id label of hex digits of the length
// OTLP requires.
func decodeID(l *dto.LabelPair) (string, bool) {
	size := 0
	switch l.GetName() {
	case traceIDLabel:
		size = traceIDBytes
	case spanIDLabel:
		size = spanIDBytes
	default:
		return "", false
	}
	v := l.GetValue()
	if len(v) != 2*size {
		return "", false
	}
	raw, err := hex.DecodeString(v)
	if err != nil {
		return "", false
	}
	return string(raw), true
}
