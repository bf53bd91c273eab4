package wmprom

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// ErrInvalidConfig is wrapped by every error New returns for a bad option,
// so callers can tell configuration mistakes from registry conflicts.
var ErrInvalidConfig = errors.New("wmprom: invalid configuration")

// Option configures a Metrics; pass options to New.
type Option func(*config)

// Defaults, all in one place. The size and duration buckets are
// FastStream's, so that dashboards read the same boundaries.
const (
	defaultPrefix            = "faststream"
	defaultMaxExceptionTypes = 50
	defaultMaxLabelSets      = 1000

	// A bucket factor of 1.1 is schema 3: a quantile within 9% of the
	// true value. 160 buckets hold 16 B to 16 MiB at that resolution;
	// past them client_golang halves the resolution rather than grow.
	defaultNativeBucketFactor   = 1.1
	defaultNativeMaxBuckets     = 160
	defaultNativeMinResetPeriod = time.Hour
)

// defaultSizeBuckets are 2^4, 2^6, ... 2^24 bytes.
func defaultSizeBuckets() []float64 {
	return []float64{16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216}
}

func defaultDurationBuckets() []float64 {
	return []float64{.005, .01, .025, .05, .075, .1, .25, .5, .75, 1, 2.5, 5, 7.5, 10}
}

// defaultAgeBuckets, in seconds: below 5 ms an age says more about the
// hosts' clocks than about a queue; 30 s to 3 h cover an outage's backlog.
func defaultAgeBuckets() []float64 {
	return []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 10800}
}

type config struct {
	prefix             string
	appName            *string // nil: the prefix, as FastStream does
	broker             *string // nil: detected per subscriber and publisher
	sizeBuckets        []float64
	durationBuckets    []float64
	custom             []customLabel
	errorType          func(error) string
	maxExceptionTypes  int
	maxLabelSets       int
	destinations       []string            // for publishers of any broker
	brokerDestinations map[string][]string // broker label -> topics
	exemplars          bool
	traceID            func(*message.Message) string
	native             nativeConfig
	messageAge         bool
	ageBuckets         []float64
	publishTime        func(*message.Message) (time.Time, bool)
	handlerLabel       HandlerLabel
	logger             watermill.LoggerAdapter // nil: the Plugin's router's, else none
	now                func() time.Time        // tests replace both clocks to make durations exact
	since              func(time.Time) time.Duration
}

// nativeConfig is the native histogram part of config; zero form: off.
type nativeConfig struct {
	form       NativeHistograms
	factor     float64
	maxBuckets uint32
	minReset   time.Duration
}

func newConfig(opts []Option) *config {
	c := &config{
		prefix:            defaultPrefix,
		sizeBuckets:       defaultSizeBuckets(),
		durationBuckets:   defaultDurationBuckets(),
		maxExceptionTypes: defaultMaxExceptionTypes,
		maxLabelSets:      defaultMaxLabelSets,
		exemplars:         true,
		native: nativeConfig{
			factor:     defaultNativeBucketFactor,
			maxBuckets: defaultNativeMaxBuckets,
			minReset:   defaultNativeMinResetPeriod,
		},
		ageBuckets: defaultAgeBuckets(),
		now:        time.Now,
		since:      time.Since,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(c)
		}
	}
	return c
}

// WithAppName sets the app_name label of every series. The default is the
// metric prefix ("faststream"), as in FastStream. New refuses a name that
// is empty, not valid UTF-8 or longer than MaxLabelValueRunes runes.
func WithAppName(name string) Option {
	return func(c *config) { c.appName = &name }
}

// WithPrefix sets the prefix of the nine metric names (default
// "faststream"). Dashboard 22130 asks for it in its metrics_prefix box.
func WithPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// WithBroker sets the broker label instead of detecting it from the type
// of each subscriber and publisher. New refuses it as WithAppName.
func WithBroker(name string) Option {
	return func(c *config) { c.broker = &name }
}

