package brokertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/eapache/go-resiliency/breaker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wmprom/wmprom"
)

// faultEnv is a broker the test owns and can stop and start again on the
// same address with the same data.
type faultEnv struct {
	label  string
	source string
	// stop takes the broker down and returns once it no longer answers.
	stop func(t *testing.T)
	// start brings it back on the same address with the same data.
	start func(t *testing.T)
	// waitDown returns once publisher connections see the broker as down,
	// so that publishing fails rather than being buffered. May be nil.
	waitDown func(t *testing.T)
	// waitUp returns once publishers can publish again. May be nil.
	waitUp func(t *testing.T)

	newPublisher  func(t *testing.T) message.Publisher
	newSubscriber func(t *testing.T) message.Subscriber
	prepare       func(t *testing.T, topic string)

	// ackFailed, when not nil, is closed once the subscriber has failed to
	// acknowledge the message that was in flight when the broker stopped.
	ackFailed <-chan struct{}
	// inFlightRedeliveries is how often the broker delivers the in-flight
	// message again after it comes back, or -1 where the broker decides
	// (Kafka redelivers from the last committed offset, and whether a
	// commit made it before the outage is a race): then the registry is
	// checked against the deliveries the handler actually saw.
	inFlightRedeliveries int
	// publishErrorType names the exception_type the library must give to
	// a failed publish, by the kind of failure (the same kind must always
	// get the same type); false for a failure the test does not expect.
	publishErrorType func(err error) (string, bool)
}

// scraper keeps scraping the metrics endpoint for the whole test: the
// endpoint must answer while the broker is down.
type scraper struct {
	url      string
	ok, fail atomic.Int64
	lastErr  atomic.Value
	stop     chan struct{}
	done     chan struct{}
}

