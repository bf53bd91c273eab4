package wmprom

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

var ageFamilyNames = []string{
	"faststream_received_messages_age_seconds",
	"faststream_received_messages_age_unknown_total",
	"faststream_received_messages_age_clamped_total",
}

// ageExposition is the text exposition of the three age families of
// handler "orders" on a GoChannel, after the ages in observed (seconds)
// and unknown and clamped messages.
func ageExposition(observed []float64, unknown, clamped int) string {
	const labels = `app_name="faststream",broker="gochannel",handler="orders"`
	var b strings.Builder
	b.WriteString("# HELP faststream_received_messages_age_seconds Time from a message's publish to the start of its processing, in seconds.\n")
	b.WriteString("# TYPE faststream_received_messages_age_seconds histogram\n")
	sum := 0.0
	for _, o := range observed {
		sum += o
	}
	for _, le := range defaultAgeBuckets() {
		n := 0
		for _, o := range observed {
			if o <= le {
				n++
			}
		}
		fmt.Fprintf(&b, "faststream_received_messages_age_seconds_bucket{%s,le=%q} %d\n", labels, strconv.FormatFloat(le, 'g', -1, 64), n)
	}
	fmt.Fprintf(&b, "faststream_received_messages_age_seconds_bucket{%s,le=\"+Inf\"} %d\n", labels, len(observed))
	fmt.Fprintf(&b, "faststream_received_messages_age_seconds_sum{%s} %s\n", labels, strconv.FormatFloat(sum, 'g', -1, 64))
	fmt.Fprintf(&b, "faststream_received_messages_age_seconds_count{%s} %d\n", labels, len(observed))
	b.WriteString("# HELP faststream_received_messages_age_unknown_total Messages received without a readable publish time, so without an age observation.\n")
	b.WriteString("# TYPE faststream_received_messages_age_unknown_total counter\n")
	fmt.Fprintf(&b, "faststream_received_messages_age_unknown_total{%s} %d\n", labels, unknown)
	b.WriteString("# HELP faststream_received_messages_age_clamped_total Messages published in the future by this host's clock, observed with age zero.\n")
	b.WriteString("# TYPE faststream_received_messages_age_clamped_total counter\n")
	fmt.Fprintf(&b, "faststream_received_messages_age_clamped_total{%s} %d\n", labels, clamped)
	return b.String()
}

// brokerTimeKey is where the test's "broker" puts its timestamp: what a
// user's own unmarshaler would hand to WithPublishTime.
const brokerTimeKey = "test_broker_time"

func brokerTime(msg *message.Message) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, msg.Metadata.Get(brokerTimeKey))
	return t, err == nil
}

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// One message per source, published at t0 (the fake clock's start) and
// handled at t0 + 2 s, unless the case says otherwise.
func TestMessageAgeSources(t *testing.T) {
	t0 := newFakeClock().Now()
	cases := []struct {
		name string
		opts []Option
		// decorated publishes through the Metrics' publisher decorator,
		// which stamps; otherwise straight to the GoChannel.
		decorated bool
		metadata  map[string]string
		want      string
	}{{
		name:      "metadata stamp written by the decorated publisher",
		decorated: true,
		want:      ageExposition([]float64{2}, 0, 0),
	}, {
		name:     "broker time through WithPublishTime, before a stamp an hour older",
		opts:     []Option{WithPublishTime(brokerTime)},
		metadata: map[string]string{brokerTimeKey: t0.Format(time.RFC3339Nano), PublishedAtKey: millis(t0.Add(-time.Hour))},
		want:     ageExposition([]float64{2}, 0, 0),
	}, {
		name:      "WithPublishTime without a broker time falls back to the stamp",
		opts:      []Option{WithPublishTime(brokerTime)},
		decorated: true,
		want:      ageExposition([]float64{2}, 0, 0),
	}, {
		name:     "WithPublishTime giving a zero time falls back to the stamp",
		opts:     []Option{WithPublishTime(func(*message.Message) (time.Time, bool) { return time.Time{}, true })},
		metadata: map[string]string{PublishedAtKey: millis(t0)},
		want:     ageExposition([]float64{2}, 0, 0),
	}, {
		name:     "a stamp set by another producer",
		metadata: map[string]string{PublishedAtKey: millis(t0.Add(-500 * time.Millisecond))},
		want:     ageExposition([]float64{2.5}, 0, 0),
	}, {
		name:     "a stamp in the future (clock skew) is observed as zero and counted",
		metadata: map[string]string{PublishedAtKey: millis(t0.Add(5 * time.Second))},
		want:     ageExposition([]float64{0}, 0, 1),
	}, {
		name: "no publish time: counted as unknown, not observed",
		want: ageExposition(nil, 1, 0),
	}, {
		name:     "an unreadable stamp: counted as unknown, not observed",
		metadata: map[string]string{PublishedAtKey: t0.Format(time.RFC3339)},
		want:     ageExposition(nil, 1, 0),
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			m, reg := newMetrics(t, append([]Option{withClock(clock), WithMessageAge(true)}, tc.opts...)...)
			runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
				r.AddPlugin(m.Plugin)
				addConsumer(r, "orders", "orders", ps, func(*message.Message) error { return nil })
				// The persistent GoChannel keeps the message until the
				// router subscribes, after the clock has moved on.
				var pub message.Publisher = ps
				if tc.decorated {
					pub, _ = m.DecoratePublisher(ps)
				}
				msg := message.NewMessage(watermill.NewUUID(), []byte("x"))
				for k, v := range tc.metadata {
					msg.Metadata.Set(k, v)
				}
				if err := pub.Publish("orders", msg); err != nil {
					t.Fatal(err)
				}
				clock.Advance(2 * time.Second)
			})
			eventually(t, "1 processed", func() bool { return processedTotal(t, reg) == 1 })
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tc.want), ageFamilyNames...); err != nil {
				t.Error(err)
			}
		})
	}
}