// WithReceivedSizeBuckets sets the size histogram's bounds, in bytes
// (default 2^4, 2^6, ... 2^24).
func WithReceivedSizeBuckets(buckets []float64) Option {
	return func(c *config) { c.sizeBuckets = append([]float64(nil), buckets...) }
}

// WithDurationBuckets sets the upper bounds, in seconds, of both duration
// histograms. The default is FastStream's: .005 .01 .025 .05 .075 .1 .25
// .5 .75 1 2.5 5 7.5 10.
func WithDurationBuckets(buckets []float64) Option {
	return func(c *config) { c.durationBuckets = append([]float64(nil), buckets...) }
}

// WithLabel adds a label with a fixed value to all nine families, after
// the built-in labels. New refuses a value that is empty, not valid UTF-8
// or longer than MaxLabelValueRunes runes.
func WithLabel(name, value string) Option {
	return func(c *config) { c.custom = append(c.custom, customLabel{name: name, value: value}) }
}

// WithLabelFunc adds a label to all nine families whose value fn computes
// from each consumed or published message (for a batch, its first). An
// empty result is recorded as "unknown", an invalid one is repaired (see
// MaxLabelValueRunes). Keep the set of values small: every value makes
// new series, and past WithMaxLabelSets they are counted as "other".
func WithLabelFunc(name string, fn func(*message.Message) string) Option {
	return func(c *config) { c.custom = append(c.custom, customLabel{name: name, fn: fn, dynamic: true}) }
}

// WithErrorType replaces the classifier that turns an error into the
// exception_type label; nil keeps the default, and so does an empty
// result. An invalid result is repaired (see MaxLabelValueRunes); at
// most WithMaxExceptionTypes distinct values are kept per family.
func WithErrorType(fn func(error) string) Option {
	return func(c *config) { c.errorType = fn }
}

// WithMaxExceptionTypes bounds the distinct exception_type values each
// exceptions family records (default 50); later types count as "other".
func WithMaxExceptionTypes(n int) Option {
	return func(c *config) { c.maxExceptionTypes = n }
}

// WithDestinations declares topics the application publishes to, so that
// their series exist at zero before the first publish, which increase()
// and rate() then see, on every publisher DecoratePublisher wraps. A
// service publishing to several brokers should use WithBrokerDestinations.
func WithDestinations(topics ...string) Option {
	return func(c *config) { c.destinations = append(c.destinations, topics...) }
}

// WithBrokerDestinations declares topics the application publishes to
// through publishers of one broker, named by its broker label ("kafka",
// "rabbit", "nats", "redis", or what WithBroker or detection gives): only
// decorated publishers with that label create their series at zero.
func WithBrokerDestinations(broker string, topics ...string) Option {
	return func(c *config) {
		if c.brokerDestinations == nil {
			c.brokerDestinations = map[string][]string{}
		}
		c.brokerDestinations[broker] = append(c.brokerDestinations[broker], topics...)
	}
}

// WithMaxLabelSets bounds the label sets (a broker, handler or
// destination and custom values each) a Metrics creates for receiving and
// for publishing (default 1000 each). Past it, messages count in one
// overflow set per broker whose handler or destination and WithLabelFunc
// labels read "other", so ids in topics or labels cannot flood Prometheus.
func WithMaxLabelSets(n int) Option {
	return func(c *config) { c.maxLabelSets = n }
}

// WithExemplars turns exemplars on (the default) or off: the trace id of
// a traced message, on the counters and duration histograms it updates.
func WithExemplars(on bool) Option {
	return func(c *config) { c.exemplars = on }
}

// WithTraceID replaces how a message's trace id is found (by default, from
// a W3C traceparent in its metadata), for example from OpenTelemetry:
//
//	wmprom.WithTraceID(func(msg *message.Message) string {
//		if sc := trace.SpanContextFromContext(msg.Context()); sc.HasTraceID() {
//			return sc.TraceID().String()
//		}
//		return ""
//	})
//
// Return "" for a message without a trace.
func WithTraceID(fn func(*message.Message) string) Option {
	return func(c *config) { c.traceID = fn }
}