func startScraper(t *testing.T, reg *prometheus.Registry) *scraper {
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	t.Cleanup(srv.Close)
	s := &scraper{url: srv.URL + "/metrics", stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := s.scrape(); err != nil {
				s.fail.Add(1)
				s.lastErr.Store(err.Error())
			} else {
				s.ok.Add(1)
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *scraper) scrape() (string, error) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(s.url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s: %s", resp.Status, body)
	}
	return string(body), nil
}

func (s *scraper) finish() (ok, fail int64) {
	close(s.stop)
	<-s.done
	return s.ok.Load(), s.fail.Load()
}

// scrapeHas scrapes once and tells whether the exposition has line.
func (s *scraper) scrapeHas(t *testing.T, line string) bool {
	t.Helper()
	body, err := s.scrape()
	if err != nil {
		t.Fatalf("scraping %s: %v", s.url, err)
	}
	for _, l := range strings.Split(body, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// runFaults stops the broker while a message is in flight, publishes while
// it is down, brings it back and checks that nothing was lost or
// miscounted.
func runFaults(t *testing.T, env *faultEnv) {
	t.Logf("%s faults: broker %s", env.label, env.source)
	topic := uniqueName(env.label, "faults")
	env.prepare(t, topic)

	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg, wmprom.WithAppName(appName), wmprom.WithReceivedSizeBuckets(sizeBuckets))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	scr := startScraper(t, reg)

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 15 * time.Second}, watermillLogger())
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	router.AddPlugin(m.Plugin)

	tr := newTracker()
	entered := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseGate := func() { releaseOnce.Do(func() { close(release) }) }
	defer releaseGate()
	router.AddConsumerHandler("faults", topic, env.newSubscriber(t), func(msg *message.Message) error {
		id := msg.Metadata.Get("id")
		if tr.in(id) == 1 && id == "before-0" {
			close(entered)
			<-release
		}
		return nil
	})

	closeRouter := runRouter(t, router, releaseGate)
	defer closeRouter()

	pub, err := m.DecoratePublisher(env.newPublisher(t))
	if err != nil {
		t.Fatalf("DecoratePublisher: %v", err)
	}
	sizeOf := map[string]int{}
	published := map[string]bool{}
	publish := func(id string) error {
		payload := payloadOf(id, 20+(len(sizeOf)*37)%300)
		sizeOf[id] = len(payload)
		msg := message.NewMessage(watermill.NewUUID(), payload)
		msg.Metadata.Set("id", id)
		err := pub.Publish(topic, msg)
		if err == nil {
			published[id] = true
		}
		return err
	}

	const before, during, after = 4, 3, 4
	for i := 0; i < before; i++ {
		if err := publish(fmt.Sprintf("before-%d", i)); err != nil {
			t.Fatalf("publish before the outage: %v", err)
		}
	}
	select {
	case <-entered:
	case <-time.After(drainTimeout):
		t.Fatalf("the first message did not reach the handler within %s", drainTimeout)
	}
	inFlightLine := func(v int) string {
		return fmt.Sprintf(`%sreceived_messages_in_process{app_name=%q,broker=%q,handler=%q} %d`, metricPrefix, appName, env.label, topic, v)
	}
	if !scr.scrapeHas(t, inFlightLine(1)) {
		t.Fatalf("before the outage: /metrics lacks %q", inFlightLine(1))
	}

	env.stop(t)
	if env.waitDown != nil {
		env.waitDown(t)
	}
	// The endpoint answers while the broker is down, and shows the
	// message still in flight.
	if !scr.scrapeHas(t, inFlightLine(1)) {
		t.Errorf("broker down: /metrics lacks %q", inFlightLine(1))
	}

	failTypes := map[string]int{}
	countFailure := func(err error) {
		typ, ok := env.publishErrorType(err)
		if !ok {
			t.Fatalf("unexpected kind of publish failure: %v", err)
		}
		failTypes[typ]++
	}
	for i := 0; i < during; i++ {
		id := fmt.Sprintf("during-%d", i)
		err := publish(id)
		if err == nil {
			t.Fatalf("publishing %s succeeded while %s was down", id, env.label)
		}
		countFailure(err)
		if i == 0 {
			t.Logf("%s faults: publish while down fails with: %v", env.label, err)
		}
	}

	// Let the in-flight handler finish while the broker is still down: its
	// acknowledgement cannot reach the broker.
	releaseGate()
	eventually(t, drainTimeout, "in_process back to 0 while the broker is down", func() bool {
		return scr.scrapeHas(t, inFlightLine(0))
	})
	if env.ackFailed != nil {
		select {
		case <-env.ackFailed:
		case <-time.After(drainTimeout):
			t.Fatalf("the subscriber never reported the failed ack")
		}
	}

	env.start(t)
	if env.waitUp != nil {
		env.waitUp(t)
	}
	// A client may keep failing for a while after the broker is back
	// (sarama opens a per-topic circuit breaker for 10 s after three
	// failures): such failures are part of the outage and are counted.
	recoveryFailures := 0
	for i := 0; i < after; i++ {
		id := fmt.Sprintf("after-%d", i)
		eventually(t, drainTimeout, "publishing "+id+" after recovery", func() bool {
			err := publish(id)
			if err != nil {
				if recoveryFailures == 0 {
					t.Logf("%s faults: publish right after recovery fails with: %v", env.label, err)
				}
				recoveryFailures++
				countFailure(err)
			}
			return err == nil
		})
	}

	wantDeliveries := len(published) + max(env.inFlightRedeliveries, 0)
	eventually(t, drainTimeout, "every published message to be processed", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.deliveries) >= len(published) && tr.inCount >= wantDeliveries
	})
	closeRouter()
	ok, fail := scr.finish()

	// Ground truth: every successfully published message was processed,
	// nothing else was, and only messages in flight came again.
	in, _ := tr.counts()
	redeliveries := in - len(published)
	if env.inFlightRedeliveries >= 0 && in != wantDeliveries {
		t.Errorf("handler saw %d deliveries, want %d (%d published + %d redelivered)", in, wantDeliveries, len(published), env.inFlightRedeliveries)
	}
	redeliveredIDs := map[string]int{}
	for id := range published {
		got := tr.deliveries[id]
		if got > 1 {
			redeliveredIDs[id] = got - 1
		}
		if env.inFlightRedeliveries < 0 {
			if got < 1 {
				t.Errorf("message %s was published but never processed", id)
			}
			continue
		}
		want := 1
		if id == "before-0" {
			want += env.inFlightRedeliveries
		}
		if got != want {
			t.Errorf("message %s delivered %d times, want %d", id, got, want)
		}
	}
	var sizes []int
	for id, n := range tr.deliveries {
		if !published[id] {
			t.Errorf("message %s was processed although its publish failed", id)
		}
		for i := 0; i < n; i++ {
			sizes = append(sizes, sizeOf[id])
		}
	}
	if fail != 0 {
		t.Errorf("/metrics failed %d of %d scrapes; last error: %v", fail, ok+fail, scr.lastErr.Load())
	}

	// The registry, exactly: received == acked == every delivery.
	exp := newExpectation(env.label)
	for _, s := range []string{"acked", "nacked", "rejected", "skipped", "error"} {
		exp.set("received_processed_messages_total", 0, "handler", topic, "status", s)
	}
	exp.set("received_processed_messages_total", float64(in), "handler", topic, "status", "acked")
	exp.set("received_messages_total", float64(in), "handler", topic)
	exp.set("received_messages_in_process", 0, "handler", topic)
	exp.histogram("received_messages_size_bytes", sizes, "handler", topic)
	exp.set("received_processed_messages_duration_seconds_count", float64(in), "handler", topic)
	exp.set("published_messages_total", float64(len(published)), "destination", topic, "status", "success")
	failures := during + recoveryFailures
	exp.set("published_messages_total", float64(failures), "destination", topic, "status", "error")
	exp.set("published_messages_duration_seconds_count", float64(before+failures+after), "destination", topic)
	for typ, n := range failTypes {
		exp.set("published_messages_exceptions_total", float64(n), "destination", topic, "exception_type", typ)
	}
	exp.compare(t, snapshot(t, reg))

	if !t.Failed() {
		t.Logf("%s faults: %d published before, %d failed while down and %d right after recovery (status error, exception_type counts %v), %d after; "+
			"handler received %d = %d messages + %d redeliveries %v, all acked; in_process 0; /metrics answered %d scrapes, 0 failed",
			env.label, before, during, recoveryFailures, failTypes, after, in, len(published), redeliveries, redeliveredIDs, ok)
	}
}

