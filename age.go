package wmprom

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// Message age is the time from a message's publish to the moment its
// handler starts processing it: the queueing delay that the processing
// duration leaves out, and the first number to grow when consumers fall
// behind. It needs a publish time that travels with the message. Where
// the broker's own timestamp reaches the handler (watermill-kafka puts it
// into the message's context) WithPublishTime reads it; everywhere else
// the decorated publisher writes the time into the metadata under
// PublishedAtKey. Hosts' clocks differ, so an age is only as good as the
// clocks' agreement; a publish time in the future is observed as zero and
// counted, never as a negative age.

// PublishedAtKey is the metadata key under which a publisher decorated by
// a Metrics with WithMessageAge(true) writes the publish time of each
// message that does not carry the key yet, as decimal Unix milliseconds
// (for example "1700000000123"). Any producer can set it in that form to
// have its messages' age measured.
const PublishedAtKey = "wmprom_published_at"

// defaultAgeBuckets are the upper bounds, in seconds, of the age
// histogram. Below 5 ms an age says more about the hosts' clocks (NTP
// keeps them a few milliseconds apart) than about a queue; from there a
// 1-2.5-5 series reaches 10 s, where a healthy consumer's delay ends, and
// then steps a person reads at a glance (30 s, 1 min, 5 min, 15 min, 1 h,
// 3 h) cover a backlog through an outage, in 17 buckets.
func defaultAgeBuckets() []float64 {
	return []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 10800}
}

// WithMessageAge turns the message age families on (they are off by
// default): the histogram received_messages_age_seconds and the counters
// received_messages_age_unknown_total and
// received_messages_age_clamped_total, with the labels of the other
// receive families. On, every decorated publisher also stamps the
// messages it publishes with PublishedAtKey. The stamp is a write to the
// message's metadata, as Watermill's own publisher decorators make: do
// not publish one message from two goroutines at once.
//
// The age of a message delivered again (after a Nack, an error, a
// redelivery by the broker) counts from its first publish, so it grows
// with every delivery; a message republished by a poison queue or a
// forwarder that copies its metadata keeps its stamp too. Delete
// PublishedAtKey from the metadata of a message you forward to measure
// each hop on its own.
func WithMessageAge(on bool) Option {
	return func(c *config) { c.messageAge = on }
}

// WithMessageAgeBuckets sets the upper bounds, in seconds, of the message
// age histogram. The default is .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 30
// 60 300 900 3600 10800 (5 ms to 3 h).
func WithMessageAgeBuckets(buckets []float64) Option {
	return func(c *config) { c.ageBuckets = append([]float64(nil), buckets...) }
}

// WithPublishTime gives the message age a better source than the
// metadata stamp: fn returns the time the broker recorded for the
// message, and false (or a zero time) when it has none, in which case
// PublishedAtKey is read instead. It requires WithMessageAge(true). On
// Kafka, with watermill-kafka:
//
//	wmprom.WithPublishTime(func(msg *message.Message) (time.Time, bool) { return kafka.MessageTimestampFromCtx(msg.Context()) })
//
// A broker's time is that of the publishing host (Kafka's CreateTime) or
// of the broker (LogAppendTime), which lets messages from producers that
// do not use wmprom have an age too.
func WithPublishTime(fn func(*message.Message) (time.Time, bool)) Option {
	return func(c *config) { c.publishTime = fn }
}

// checkAge reports the problems of the message age options.
func (c *config) checkAge() error {
	var errs []error
	if c.publishTime != nil && !c.messageAge {
		errs = append(errs, fmt.Errorf("%w: WithPublishTime is given but message age is off; add WithMessageAge(true)", ErrInvalidConfig))
	}
	if err := checkBuckets(c.ageBuckets); err != nil {
		errs = append(errs, fmt.Errorf("%w: message age buckets: %v", ErrInvalidConfig, err))
	}
	return errors.Join(errs...)
}

// ageFamilies are the three message age families.
type ageFamilies struct {
	age     *prometheus.HistogramVec // prefix_received_messages_age_seconds
	unknown *prometheus.CounterVec   // prefix_received_messages_age_unknown_total
	clamped *prometheus.CounterVec   // prefix_received_messages_age_clamped_total

	// lastStamp is the metadata value of the current millisecond: every
	// message published within it shares the one string, so that a busy
	// publisher allocates one stamp per millisecond, not one per message.
	lastStamp atomic.Pointer[stamp]
}

// stamp is a PublishedAtKey value and the millisecond it stands for.
type stamp struct {
	ms   int64
	text string
}