// HandlerLabel chooses what the handler label names; pass it to
// WithHandlerLabel.
type HandlerLabel uint8

const (
	// HandlerTopic labels a handler with the topic it subscribes to, as
	// FastStream labels a subscriber with its queue or subject. Handlers
	// that subscribe to the same topic share their series. The default.
	HandlerTopic HandlerLabel = iota
	// HandlerName labels a handler with its name in router.AddHandler,
	// so handlers of one topic (fan-out) get series of their own.
	// Outside a router handler, the topic is used.
	HandlerName
)

// WithHandlerLabel chooses whether the handler label names the subscribed
// topic (HandlerTopic, the default) or the router's handler name
// (HandlerName). With HandlerTopic the Plugin creates a handler's series
// at zero when the router subscribes it; the router names no handler
// before its first message, so with HandlerName they appear with it.
func WithHandlerLabel(l HandlerLabel) Option {
	return func(c *config) { c.handlerLabel = l }
}

// NativeHistograms says how the native form of the three histograms
// stands next to the classic one; pass it to WithNativeHistograms.
type NativeHistograms int

const (
	// AlongsideClassic exposes every histogram both ways, native and
	// FastStream's classic _bucket series, so dashboard 22130 keeps
	// working; Prometheus stores both with scrape_native_histograms and
	// always_scrape_classic_histograms set to true.
	AlongsideClassic NativeHistograms = iota + 1
	// InsteadOfClassic exposes native buckets only: 22130's three
	// quantile panels go blank. For dashboards that query the native
	// series, such as grafana/dashboards/wmprom.json.
	InsteadOfClassic
)

// WithNativeHistograms makes the two duration histograms and the received
// size histogram native as well, AlongsideClassic or InsteadOfClassic,
// with the buckets of WithNativeHistogramBuckets. Off by default, as in
// FastStream. Like the buckets, the form belongs to the families: Metrics
// sharing a registry share them, and the first one registered decides.
func WithNativeHistograms(form NativeHistograms) Option {
	return func(c *config) { c.native.form = form }
}

// WithNativeHistogramBuckets tunes the native histograms: factor bounds
// the ratio of one bucket's bound to the one before (above 1; default
// 1.1), maxBuckets the buckets of one series (default 160), and minReset
// is the least time before a full series is reset rather than made
// coarser (default an hour).
func WithNativeHistogramBuckets(factor float64, maxBuckets uint32, minReset time.Duration) Option {
	return func(c *config) {
		c.native.factor, c.native.maxBuckets, c.native.minReset = factor, maxBuckets, minReset
	}
}

// WithMessageAge turns the message age families on (off by default): the
// histogram received_messages_age_seconds and the counters
// received_messages_age_unknown_total and
// received_messages_age_clamped_total. Decorated publishers then stamp
// the messages they publish with PublishedAtKey, in their metadata: do not
// publish one message from two goroutines at once. A message delivered
// again or forwarded keeps its first stamp; delete the key to measure
// each hop on its own.
func WithMessageAge(on bool) Option {
	return func(c *config) { c.messageAge = on }
}

// WithMessageAgeBuckets sets the age histogram's bounds, in seconds
// (default .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 30 60 300 900 3600 10800).
func WithMessageAgeBuckets(buckets []float64) Option {
	return func(c *config) { c.ageBuckets = append([]float64(nil), buckets...) }
}

// WithPublishTime gives the message age a better source than the
// metadata stamp: fn returns the time the broker recorded for the
// message, or false (or a zero time) to read PublishedAtKey instead. It
// requires WithMessageAge(true). On Kafka, with watermill-kafka:
//
//	wmprom.WithPublishTime(func(msg *message.Message) (time.Time, bool) { return kafka.MessageTimestampFromCtx(msg.Context()) })
func WithPublishTime(fn func(*message.Message) (time.Time, bool)) Option {
	return func(c *config) { c.publishTime = fn }
}

