package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/testcontainers/testcontainers-go"

	"github.com/wmprom/wmprom"
)

// appName is set explicitly so the assertions do not depend on the
// library's default.
const appName = "brokertest"

// metricPrefix is the library's default prefix, as the dashboard expects.
const metricPrefix = "faststream_"

// sizeBuckets are set explicitly, with payload sizes below chosen on and
// around the bounds, so that every bucket count of the size histogram can
// be asserted exactly (Prometheus buckets are inclusive upper bounds).
var sizeBuckets = []float64{16, 64, 256, 1024}

// drainTimeout bounds how long a broker may take to deliver everything; it
// is a deadline for polling, not a timing assertion.
const drainTimeout = 60 * time.Second

// brokerEnv is one broker, ready for a scenario: an adapter file builds it
// for its Watermill pub/sub package.
type brokerEnv struct {
	// source says where the broker came from; it goes to the test log.
	source string
	// label is the broker label the library must detect for this package.
	label string
	// redelivers tells whether a nacked message is delivered again. Core
	// NATS has no acknowledgements, so its Nack is a no-op.
	redelivers bool
	// nackMeaning is printed in the log, so the log documents the broker.
	nackMeaning string

	// newPublisher returns a new publisher that the caller owns.
	newPublisher func(t *testing.T) message.Publisher
	// newSubscriber returns a new subscriber for one handler; group names
	// the consumer group where the broker has them.
	newSubscriber func(t *testing.T, group string) message.Subscriber
	// prepare creates topics that must exist before subscribing, and
	// schedules their removal from long-lived brokers. May be nil.
	prepare func(t *testing.T, topics ...string)
	// afterRunning makes sure subscriptions are effective on the broker
	// once the router runs. May be nil.
	afterRunning func(t *testing.T)
	// closedPublishErrorType is the exception_type of a Publish on a
	// closed publisher of this package.
	closedPublishErrorType string
}

// uniqueName returns a name unique to this test run, made of characters
// every broker accepts in topic, queue, stream and subject names.
func uniqueName(parts ...string) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return "wmprom_" + strings.Join(parts, "_") + "_" + time.Now().UTC().Format("150405") + "_" + hex.EncodeToString(b)
}

