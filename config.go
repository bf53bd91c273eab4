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

// Defaults, all in one place. The buckets are FastStream's, so that
// dashboards built for Python services read the same boundaries.
const (
	defaultPrefix            = "faststream"
	defaultMaxExceptionTypes = 50
	defaultMaxLabelSets      = 1000
)

func defaultSizeBuckets() []float64 {
	b := make([]float64, 0, 11)
	for exp := 4; exp <= 24; exp += 2 {
		b = append(b, math.Pow(2, float64(exp)))
	}
	return b
}

func defaultDurationBuckets() []float64 {
	return []float64{.005, .01, .025, .05, .075, .1, .25, .5, .75, 1, 2.5, 5, 7.5, 10}
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
	destinations       []string            // WithDestinations: for publishers of any broker
	brokerDestinations map[string][]string // WithBrokerDestinations: broker label -> topics
	exemplars          bool
	traceID            func(*message.Message) string
	native             nativeConfig // WithNativeHistograms, native.go
	messageAge         bool         // age.go
	ageBuckets         []float64
	publishTime        func(*message.Message) (time.Time, bool)
	handlerLabel       HandlerLabel                  // handlerlabel.go
	logger             watermill.LoggerAdapter       // logging.go; nil: the Plugin's router's, else none
	now                func() time.Time              // tests replace both clocks to make durations exact
	since              func(time.Time) time.Duration // time.Since reads only the monotonic clock: half of time.Now
}

