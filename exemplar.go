package wmprom

import (
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// An exemplar names one message by its trace, so a slow or failed message
// can be followed from a dashboard panel to its trace.

// traceparentKey is the metadata key of the W3C trace context, as
// Watermill's tracing middlewares carry it.
const traceparentKey = "traceparent"

// exemplarLabel names the trace in an exemplar, as Grafana expects.
const exemplarLabel = "trace_id"

// exemplar returns the exemplar labels of msg's trace, or nil for a
// message without one; client_golang copies them into each exemplar.
func (m *Metrics) exemplar(msg *message.Message) prometheus.Labels {
	if !m.cfg.exemplars || msg == nil {
		return nil
	}
	var id string
	if m.cfg.traceID != nil {
		id = m.cfg.traceID(msg)
	} else {
		id = traceIDFromTraceparent(msg.Metadata.Get(traceparentKey))
	}
	return exemplarLabels(id)
}

// traceIDFromTraceparent reads the trace id out of a W3C traceparent
// value, "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>", or ""
// from an invalid one: a bad header must not cost the message its metrics.
func traceIDFromTraceparent(tp string) string {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return ""
	}
	id := tp[3:35]
	zero := true
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ""
		}
		zero = zero && c == '0'
	}
	if zero {
		return ""
	}
	return id
}

// exemplarLabels returns the exemplar labels naming trace id, or nil
// when id cannot make a valid exemplar (client_golang panics on one that
// is invalid or longer than prometheus.ExemplarMaxRunes). Such an id is
// dropped, never repaired or cut: a changed trace id would point at no
// trace, or at someone else's.
func exemplarLabels(id string) prometheus.Labels {
	if id == "" || !utf8.ValidString(id) ||
		len(exemplarLabel)+utf8.RuneCountInString(id) > prometheus.ExemplarMaxRunes {
		return nil
	}
	return prometheus.Labels{exemplarLabel: id}
}

// add adds v to c, with the exemplar ex when there is one.
func add(c prometheus.Counter, v float64, ex prometheus.Labels) {
	if ex != nil {
		if ea, ok := c.(prometheus.ExemplarAdder); ok {
			ea.AddWithExemplar(v, ex)
			return
		}
	}
	c.Add(v)
}

// observe observes v in o, with the exemplar ex when there is one.
func observe(o prometheus.Observer, v float64, ex prometheus.Labels) {
	if ex != nil {
		if eo, ok := o.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(v, ex)
			return
		}
	}
	o.Observe(v)
}