// The exact exposition of the main case, typed out once rather than
// built by ageExposition: a stamped message handled 2 s later is in the
// 2.5 s bucket.
func TestMessageAgeExposition(t *testing.T) {
	clock := newFakeClock()
	m, reg := newMetrics(t, withClock(clock), WithMessageAge(true))
	runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
		r.AddPlugin(m.Plugin)
		addConsumer(r, "orders", "orders", ps, func(*message.Message) error { return nil })
		pub, _ := m.DecoratePublisher(ps)
		if err := pub.Publish("orders", message.NewMessage("1", []byte("x"))); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Second)
	})
	eventually(t, "1 processed", func() bool { return processedTotal(t, reg) == 1 })
	assertSamples(t, reg, []string{"app_name", "broker"}, `
		received_messages_age_seconds_count{handler="orders"} 1
		received_messages_age_seconds_sum{handler="orders"} 2
		received_messages_age_unknown_total{handler="orders"} 0
		received_messages_age_clamped_total{handler="orders"} 0`,
		"received_messages_age_seconds", "received_messages_age_unknown_total", "received_messages_age_clamped_total")
	want := `
# HELP faststream_received_messages_age_seconds Time from a message's publish to the start of its processing, in seconds.
# TYPE faststream_received_messages_age_seconds histogram
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="0.005"} 0
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="0.01"} 0
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="0.025"} 0
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="0.05"} 0
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="0.1"} 0
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="0.25"} 0
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="0.5"} 0
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="1"} 0
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="2.5"} 1
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="5"} 1
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="10"} 1
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="30"} 1
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="60"} 1
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="300"} 1
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="900"} 1
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="3600"} 1
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="10800"} 1
faststream_received_messages_age_seconds_bucket{app_name="faststream",broker="gochannel",handler="orders",le="+Inf"} 1
faststream_received_messages_age_seconds_sum{app_name="faststream",broker="gochannel",handler="orders"} 2
faststream_received_messages_age_seconds_count{app_name="faststream",broker="gochannel",handler="orders"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "faststream_received_messages_age_seconds"); err != nil {
		t.Error(err)
	}
}

// Off (the default), there are no age families and publishes leave the
// metadata alone.
func TestMessageAgeOffByDefault(t *testing.T) {
	m, reg := newMetrics(t)
	rec := &recordingPublisher{}
	pub, _ := m.DecoratePublisher(rec)
	if err := pub.Publish("orders", message.NewMessage("1", nil)); err != nil {
		t.Fatal(err)
	}
	if got := rec.msgs[0].Metadata.Get(PublishedAtKey); got != "" {
		t.Errorf("stamped %q with message age off", got)
	}
	h := m.Middleware(emptyHandler)
	if _, err := h(message.NewMessage("2", nil)); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, ageFamilyNames...); err != nil || n != 0 {
		t.Errorf("age series with message age off: %d (%v)", n, err)
	}
}

// On, the Plugin creates a handler's age series at zero with its other
// series, before any message.
func TestMessageAgeSeriesStartAtZero(t *testing.T) {
	m, reg := newMetrics(t, WithMessageAge(true))
	runRouter(t, func(r *message.Router, ps *gochannel.GoChannel) {
		r.AddPlugin(m.Plugin)
		addConsumer(r, "orders", "orders", ps, func(*message.Message) error { return nil })
	})
	if err := testutil.GatherAndCompare(reg, strings.NewReader(ageExposition(nil, 0, 0)), ageFamilyNames...); err != nil {
		t.Error(err)
	}
}

// recordingPublisher keeps what it is given.
type recordingPublisher struct{ msgs []*message.Message }

func (p *recordingPublisher) Publish(_ string, msgs ...*message.Message) error {
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func (p *recordingPublisher) Close() error { return nil }

func TestPublisherStampsPublishTime(t *testing.T) {
	clock := newFakeClock()
	m, _ := newMetrics(t, withClock(clock), WithMessageAge(true))
	rec := &recordingPublisher{}
	pub, _ := m.DecoratePublisher(rec)

	fresh := message.NewMessage("fresh", nil)
	forwarded := message.NewMessage("forwarded", nil)
	forwarded.Metadata.Set(PublishedAtKey, "1600000000000")
	bare := &message.Message{UUID: "bare"} // nil metadata
	if err := pub.Publish("orders", fresh, forwarded, bare, nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"fresh": "1700000000000", "forwarded": "1600000000000", "bare": "1700000000000"}
	for _, msg := range rec.msgs[:3] {
		if got := msg.Metadata.Get(PublishedAtKey); got != want[msg.UUID] {
			t.Errorf("%s: %s = %q, want %q", msg.UUID, PublishedAtKey, got, want[msg.UUID])
		}
	}

	// A later publish, a millisecond on, gets the later time.
	clock.Advance(time.Millisecond)
	later := message.NewMessage("later", nil)
	if err := pub.Publish("orders", later); err != nil {
		t.Fatal(err)
	}
	if got := later.Metadata.Get(PublishedAtKey); got != "1700000000001" {
		t.Errorf("later: %q, want 1700000000001", got)
	}
}

func TestMessageAgeConfig(t *testing.T) {
	cases := []struct {
		name string
		opts []Option
		want string // "" for no error
	}{
		{"publish time without message age", []Option{WithPublishTime(brokerTime)}, "WithPublishTime is given but message age is off"},
		{"empty buckets", []Option{WithMessageAge(true), WithMessageAgeBuckets(nil)}, "message age buckets: no buckets"},
		{"decreasing buckets", []Option{WithMessageAge(true), WithMessageAgeBuckets([]float64{1, 0.5})}, "message age buckets: not strictly increasing"},
		{"own buckets", []Option{WithMessageAge(true), WithMessageAgeBuckets([]float64{1, 60})}, ""},
		{"both options", []Option{WithMessageAge(true), WithPublishTime(brokerTime)}, ""},
	}
	for _, tc := range cases {
		_, err := New(prometheus.NewRegistry(), tc.opts...)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (!errors.Is(err, ErrInvalidConfig) || !strings.Contains(fmt.Sprint(err), tc.want)):
			t.Errorf("%s: got %v, want an ErrInvalidConfig saying %q", tc.name, err, tc.want)
		}
	}
}

func TestParseUnixMilli(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1700000000123", 1700000000123, true},
		{"1", 1, true},
		{"000000000000000001", 1, true},
		{"999999999999999999", 999999999999999999, true},
		{"1000000000000000000", 0, false}, // 19 digits: could overflow
		{"0", 0, false},
		{"", 0, false},
		{"-1700000000000", 0, false},
		{"+1700000000000", 0, false},
		{" 1700000000000", 0, false},
		{"1700000000000 ", 0, false},
		{"1.7e12", 0, false},
		{"2023-11-14T22:13:20Z", 0, false},
		{"17000000000０0", 0, false}, // a full-width digit
	}
	for _, tc := range cases {
		got, ok := parseUnixMilli(tc.in)
		if got != tc.want && tc.ok || ok != tc.ok {
			t.Errorf("parseUnixMilli(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzMessageAgeMetadata feeds any PublishedAtKey value through the
// middleware: it must never panic, must either observe one age of zero or
// more or count one unknown, and must read exactly the values strconv
// reads as 1 to 18 digit positive decimals.
func FuzzMessageAgeMetadata(f *testing.F) {
	for _, s := range []string{"1700000000000", "0", "", "-5", "18446744073709551616", "1e3", "\x00", "१२३"} {
		f.Add(s)
	}
	clock := newFakeClock()
	m, err := New(prometheus.NewRegistry(), withClock(clock), WithMessageAge(true))
	if err != nil {
		f.Fatal(err)
	}
	s := m.receiveSeries(unknown, unknown, "") // a message outside a router
	h := m.Middleware(emptyHandler)
	f.Fuzz(func(t *testing.T, v string) {
		count0, sum0 := histogramOf(t, s.age.age)
		unknown0 := testutil.ToFloat64(s.age.unknown)
		msg := message.NewMessage("1", nil)
		msg.Metadata.Set(PublishedAtKey, v)
		if _, err := h(msg); err != nil {
			t.Fatal(err)
		}
		count, sum := histogramOf(t, s.age.age)
		unknown := testutil.ToFloat64(s.age.unknown)
		observed := count - count0
		if observed+uint64(unknown-unknown0) != 1 {
			t.Fatalf("%q: %d observations and %v unknown, want one of them", v, observed, unknown-unknown0)
		}
		age := sum - sum0
		if observed == 1 && (age < 0 || math.IsNaN(age) || math.IsInf(age, 0)) {
			t.Fatalf("%q: observed age %v", v, age)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		valid := err == nil && n > 0 && len(v) <= maxUnixMilliDigits && v[0] != '+' && v[0] != '-'
		if valid != (observed == 1) {
			t.Fatalf("%q: observed %v, but strconv reads %d, %v", v, observed == 1, n, err)
		}
	})
}

func histogramOf(t *testing.T, o prometheus.Observer) (uint64, float64) {
	var d dto.Metric
	if err := o.(prometheus.Metric).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetHistogram().GetSampleCount(), d.GetHistogram().GetSampleSum()
}

// BenchmarkMessageAge prices the option on the hot path: the middleware
// with age off, on with a stamp, on with a broker time (as
// kafka.MessageTimestampFromCtx reads one from the context); the
// publisher with age off, and on for a message whose metadata has room
// for the stamp.
func BenchmarkMessageAge(b *testing.B) {
	ctx := routerContext(b, "orders")
	published := time.Now().Add(-time.Second)
	receive := []struct {
		name string
		opts []Option
	}{
		{"middleware/off", nil},
		{"middleware/stamp", []Option{WithMessageAge(true)}},
		{"middleware/broker-time", []Option{WithMessageAge(true), WithPublishTime(func(*message.Message) (time.Time, bool) { return published, true })}},
	}
	for _, tc := range receive {
		b.Run(tc.name, func(b *testing.B) {
			m, err := New(prometheus.NewRegistry(), tc.opts...)
			if err != nil {
				b.Fatal(err)
			}
			h := m.Middleware(emptyHandler)
			msg := message.NewMessage("1", []byte("payload"))
			msg.Metadata.Set(PublishedAtKey, millis(published))
			msg.SetContext(ctx)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				_, _ = h(msg)
			}
		})
	}
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("publisher/on=%v", on), func(b *testing.B) {
			m, err := New(prometheus.NewRegistry(), WithMessageAge(on))
			if err != nil {
				b.Fatal(err)
			}
			pub, _ := m.DecoratePublisher(nopPublisher{})
			msgs := []*message.Message{message.NewMessage("1", []byte("payload"))}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				// Each publish stamps anew, as for a new message.
				delete(msgs[0].Metadata, PublishedAtKey)
				_ = pub.Publish("payments", msgs...)
			}
		})
	}
}