// runRouter runs router until the returned function closes it (once,
// checking Close's and Run's errors), and returns when it is running.
// beforeClose, if not nil, runs first, to let blocked handlers finish.
func runRouter(t *testing.T, router *message.Router, beforeClose func()) (closeRouter func()) {
	t.Helper()
	runErr := make(chan error, 1)
	go func() { runErr <- router.Run(context.Background()) }()
	var once sync.Once
	closeRouter = func() {
		once.Do(func() {
			if beforeClose != nil {
				beforeClose()
			}
			if err := router.Close(); err != nil {
				t.Errorf("router.Close: %v", err)
			}
			if err := <-runErr; err != nil {
				t.Errorf("router.Run: %v", err)
			}
		})
	}
	select {
	case <-router.Running():
	case err := <-runErr:
		once.Do(func() {})
		t.Fatalf("router.Run: %v", err)
	case <-time.After(drainTimeout):
		closeRouter()
		t.Fatalf("router not running after %s", drainTimeout)
	}
	return closeRouter
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// watermillLogger is quiet unless WMPROM_TEST_DEBUG is set: handlers in the
// scenario fail on purpose and the router logs every failure.
func watermillLogger() watermill.LoggerAdapter {
	if os.Getenv("WMPROM_TEST_DEBUG") != "" {
		return watermill.NewStdLogger(true, false)
	}
	return watermill.NopLogger{}
}

// --- where brokers come from ---------------------------------------------

var (
	dockerOnce   sync.Once
	dockerErr    error
	dockerChecks time.Duration
)

// dockerAvailable tells whether testcontainers can reach a Docker engine.
// It asks once per test binary, with a short deadline, in the way
// testcontainers.SkipIfProviderIsNotHealthy does, but returns the reason
// instead of skipping so that the next source can be tried.
func dockerAvailable() error {
	dockerOnce.Do(func() {
		start := time.Now()
		defer func() { dockerChecks = time.Since(start) }()
		defer func() {
			if r := recover(); r != nil {
				dockerErr = fmt.Errorf("testcontainers panicked: %v", r)
			}
		}()
		provider, err := testcontainers.ProviderDefault.GetProvider()
		if err != nil {
			dockerErr = err
			return
		}
		defer provider.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		dockerErr = provider.Health(ctx)
	})
	return dockerErr
}

// sourceLog collects the reasons sources were passed over, for the log
// and for the skip message.
type sourceLog []string

func (s *sourceLog) pass(format string, args ...any) { *s = append(*s, fmt.Sprintf(format, args...)) }

func (s sourceLog) String() string { return strings.Join(s, "; ") }

// fromContainer starts a broker through testcontainers when a Docker
// engine answers. run returns the container (nil or not) and the address
// to use; the container is terminated when the test ends.
func fromContainer(t *testing.T, passed *sourceLog, what string,
	run func(ctx context.Context) (testcontainers.Container, string, error),
) (string, bool) {
	t.Helper()
	if err := dockerAvailable(); err != nil {
		passed.pass("no Docker engine for testcontainers (%v; asked in %s)", err, dockerChecks.Round(time.Microsecond))
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, addr, err := run(ctx)
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		passed.pass("testcontainers %s failed: %v", what, err)
		return "", false
	}
	return addr, true
}

// --- the scenario ---------------------------------------------------------

// caseSpec is one kind of message on the input topic: what its handler
// does on the first delivery. Every redelivery is acked.
type caseSpec struct {
	name  string
	count int
	// first is the status of the first delivery.
	first string
	// exception is the exception_type counted for the first delivery.
	exception string
	// fails means the router nacks the first delivery, so brokers that
	// redeliver deliver it a second time.
	fails bool
}

// decodeError is an error type of this package: its exception_type is its
// Go type name.
type decodeError struct{ field string }

func (e *decodeError) Error() string { return "cannot decode field " + e.field }

var errPlain = errors.New("brokertest: downstream refused")

var scenarioCases = []caseSpec{
	{name: "ack", count: 3, first: "acked"},
	{name: "ack_with_cause", count: 1, first: "acked"},
	{name: "error_plain", count: 1, first: "error", exception: "errors.errorString", fails: true},
	{name: "error_typed", count: 1, first: "error", exception: "brokertest.decodeError", fails: true},
	{name: "nack", count: 1, first: "nacked", fails: true},
	{name: "reject", count: 1, first: "rejected"},
	{name: "skip", count: 1, first: "skipped"},
	{name: "panic", count: 1, first: "error", exception: "panic", fails: true},
	{name: "produce", count: 2, first: "acked"},
}

// producedPerMessage is how many messages a "produce" message makes the
// handler publish to the output topic, in one Publish call.
const producedPerMessage = 2

// payloadSizes are the input payload sizes, in order; they sit on, below
// and above the size bucket bounds.
var payloadSizes = []int{3, 16, 17, 64, 65, 200, 256, 700, 1024, 1025, 40, 1}

// tracker is the ground truth: what the handlers actually saw.
type tracker struct {
	mu         sync.Mutex
	deliveries map[string]int // by message id, input topic
	inCount    int
	outCount   int
	outIDs     map[string]int
	corrupted  []string // ids whose payload was not what was sent
}

func (tr *tracker) corrupt(id string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.corrupted = append(tr.corrupted, id)
}

func newTracker() *tracker {
	return &tracker{deliveries: map[string]int{}, outIDs: map[string]int{}}
}

func (tr *tracker) in(id string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.deliveries[id]++
	tr.inCount++
	return tr.deliveries[id]
}

func (tr *tracker) out(id string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.outIDs[id]++
	tr.outCount++
}

func (tr *tracker) counts() (in, out int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.inCount, tr.outCount
}

// inputMessage is one message the scenario publishes.
type inputMessage struct {
	id      string
	spec    caseSpec
	payload []byte
}

func scenarioInput() []inputMessage {
	var msgs []inputMessage
	for _, c := range scenarioCases {
		for i := 0; i < c.count; i++ {
			n := len(msgs)
			size := payloadSizes[n%len(payloadSizes)]
			id := fmt.Sprintf("%s-%d", c.name, i)
			msgs = append(msgs, inputMessage{id: id, spec: c, payload: payloadOf(id, size)})
		}
	}
	return msgs
}

// payloadOf makes a payload of exactly size bytes that starts with id, so
// a broker that mixes payloads up is noticed.
func payloadOf(id string, size int) []byte {
	p := []byte(strings.Repeat(".", size))
	copy(p, id)
	return p
}

// runScenario runs the shared scenario on env and asserts the registry.
func runScenario(t *testing.T, env *brokerEnv) {
	t.Logf("%s broker: %s", env.label, env.source)

	inTopic := uniqueName(env.label, "in")
	outTopic := uniqueName(env.label, "out")
	failTopic := uniqueName(env.label, "fail")
	if env.prepare != nil {
		env.prepare(t, inTopic, outTopic, failTopic)
	}

	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg, wmprom.WithAppName(appName), wmprom.WithReceivedSizeBuckets(sizeBuckets))
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 15 * time.Second}, watermillLogger())
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	router.AddPlugin(m.Plugin)

	tr := newTracker()
	input := scenarioInput()
	byID := map[string]inputMessage{}
	for _, in := range input {
		byID[in.id] = in
	}

	router.AddHandler("brokertest_in", inTopic, env.newSubscriber(t, "brokertest_in"), outTopic, env.newPublisher(t),
		func(msg *message.Message) ([]*message.Message, error) {
			id := msg.Metadata.Get("id")
			n := tr.in(id)
			sent, known := byID[id]
			if !known || string(msg.Payload) != string(sent.payload) {
				tr.corrupt(id)
			}
			spec := sent.spec
			if n > 1 {
				return nil, nil
			}
			switch spec.name {
			case "error_plain":
				return nil, fmt.Errorf("handling %s: %w", id, errPlain)
			case "error_typed":
				return nil, fmt.Errorf("handling %s: %w", id, &decodeError{field: "amount"})
			case "ack_with_cause":
				return nil, wmprom.Ack(errors.New("already applied"))
			case "nack":
				return nil, wmprom.Nack(errors.New("not yet"))
			case "reject":
				return nil, wmprom.Reject(errors.New("malformed"))
			case "skip":
				return nil, wmprom.Skip(nil)
			case "panic":
				panic("brokertest: handler panics on " + id)
			case "produce":
				var out []*message.Message
				for k := 0; k < producedPerMessage; k++ {
					oid := fmt.Sprintf("%s-out-%d", id, k)
					om := message.NewMessage(watermill.NewUUID(), []byte(oid))
					om.Metadata.Set("id", oid)
					out = append(out, om)
				}
				return out, nil
			}
			return nil, nil
		})
	router.AddConsumerHandler("brokertest_out", outTopic, env.newSubscriber(t, "brokertest_out"),
		func(msg *message.Message) error {
			tr.out(msg.Metadata.Get("id"))
			return nil
		})

	closeRouter := runRouter(t, router, nil)
	defer closeRouter()
	if env.afterRunning != nil {
		env.afterRunning(t)
	}

	// The application's own publisher, decorated directly.
	rawPub := env.newPublisher(t)
	pub, err := m.DecoratePublisher(rawPub)
	if err != nil {
		t.Fatalf("DecoratePublisher: %v", err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	for _, in := range input {
		msg := message.NewMessage(watermill.NewUUID(), in.payload)
		msg.Metadata.Set("id", in.id)
		if err := pub.Publish(inTopic, msg); err != nil {
			t.Fatalf("publish %s: %v", in.id, err)
		}
	}

	// A publisher that fails: closed before use.
	closedRaw := env.newPublisher(t)
	if err := closedRaw.Close(); err != nil {
		t.Fatalf("closing publisher: %v", err)
	}
	closedPub, err := m.DecoratePublisher(closedRaw)
	if err != nil {
		t.Fatalf("DecoratePublisher: %v", err)
	}
	const failedMsgs = 2
	failErr := closedPub.Publish(failTopic,
		message.NewMessage(watermill.NewUUID(), []byte("never sent 1")),
		message.NewMessage(watermill.NewUUID(), []byte("never sent 2")))
	if failErr == nil {
		t.Fatalf("Publish on a closed %s publisher succeeded", env.label)
	}

	// Expected ground truth and registry.
	exp := newExpectation(env.label)
	var inDeliveries, inBytes int
	var sizes []int
	statusCount := map[string]int{}
	exceptions := map[string]int{}
	for _, in := range input {
		d := 1
		statusCount[in.spec.first]++
		if in.spec.exception != "" {
			exceptions[in.spec.exception]++
		}
		if in.spec.fails && env.redelivers {
			d = 2
			statusCount["acked"]++
		}
		inDeliveries += d
		for i := 0; i < d; i++ {
			inBytes += len(in.payload)
			sizes = append(sizes, len(in.payload))
		}
	}
	var outSizes []int
	for _, in := range input {
		if in.spec.name == "produce" {
			for k := 0; k < producedPerMessage; k++ {
				outSizes = append(outSizes, len(fmt.Sprintf("%s-out-%d", in.id, k)))
			}
		}
	}
	produceCalls := 0
	for _, c := range scenarioCases {
		if c.name == "produce" {
			produceCalls = c.count
		}
	}
	outDeliveries := len(outSizes)

	eventually(t, drainTimeout, "handlers to see every delivery", func() bool {
		in, out := tr.counts()
		if in < inDeliveries || out < outDeliveries {
			return false
		}
		snap := snapshot(t, reg)
		return snap.sum(metricPrefix+"received_processed_messages_total", "handler", inTopic) >= float64(inDeliveries) &&
			snap.sum(metricPrefix+"received_processed_messages_total", "handler", outTopic) >= float64(outDeliveries)
	})
	// Closing the router waits for running handlers, so nothing changes
	// after this point and exact counts cannot be hidden by late arrivals.
	closeRouter()

	// Ground truth first: the broker did what the table says.
	in, out := tr.counts()
	if in != inDeliveries || out != outDeliveries {
		t.Errorf("handler saw %d input and %d output deliveries, want %d and %d", in, out, inDeliveries, outDeliveries)
	}
	for _, msg := range input {
		want := 1
		if msg.spec.fails && env.redelivers {
			want = 2
		}
		if got := tr.deliveries[msg.id]; got != want {
			t.Errorf("message %s (%s) delivered %d times, want %d", msg.id, msg.spec.name, got, want)
		}
	}
	if len(tr.corrupted) > 0 {
		t.Errorf("messages arrived with unknown ids or payloads other than sent: %q", tr.corrupted)
	}
	for id, n := range tr.outIDs {
		if n != 1 {
			t.Errorf("produced message %s delivered %d times, want 1", id, n)
		}
	}

	// The registry, every series of every family.
	for _, s := range []string{"acked", "nacked", "rejected", "skipped", "error"} {
		exp.set("received_processed_messages_total", float64(statusCount[s]), "handler", inTopic, "status", s)
		exp.set("received_processed_messages_total", 0, "handler", outTopic, "status", s)
	}
	exp.set("received_processed_messages_total", float64(outDeliveries), "handler", outTopic, "status", "acked")
	exp.set("received_messages_total", float64(inDeliveries), "handler", inTopic)
	exp.set("received_messages_total", float64(outDeliveries), "handler", outTopic)
	exp.set("received_messages_in_process", 0, "handler", inTopic)
	exp.set("received_messages_in_process", 0, "handler", outTopic)
	exp.histogram("received_messages_size_bytes", sizes, "handler", inTopic)
	exp.histogram("received_messages_size_bytes", outSizes, "handler", outTopic)
	exp.set("received_processed_messages_duration_seconds_count", float64(inDeliveries), "handler", inTopic)
	exp.set("received_processed_messages_duration_seconds_count", float64(outDeliveries), "handler", outTopic)
	for typ, n := range exceptions {
		exp.set("received_processed_messages_exceptions_total", float64(n), "handler", inTopic, "exception_type", typ)
	}

	exp.set("published_messages_total", float64(len(input)), "destination", inTopic, "status", "success")
	exp.set("published_messages_total", 0, "destination", inTopic, "status", "error")
	exp.set("published_messages_duration_seconds_count", float64(len(input)), "destination", inTopic)
	exp.set("published_messages_total", float64(outDeliveries), "destination", outTopic, "status", "success")
	exp.set("published_messages_total", 0, "destination", outTopic, "status", "error")
	exp.set("published_messages_duration_seconds_count", float64(produceCalls), "destination", outTopic)
	exp.set("published_messages_total", 0, "destination", failTopic, "status", "success")
	exp.set("published_messages_total", failedMsgs, "destination", failTopic, "status", "error")
	exp.set("published_messages_duration_seconds_count", 1, "destination", failTopic)
	exp.set("published_messages_exceptions_total", 1, "destination", failTopic, "exception_type", env.closedPublishErrorType)

	snap := snapshot(t, reg)
	exp.compare(t, snap)

	// Cross-checks stated in the issue, on the registry itself.
	for _, topic := range []string{inTopic, outTopic} {
		rec := snap.get(metricPrefix+"received_messages_total", "handler", topic)
		proc := snap.sum(metricPrefix+"received_processed_messages_total", "handler", topic)
		if rec != proc {
			t.Errorf("handler %s: received %v != sum of processed %v", topic, rec, proc)
		}
	}
	if got := snap.get(metricPrefix+"received_messages_size_bytes_sum", "handler", inTopic); got != float64(inBytes) {
		t.Errorf("size histogram sum %v, want payload bytes delivered %d", got, inBytes)
	}
	if got := snap.get(metricPrefix+"published_messages_total", "destination", outTopic, "status", "success"); got != float64(out) {
		t.Errorf("published success to %s = %v, but the consumer received %d", outTopic, got, out)
	}
	if got := snap.get(metricPrefix+"published_messages_total", "destination", inTopic, "status", "success"); got != float64(len(tr.deliveries)) {
		t.Errorf("published success to %s = %v, but %d distinct messages arrived", inTopic, got, len(tr.deliveries))
	}

	if t.Failed() {
		return
	}
	t.Logf("%s: checked %d series exactly", env.label, len(exp.values))
	t.Logf("%s: handler %s received %d = acked %d + error %d + nacked %d + rejected %d + skipped %d; exceptions %v; size sum %d bytes; in_process 0",
		env.label, inTopic, inDeliveries, statusCount["acked"], statusCount["error"], statusCount["nacked"],
		statusCount["rejected"], statusCount["skipped"], exceptions, inBytes)
	t.Logf("%s: handler %s received %d = acked %d; published success %d to %s and %d to %s (= deliveries); %d error to %s, exception_type %s (%v)",
		env.label, outTopic, outDeliveries, outDeliveries, len(input), inTopic, outDeliveries, outTopic, failedMsgs, failTopic,
		env.closedPublishErrorType, failErr)
	t.Logf("%s broker: Nack %s", env.label, env.nackMeaning)
}

// --- reading the registry -----------------------------------------------

// series maps "name{label="value",...}" (labels sorted by name) to a
// value. Histograms appear as their _sum, _count and _bucket series.
type series map[string]float64

func seriesKey(name string, labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for n := range labels {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", n, labels[n])
	}
	b.WriteByte('}')
	return b.String()
}

// snapshot gathers reg into series.
func snapshot(t *testing.T, reg prometheus.Gatherer) series {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	s := series{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			name := mf.GetName()
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				s[seriesKey(name, labels)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s[seriesKey(name, labels)] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				s[seriesKey(name+"_sum", labels)] = h.GetSampleSum()
				s[seriesKey(name+"_count", labels)] = float64(h.GetSampleCount())
				for _, b := range h.GetBucket() {
					bl := map[string]string{"le": formatLe(b.GetUpperBound())}
					for k, v := range labels {
						bl[k] = v
					}
					s[seriesKey(name+"_bucket", bl)] = float64(b.GetCumulativeCount())
				}
				inf := map[string]string{"le": "+Inf"}
				for k, v := range labels {
					inf[k] = v
				}
				s[seriesKey(name+"_bucket", inf)] = float64(h.GetSampleCount())
			default:
				s[seriesKey(name, labels)] = math.NaN()
			}
		}
	}
	return s
}