// stampText returns the PublishedAtKey value of ms.
func (f *ageFamilies) stampText(ms int64) string {
	if s := f.lastStamp.Load(); s != nil && s.ms == ms {
		return s.text
	}
	s := &stamp{ms: ms, text: strconv.FormatInt(ms, 10)}
	f.lastStamp.Store(s)
	return s.text
}

// newAgeFamilies creates the age families, or returns nil when message
// age is off.
func newAgeFamilies(c *config, receive []string) *ageFamilies {
	if !c.messageAge {
		return nil
	}
	return &ageFamilies{
		age: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    c.prefix + "_received_messages_age_seconds",
			Help:    "Time from a message's publish to the start of its processing, in seconds.",
			Buckets: c.ageBuckets,
		}, receive),
		unknown: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: c.prefix + "_received_messages_age_unknown_total",
			Help: "Messages received without a readable publish time, so without an age observation.",
		}, receive),
		clamped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: c.prefix + "_received_messages_age_clamped_total",
			Help: "Messages published in the future by this host's clock, observed with age zero.",
		}, receive),
	}
}

// adopt registers the age families, as families.register does the others.
func (f *ageFamilies) adopt(r *registrar) {
	if f == nil {
		return
	}
	f.age = adopt(r, f.age)
	f.unknown = adopt(r, f.unknown)
	f.clamped = adopt(r, f.clamped)
}

// ageSeries are one handler's children of the age families; all nil when
// message age is off.
type ageSeries struct {
	age     prometheus.Observer
	unknown prometheus.Counter
	clamped prometheus.Counter
}

// newAgeSeries creates one handler's age series at zero.
func (f *ageFamilies) newAgeSeries(values []string) ageSeries {
	if f == nil {
		return ageSeries{}
	}
	return ageSeries{
		age:     f.age.WithLabelValues(values...),
		unknown: f.unknown.WithLabelValues(values...),
		clamped: f.clamped.WithLabelValues(values...),
	}
}

// observeAge records how long msg waited before its handler got it,
// when message age is on. Small enough to be inlined: with age off, as
// by default, a message pays a test rather than a call.
func (m *Metrics) observeAge(s *receiveSeries, msg *message.Message) {
	if m.cfg.messageAge {
		m.observeAgeOn(s, msg)
	}
}

// observeAgeOn is observeAge with message age on.
func (m *Metrics) observeAgeOn(s *receiveSeries, msg *message.Message) {
	published, ok := m.publishedAt(msg)
	if !ok {
		s.age.unknown.Inc()
		return
	}
	age := m.cfg.now().Sub(published)
	if age < 0 {
		s.age.clamped.Inc()
		age = 0
	}
	s.age.age.Observe(age.Seconds())
}

// publishedAt finds msg's publish time, best source first.
func (m *Metrics) publishedAt(msg *message.Message) (time.Time, bool) {
	if m.cfg.publishTime != nil {
		if t, ok := m.cfg.publishTime(msg); ok && t.UnixMilli() > 0 {
			return t, true
		}
	}
	ms, ok := parseUnixMilli(msg.Metadata.Get(PublishedAtKey))
	if !ok {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// maxUnixMilliDigits bounds the digits parseUnixMilli accepts, so the
// value cannot overflow an int64 (whose largest is 19 digits long); 18
// digits of milliseconds reach far beyond any real date.
const maxUnixMilliDigits = 18

// parseUnixMilli reads a PublishedAtKey value. The metadata comes from
// whoever published the message, so anything but 1 to 18 ASCII digits
// making a time after 1970 is refused; it never allocates, not even for a
// refusal.
func parseUnixMilli(v string) (int64, bool) {
	if len(v) == 0 || len(v) > maxUnixMilliDigits {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		d := v[i] - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + int64(d)
	}
	// Zero is how Kafka and others say "no timestamp".
	return n, n > 0
}

// stampPublishTime writes the publish time into the metadata of each of
// msgs that has none: a message that already carries one, such as a
// message forwarded with its metadata, keeps it.
func (m *Metrics) stampPublishTime(msgs []*message.Message) {
	if !m.cfg.messageAge {
		return
	}
	var text string // one publish time for the whole batch
	for _, msg := range msgs {
		if msg == nil || msg.Metadata.Get(PublishedAtKey) != "" {
			continue
		}
		if text == "" {
			text = m.families.age.stampText(m.cfg.now().UnixMilli())
		}
		if msg.Metadata == nil {
			msg.Metadata = message.Metadata{}
		}
		msg.Metadata.Set(PublishedAtKey, text)
	}
}