// freePort asks the kernel for a free loopback port.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ackWatcher is a Watermill logger that notices the subscriber's report of
// a failed acknowledgement, the one point where the test can see it.
type ackWatcher struct {
	watermill.LoggerAdapter
	message string
	once    *sync.Once
	seen    chan struct{}
}

func (a ackWatcher) Error(msg string, err error, fields watermill.LogFields) {
	if msg == a.message {
		a.once.Do(func() { close(a.seen) })
	}
	a.LoggerAdapter.Error(msg, err, fields)
}

func (a ackWatcher) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return ackWatcher{LoggerAdapter: a.LoggerAdapter.With(fields), message: a.message, once: a.once, seen: a.seen}
}

// TestFaultsNATSJetStream stops an embedded JetStream server while a
// message is being handled, publishes while it is down, and restarts it
// on the same port and store.
func TestFaultsNATSJetStream(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	srv := startNATSServer(t, port, dir)
	url := srv.ClientURL()

	// No reconnect buffer: while the server is away, publishes and acks
	// fail at once instead of being queued and sent after the restart,
	// which would make "failed" publishes arrive after all.
	connOpts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond), nats.ReconnectBufSize(-1)}
	var pubConns []*nats.Conn
	seen := make(chan struct{})
	logger := ackWatcher{LoggerAdapter: watermillLogger(), message: "Cannot send ack", once: &sync.Once{}, seen: seen}
	js := wmnats.JetStreamConfig{
		// The stream is made by prepare, with file storage, so that it
		// survives the restart.
		AutoProvision: false,
		DurablePrefix: "wmprom_faults",
		SubscribeOptions: []nats.SubOpt{
			nats.AckExplicit(), nats.DeliverAll(),
			// One message in flight at a time, redelivered 300 ms after a
			// lost ack: the redelivery count is exact.
			nats.MaxAckPending(1), nats.AckWait(300 * time.Millisecond),
		},
	}
	env := &faultEnv{
		label:  "nats",
		source: "embedded nats-server " + server.VERSION + " with JetStream file store, restarted on " + url,
		stop: func(t *testing.T) {
			srv.Shutdown()
			srv.WaitForShutdown()
		},
		start: func(t *testing.T) { srv = startNATSServer(t, port, dir) },
		waitDown: func(t *testing.T) {
			eventually(t, drainTimeout, "publisher connections to notice the outage", func() bool {
				for _, nc := range pubConns {
					if nc.Status() != nats.RECONNECTING {
						return false
					}
				}
				return true
			})
		},
		waitUp: func(t *testing.T) {
			eventually(t, drainTimeout, "publisher connections to reconnect", func() bool {
				for _, nc := range pubConns {
					if !nc.IsConnected() {
						return false
					}
				}
				return true
			})
		},
		newPublisher: func(t *testing.T) message.Publisher {
			nc := natsConnect(t, url, connOpts...)
			pubConns = append(pubConns, nc)
			p, err := wmnats.NewPublisherWithNatsConn(nc, wmnats.PublisherPublishConfig{
				Marshaler:         &wmnats.NATSMarshaler{},
				SubjectCalculator: wmnats.DefaultSubjectCalculator,
				JetStream:         js,
			}, logger)
			if err != nil {
				t.Fatalf("jetstream publisher: %v", err)
			}
			t.Cleanup(func() { _ = p.Close() })
			return p
		},
		newSubscriber: func(t *testing.T) message.Subscriber {
			s, err := wmnats.NewSubscriberWithNatsConn(natsConnect(t, url, connOpts...), wmnats.SubscriberSubscriptionConfig{
				Unmarshaler:    &wmnats.NATSMarshaler{},
				CloseTimeout:   5 * time.Second,
				AckWaitTimeout: 30 * time.Second,
				JetStream:      js,
			}, logger)
			if err != nil {
				t.Fatalf("jetstream subscriber: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		prepare: func(t *testing.T, topic string) {
			nc := natsConnect(t, url)
			defer nc.Close()
			jsc, err := nc.JetStream()
			if err != nil {
				t.Fatalf("jetstream: %v", err)
			}
			if _, err := jsc.AddStream(&nats.StreamConfig{Name: topic, Subjects: []string{topic}, Storage: nats.FileStorage}); err != nil {
				t.Fatalf("add stream: %v", err)
			}
		},
		ackFailed:            seen,
		inFlightRedeliveries: 1,
		// No reconnect buffer: a publish while disconnected fails at once.
		publishErrorType: func(err error) (string, bool) {
			return "errors.errorString", errors.Is(err, nats.ErrReconnectBufExceeded)
		},
	}
	runFaults(t, env)
}

// redisServer is a redis-server process this test started and owns.
type redisServer struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *redisServer) start(t *testing.T) {
	t.Helper()
	// Append-only file synced on every write: the stream and its consumer
	// group survive the restart.
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no", "--protected-mode", "no")
	r.cmd.Stdout, r.cmd.Stderr = io.Discard, io.Discard
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", r.bin, err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	defer c.Close()
	eventually(t, 10*time.Second, "redis-server to answer PING", func() bool {
		return c.Ping(context.Background()).Err() == nil
	})
}