func formatLe(v float64) string {
	if math.IsInf(v, +1) {
		return "+Inf"
	}
	return fmt.Sprint(v)
}

// match tells whether key is a series of name whose labels include the
// given pairs.
func match(key, name string, pairs ...string) bool {
	if !strings.HasPrefix(key, name+"{") {
		return false
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(key, fmt.Sprintf("%s=%q", pairs[i], pairs[i+1])) {
			return false
		}
	}
	return true
}

// sum adds up the series of name whose labels include pairs.
func (s series) sum(name string, pairs ...string) float64 {
	var total float64
	for k, v := range s {
		if match(k, name, pairs...) {
			total += v
		}
	}
	return total
}

// get is sum for pairs that select one series; it fails loudly (NaN) when
// they select none.
func (s series) get(name string, pairs ...string) float64 {
	found := false
	var total float64
	for k, v := range s {
		if match(k, name, pairs...) {
			found = true
			total += v
		}
	}
	if !found {
		return math.NaN()
	}
	return total
}

// expectation is the exact set of series a registry must hold, apart from
// the duration histograms' _sum and _bucket series (times are not exact).
type expectation struct {
	broker string
	values series
}

func newExpectation(broker string) *expectation {
	return &expectation{broker: broker, values: series{}}
}

// set adds one series; name has no prefix, pairs are the labels other
// than app_name and broker.
func (e *expectation) set(name string, v float64, pairs ...string) {
	labels := map[string]string{"app_name": appName, "broker": e.broker}
	for i := 0; i+1 < len(pairs); i += 2 {
		labels[pairs[i]] = pairs[i+1]
	}
	e.values[seriesKey(metricPrefix+name, labels)] = v
}

