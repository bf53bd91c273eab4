package wmprom

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

func TestNewRejectsBadInput(t *testing.T) {
	labelFn := func(*message.Message) string { return "x" }
	cases := []struct {
		name string
		opts []Option
		want string
	}{
		{"prefix with a dash", []Option{WithPrefix("fast-stream")}, `prefix "fast-stream" is not a valid metric name prefix`},
		{"empty prefix", []Option{WithPrefix("")}, `prefix "" is not a valid metric name prefix`},
		{"prefix starting with a digit", []Option{WithPrefix("9lives")}, `prefix "9lives"`},
		{"empty app name", []Option{WithAppName("")}, "app name is empty"},
		{"empty broker", []Option{WithBroker("")}, "broker name is empty"},
		{"no size buckets", []Option{WithReceivedSizeBuckets(nil)}, "received size buckets: no buckets"},
		{"duration buckets not increasing", []Option{WithDurationBuckets([]float64{1, 1})}, "duration buckets: not strictly increasing at 1 after 1"},
		{"duration buckets decreasing", []Option{WithDurationBuckets([]float64{2, 1})}, "not strictly increasing at 1 after 2"},
		{"NaN bucket", []Option{WithDurationBuckets([]float64{math.NaN()})}, "a bucket is NaN"},
		{"label name with a dot", []Option{WithLabel("team.name", "x")}, `label name "team.name" is not valid`},
		{"reserved label name", []Option{WithLabel("__team", "x")}, `label name "__team" is not valid`},
		{"label clashing with handler", []Option{WithLabel("handler", "x")}, `label "handler" clashes with a built-in label`},
		{"label clashing with le", []Option{WithLabelFunc("le", labelFn)}, `label "le" clashes`},
		{"duplicate label", []Option{WithLabel("team", "a"), WithLabelFunc("team", labelFn)}, `label "team" is given twice`},
		{"empty static label value", []Option{WithLabel("team", "")}, `label "team" value is empty`},
		{"nil label func", []Option{WithLabelFunc("team", nil)}, `label "team" has a nil function`},
		{"no exception types", []Option{WithMaxExceptionTypes(0)}, "max exception types is 0, want at least 1"},
		{"no label sets", []Option{WithMaxLabelSets(0)}, "max label sets is 0, want at least 1"},
		{"app name not UTF-8", []Option{WithAppName("shop\xff")}, `app name "shop\xff" is not valid UTF-8`},
		{"app name too long", []Option{WithAppName(strings.Repeat("a", MaxLabelValueRunes+1))}, "app name is 257 runes long, more than MaxLabelValueRunes (256)"},
		{"broker not UTF-8", []Option{WithBroker("\xfe")}, `broker name "\xfe" is not valid UTF-8`},
		{"static label value not UTF-8", []Option{WithLabel("team", "a\xffb")}, `label "team" value "a\xffb" is not valid UTF-8`},
		{"static label value too long", []Option{WithLabel("team", strings.Repeat("é", MaxLabelValueRunes+1))}, `label "team" value is 257 runes long`},
		{"destination not UTF-8", []Option{WithDestinations("ok", "bad\xff\xfe-t")}, `a declared destination "bad\xff\xfe-t" is not valid UTF-8`},
		{"empty destination", []Option{WithDestinations("")}, "a declared destination is empty"},
		{"destination of a broker not UTF-8", []Option{WithBrokerDestinations("kafka", "\xff")}, `a declared destination of broker "kafka" "\xff" is not valid UTF-8`},
		{"broker of destinations empty", []Option{WithBrokerDestinations("", "payments")}, "the broker of declared destinations is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m, err := New(reg, tc.opts...)
			if err == nil || m != nil {
				t.Fatalf("New = %v, %v; want an error", m, err)
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not wrap ErrInvalidConfig with %q", err, tc.want)
			}
			if mfs, _ := reg.Gather(); len(mfs) != 0 {
				t.Errorf("registered %d families despite the error", len(mfs))
			}
		})
	}
}

func TestNewReportsEveryProblemAtOnce(t *testing.T) {
	_, err := New(prometheus.NewRegistry(), WithPrefix("a b"), WithAppName(""), WithLabel("status", "x"))
	for _, want := range []string{"prefix", "app name is empty", `label "status" clashes`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestNewNilRegistry(t *testing.T) {
	m, err := New(nil)
	if m != nil || !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "registry is nil") {
		t.Errorf("New(nil) = %v, %v", m, err)
	}
}

// A family registered by someone else with other labels is a conflict,
// reported clearly, and New leaves nothing half registered.
func TestNewRegistryConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "faststream_published_messages_total", Help: "someone else's",
	}, []string{"topic"}))
	_, err := New(reg)
	if err == nil || !strings.Contains(err.Error(), "wmprom: cannot register") || errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v", err)
	}
	// New undid what it had registered before the conflict: the same
	// family registers again without an AlreadyRegisteredError.
	again := newFamilies(newConfig(nil)).received
	if err := reg.Register(again); err != nil {
		t.Errorf("received_messages_total was left registered: %v", err)
	}
}

// Two apps (or two routers) on one registry share the families.
func TestSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	orders, err := New(reg, WithAppName("orders-svc"))
	if err != nil {
		t.Fatal(err)
	}
	billing, err := New(reg, WithAppName("billing-svc"))
	if err != nil {
		t.Fatalf("second New on the same registry: %v", err)
	}
	for _, m := range []*Metrics{orders, billing} {
		h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		_, _ = h(message.NewMessage("1", []byte("12345")))
	}
	assertSamples(t, reg, nil, `
		received_messages_total{app_name="billing-svc",broker="unknown",handler="unknown"} 1
		received_messages_total{app_name="orders-svc",broker="unknown",handler="unknown"} 1`,
		"received_messages_total")
}

func TestDefaults(t *testing.T) {
	c := newConfig(nil)
	wantSize := []float64{16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216}
	if !equalFloats(c.sizeBuckets, wantSize) {
		t.Errorf("size buckets %v", c.sizeBuckets)
	}
	wantDur := []float64{.005, .01, .025, .05, .075, .1, .25, .5, .75, 1, 2.5, 5, 7.5, 10}
	if !equalFloats(c.durationBuckets, wantDur) {
		t.Errorf("duration buckets %v", c.durationBuckets)
	}
	if c.prefix != "faststream" || c.appNameValue() != "faststream" || c.maxExceptionTypes != 50 {
		t.Errorf("prefix %q app %q max %d", c.prefix, c.appNameValue(), c.maxExceptionTypes)
	}
	if got := newConfig([]Option{WithPrefix("svc")}).appNameValue(); got != "svc" {
		t.Errorf("app name follows the prefix: got %q", got)
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