func (r *redisServer) stop(t *testing.T) {
	t.Helper()
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("stopping redis-server: %v", err)
	}
	_ = r.cmd.Wait()
	r.cmd = nil
}

// TestFaultsRedis stops a redis-server process of its own while a message
// is being handled, publishes while it is down, and restarts it on the
// same port and data directory.
func TestFaultsRedis(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if _, statErr := os.Stat("/usr/bin/redis-server"); statErr != nil {
			t.Skipf("no redis-server binary (install Debian's redis-server): %v", err)
		}
		bin = "/usr/bin/redis-server"
	}
	rs := &redisServer{bin: bin, dir: t.TempDir(), port: freePort(t)}
	rs.start(t)
	t.Cleanup(func() {
		if rs.cmd != nil && rs.cmd.Process != nil {
			_ = rs.cmd.Process.Kill()
			_ = rs.cmd.Wait()
		}
	})
	opts := &redis.Options{Addr: rs.addr(), MaxRetries: 1}
	env := &faultEnv{
		label:  "redis",
		source: "redis-server process (" + bin + ") with append-only file, restarted on " + rs.addr(),
		stop:   rs.stop,
		start:  rs.start,
		newPublisher: func(t *testing.T) message.Publisher {
			p, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: newRedisClient(opts)}, watermillLogger())
			if err != nil {
				t.Fatalf("redis publisher: %v", err)
			}
			t.Cleanup(func() { _ = p.Close() })
			return p
		},
		newSubscriber: func(t *testing.T) message.Subscriber {
			s, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
				Client:                        newRedisClient(opts),
				ConsumerGroup:                 "wmprom_faults",
				BlockTime:                     50 * time.Millisecond,
				DisableIndefiniteInitialBlock: true,
			}, watermillLogger())
			if err != nil {
				t.Fatalf("redis subscriber: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		prepare: func(t *testing.T, topic string) {},
		// watermill-redisstream retries XACK until it succeeds, so the
		// in-flight message is acked once Redis is back: no redelivery.
		inFlightRedeliveries: 0,
		// go-redis dials anew and is refused.
		publishErrorType: func(err error) (string, bool) {
			var op *net.OpError
			return "net.OpError", errors.As(err, &op) && errors.Is(err, syscall.ECONNREFUSED)
		},
	}
	runFaults(t, env)
}

