package wmprom

import (
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Message age is the time from a message's publish to the start of its
// processing: the queueing delay the processing duration leaves out. The
// publish time is the broker's (WithPublishTime) or the stamp the
// decorated publisher writes under PublishedAtKey. A publish time in the
// future by this host's clock is observed as zero and counted.

// PublishedAtKey is the metadata key under which a publisher decorated by
// a Metrics with WithMessageAge(true) writes the publish time of each
// message without it, in decimal Unix milliseconds ("1700000000123"). Any
// producer can set it so to have its messages' age measured.
const PublishedAtKey = "wmprom_published_at"

// observeAge records how long msg waited before its handler got it,
// when message age is on.
func (m *Metrics) observeAge(s *receiveSeries, msg *message.Message) {
	if !m.cfg.messageAge {
		return
	}
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

// maxUnixMilliDigits keeps a parsed value within an int64, and beyond
// any real date.
const maxUnixMilliDigits = 18

// parseUnixMilli reads a PublishedAtKey value. The metadata comes from
// whoever published the message, so anything but 1 to 18 ASCII digits
// making a time after 1970 is refused, without allocating.
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
			text = strconv.FormatInt(m.cfg.now().UnixMilli(), 10)
		}
		if msg.Metadata == nil {
			msg.Metadata = message.Metadata{}
		}
		msg.Metadata.Set(PublishedAtKey, text)
	}
}