// WithLogger sets the logger that receives what the router does not log:
// the causes given to Reject, Skip and Ack, and the misuse reports (see
// ErrInstrumentedTwice). Without it the Plugin uses its router's logger,
// while Middleware and DecoratePublisher used on their own log no causes
// and report misuse on standard error.
func WithLogger(l watermill.LoggerAdapter) Option {
	return func(c *config) { c.logger = l }
}

var (
	metricPrefixRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE    = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// validate reports every problem at once, so a service fails its start
// with the whole list instead of one mistake per deploy.
func (c *config) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	badValue := func(what, v string) {
		if p := staticValueProblem(what, v); p != "" {
			bad("%s", p)
		}
	}
	if !metricPrefixRE.MatchString(c.prefix) {
		bad("prefix %q is not a valid metric name prefix", c.prefix)
	}
	if c.appName != nil {
		badValue("app name", *c.appName)
	}
	if c.broker != nil {
		badValue("broker name", *c.broker)
	}
	for _, b := range []struct {
		what    string
		buckets []float64
	}{{"received size buckets", c.sizeBuckets}, {"duration buckets", c.durationBuckets}, {"message age buckets", c.ageBuckets}} {
		if err := checkBuckets(b.buckets); err != nil {
			bad("%s: %v", b.what, err)
		}
	}
	switch c.native.form {
	case 0, AlongsideClassic, InsteadOfClassic:
	default:
		bad("native histograms %d is neither AlongsideClassic nor InsteadOfClassic", c.native.form)
	}
	if !(c.native.factor > 1) || math.IsInf(c.native.factor, 1) {
		bad("native histogram bucket factor %v, want a finite number above 1", c.native.factor)
	}
	if c.native.maxBuckets < 1 {
		bad("native histogram max buckets is 0, want at least 1")
	}
	if c.native.minReset < 0 {
		bad("native histogram min reset duration %v is negative", c.native.minReset)
	}
	if c.handlerLabel > HandlerName {
		bad("handler label %d is neither HandlerTopic nor HandlerName", c.handlerLabel)
	}
	if c.maxExceptionTypes < 1 {
		bad("max exception types is %d, want at least 1", c.maxExceptionTypes)
	}
	if c.maxLabelSets < 1 {
		bad("max label sets is %d, want at least 1", c.maxLabelSets)
	}
	if c.publishTime != nil && !c.messageAge {
		bad("WithPublishTime is given but message age is off; add WithMessageAge(true)")
	}
	for _, d := range c.destinations {
		badValue("a declared destination", d)
	}
	for broker, topics := range c.brokerDestinations {
		badValue("the broker of declared destinations", broker)
		for _, d := range topics {
			badValue(fmt.Sprintf("a declared destination of broker %q", broker), d)
		}
	}
	seen := map[string]bool{}
	for _, l := range c.custom {
		switch {
		case !labelNameRE.MatchString(l.name) || len(l.name) > 1 && l.name[:2] == "__":
			bad("label name %q is not valid", l.name)
		case builtinLabels[l.name]:
			bad("label %q clashes with a built-in label", l.name)
		case seen[l.name]:
			bad("label %q is given twice", l.name)
		case l.dynamic && l.fn == nil:
			bad("label %q has a nil function", l.name)
		case !l.dynamic:
			badValue(fmt.Sprintf("label %q value", l.name), l.value)
		}
		seen[l.name] = true
	}
	return errors.Join(errs...)
}

func checkBuckets(b []float64) error {
	if len(b) == 0 {
		return errors.New("no buckets")
	}
	for i := range b {
		if math.IsNaN(b[i]) {
			return errors.New("a bucket is NaN")
		}
		if i > 0 && b[i] <= b[i-1] {
			return fmt.Errorf("not strictly increasing at %v after %v", b[i], b[i-1])
		}
	}
	return nil
}

func (c *config) appNameValue() string {
	if c.appName != nil {
		return *c.appName
	}
	return c.prefix
}