// TestFaultsKafka closes an in-process kfake cluster while a message is
// being handled, publishes while it is down, and starts it again on the
// same port from its data directory.
func TestFaultsKafka(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	var cluster *kfake.Cluster
	start := func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir), kfake.SyncWrites(),
			kfake.ClusterID("wmprom-faults"), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1))
		if err != nil {
			t.Fatalf("kfake on port %d: %v", port, err)
		}
		cluster = c
	}
	start(t)
	t.Cleanup(func() {
		if cluster != nil {
			cluster.Close()
		}
	})
	brokers := cluster.ListenAddrs()
	env := newKafkaEnv(t, brokers, "")
	subCfg := kafkaSaramaSubscriberConfig()
	pubCfg := kafkaSaramaPublisherConfig()
	// Give up on a publish while the broker is away after a few quick
	// retries rather than sarama's default ten.
	pubCfg.Producer.Retry.Max = 3
	pubCfg.Producer.Retry.Backoff = 50 * time.Millisecond
	pubCfg.Metadata.Retry.Max = 1
	pubCfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	pubCfg.Net.DialTimeout = time.Second
	fenv := &faultEnv{
		label:  "kafka",
		source: "in-process kfake cluster with a data directory, restarted on 127.0.0.1:" + strconv.Itoa(port),
		stop: func(t *testing.T) {
			cluster.Close()
			cluster = nil
		},
		start: start,
		newPublisher: func(t *testing.T) message.Publisher {
			p, err := kafka.NewPublisher(kafka.PublisherConfig{
				Brokers:               brokers,
				Marshaler:             kafka.DefaultMarshaler{},
				OverwriteSaramaConfig: pubCfg,
			}, watermillLogger())
			if err != nil {
				t.Fatalf("kafka publisher: %v", err)
			}
			t.Cleanup(func() { _ = p.Close() })
			return p
		},
		newSubscriber: func(t *testing.T) message.Subscriber {
			s, err := kafka.NewSubscriber(kafka.SubscriberConfig{
				Brokers:               brokers,
				Unmarshaler:           kafka.DefaultMarshaler{},
				OverwriteSaramaConfig: subCfg,
				ConsumerGroup:         "wmprom_faults",
				NackResendSleep:       20 * time.Millisecond,
				ReconnectRetrySleep:   100 * time.Millisecond,
			}, watermillLogger())
			if err != nil {
				t.Fatalf("kafka subscriber: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		prepare: func(t *testing.T, topic string) {
			env.prepare(t, topic)
		},
		inFlightRedeliveries: -1,
		// While the broker is away sarama runs out of brokers (an error of
		// its own wrapper type); after three failures its per-topic
		// circuit breaker opens and fails publishes at once (a plain
		// errors.New) for 10 s, also after the broker is back.
		publishErrorType: func(err error) (string, bool) {
			switch {
			case errors.Is(err, sarama.ErrOutOfBrokers):
				return "sarama.sentinelError", true
			case errors.Is(err, breaker.ErrBreakerOpen):
				return "errors.errorString", true
			}
			return "", false
		},
	}
	runFaults(t, fenv)
}