func newConfig(opts []Option) *config {
	c := &config{
		prefix:            defaultPrefix,
		sizeBuckets:       defaultSizeBuckets(),
		durationBuckets:   defaultDurationBuckets(),
		maxExceptionTypes: defaultMaxExceptionTypes,
		maxLabelSets:      defaultMaxLabelSets,
		exemplars:         true,
		native:            defaultNativeConfig(),
		ageBuckets:        defaultAgeBuckets(),
		now:               time.Now,
		since:             time.Since,
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
// of each subscriber and publisher. New refuses a name that is empty, not
// valid UTF-8 or longer than MaxLabelValueRunes runes.
func WithBroker(name string) Option {
	return func(c *config) { c.broker = &name }
}

// WithReceivedSizeBuckets sets the upper bounds, in bytes, of the received
// message size histogram. The default is 2^4, 2^6, ... 2^24.
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
// the built-in labels and in the order the options are given. New refuses
// a value that is empty, not valid UTF-8 or longer than
// MaxLabelValueRunes runes.
func WithLabel(name, value string) Option {
	return func(c *config) { c.custom = append(c.custom, customLabel{name: name, value: value}) }
}

// WithLabelFunc adds a label to all nine families whose value fn computes
// from each consumed or published message (for a batch publish, from its
// first message). An empty result is recorded as "unknown", an invalid
// one is repaired as every label value from user data is (see
// MaxLabelValueRunes). Every distinct value makes new series: keep the
// set of values small; past WithMaxLabelSets they are counted as "other".
func WithLabelFunc(name string, fn func(*message.Message) string) Option {
	return func(c *config) { c.custom = append(c.custom, customLabel{name: name, fn: fn, dynamic: true}) }
}

// WithErrorType replaces the classifier that turns an error into the
// exception_type label; nil keeps the default. An empty result falls back
// to the default classifier; an invalid one is repaired as every label
// value from user data is (see MaxLabelValueRunes). Whatever it returns,
// at most WithMaxExceptionTypes distinct values are kept per family.
func WithErrorType(fn func(error) string) Option {
	return func(c *config) { c.errorType = fn }
}

// WithMaxExceptionTypes bounds the distinct exception_type values each
// exceptions family records (default 50); later types are counted as
// "other", so an unexpected error cannot explode the number of series.
func WithMaxExceptionTypes(n int) Option {
	return func(c *config) { c.maxExceptionTypes = n }
}

// WithDestinations declares topics the application publishes to, so that
// their series exist at zero before the first publish; increase() and
// rate() then see even the first message. Topics not declared get their
// series on their first publish, whose first message those functions
// miss.
//
// The series are created on every publisher DecoratePublisher wraps,
// except Watermill's placeholder publisher of consumer-only handlers,
// which never publishes. That is right for a service that publishes to
// one broker. A service with publishers of several brokers should use
// WithBrokerDestinations instead, or each of them shows series at zero
// for topics it never publishes to.
func WithDestinations(topics ...string) Option {
	return func(c *config) { c.destinations = append(c.destinations, topics...) }
}

// WithBrokerDestinations declares topics the application publishes to
// through publishers of one broker, named by its broker label ("kafka",
// "rabbit", "nats", "redis", or whatever WithBroker or detection gives):
// only decorated publishers with that broker label create their series
// at zero. Give it once per broker; see WithDestinations for why series
// at zero matter.
func WithBrokerDestinations(broker string, topics ...string) Option {
	return func(c *config) {
		if c.brokerDestinations == nil {
			c.brokerDestinations = map[string][]string{}
		}
		c.brokerDestinations[broker] = append(c.brokerDestinations[broker], topics...)
	}
}

// WithMaxLabelSets bounds how many label sets a Metrics creates, counted
// apart for receiving and publishing (default 1000 each). A receive label
// set is one broker, handler and custom label values (the dozen series
// of one handler); a publish label set is one broker, destination and
// custom label values. Label sets, not series, are counted, so that the
// bound does not depend on the number of buckets. Past the bound, messages
// are counted in one overflow set per broker whose handler or
// destination, and WithLabelFunc labels, read "other" (static WithLabel
// values stay), so topics per tenant or a label function returning ids
// cannot flood Prometheus.
func WithMaxLabelSets(n int) Option {
	return func(c *config) { c.maxLabelSets = n }
}

// WithExemplars turns exemplars on (the default) or off. When on, a
// message that carries a trace adds its trace id as an exemplar to the
// counters and duration histograms it updates. Off, no message pays the
// look-up of its trace.
func WithExemplars(on bool) Option {
	return func(c *config) { c.exemplars = on }
}

// WithTraceID replaces how a message's trace id is found (by default, from
// a W3C traceparent in its metadata). With OpenTelemetry in the message's
// context, for example:
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
	if !metricPrefixRE.MatchString(c.prefix) {
		bad("prefix %q is not a valid metric name prefix", c.prefix)
	}
	if c.appName != nil {
		if p := staticValueProblem("app name", *c.appName); p != "" {
			bad("%s", p)
		}
	}
	if c.broker != nil {
		if p := staticValueProblem("broker name", *c.broker); p != "" {
			bad("%s", p)
		}
	}
	if err := checkBuckets(c.sizeBuckets); err != nil {
		bad("received size buckets: %v", err)
	}
	if err := checkBuckets(c.durationBuckets); err != nil {
		bad("duration buckets: %v", err)
	}
	for _, p := range c.native.validate() {
		bad("%s", p)
	}
	if !c.handlerLabel.valid() {
		bad("handler label %d is neither HandlerTopic nor HandlerName", c.handlerLabel)
	}
	if c.maxExceptionTypes < 1 {
		bad("max exception types is %d, want at least 1", c.maxExceptionTypes)
	}
	if c.maxLabelSets < 1 {
		bad("max label sets is %d, want at least 1", c.maxLabelSets)
	}
	for _, d := range c.destinations {
		if p := staticValueProblem("a declared destination", d); p != "" {
			bad("%s", p)
		}
	}
	for broker, topics := range c.brokerDestinations {
		if p := staticValueProblem("the broker of declared destinations", broker); p != "" {
			bad("%s", p)
		}
		for _, d := range topics {
			if p := staticValueProblem(fmt.Sprintf("a declared destination of broker %q", broker), d); p != "" {
				bad("%s", p)
			}
		}
	}
	if err := c.checkAge(); err != nil {
		errs = append(errs, err)
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
		case !l.dynamic && staticValueProblem("", l.value) != "":
			bad("%s", staticValueProblem(fmt.Sprintf("label %q value", l.name), l.value))
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