// histogram adds a size histogram observed with sizes.
func (e *expectation) histogram(name string, sizes []int, pairs ...string) {
	total := 0
	for _, s := range sizes {
		total += s
	}
	e.set(name+"_sum", float64(total), pairs...)
	e.set(name+"_count", float64(len(sizes)), pairs...)
	for _, bound := range sizeBuckets {
		n := 0
		for _, s := range sizes {
			if float64(s) <= bound {
				n++
			}
		}
		e.set(name+"_bucket", float64(n), append([]string{"le", formatLe(bound)}, pairs...)...)
	}
	e.set(name+"_bucket", float64(len(sizes)), append([]string{"le", "+Inf"}, pairs...)...)
}

// ignored are the series whose values depend on time.
func ignored(key string) bool {
	for _, n := range []string{"received_processed_messages_duration_seconds", "published_messages_duration_seconds"} {
		if strings.HasPrefix(key, metricPrefix+n+"_sum{") || strings.HasPrefix(key, metricPrefix+n+"_bucket{") {
			return true
		}
	}
	return false
}

// compare reports every missing, extra or different series.
func (e *expectation) compare(t *testing.T, got series) {
	t.Helper()
	var problems []string
	for k, want := range e.values {
		g, ok := got[k]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing %s (want %v)", k, want))
		case g != want:
			problems = append(problems, fmt.Sprintf("%s = %v, want %v", k, g, want))
		}
	}
	for k, g := range got {
		if _, ok := e.values[k]; !ok && !ignored(k) {
			problems = append(problems, fmt.Sprintf("unexpected %s = %v", k, g))
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}
