package benchmarks

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// TestMain stops the brokers the benchmarks started; plain `go test`
// starts none.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, stop := range stops {
		stop()
	}
	os.Exit(code)
}

// stops are the cleanups of processes and servers started once per test
// binary.
var stops []func()

// brokerEnv is one broker for the end-to-end benchmark.
type brokerEnv struct {
	// prepare creates what topics need before anyone subscribes, and
	// returns how to remove them.
	prepare func(tb testing.TB, topics ...string) (remove func())
	// newSubscriber and newPublisher return a new subscriber and
	// publisher, closed by the router that gets them.
	newSubscriber func(tb testing.TB) message.Subscriber
	newPublisher  func(tb testing.TB) message.Publisher
	// load puts n messages with payload on topic, as fast as the broker
	// takes them, and returns once the broker has them all.
	load func(tb testing.TB, topic string, n int, payload []byte)
}

// benchmarkBroker loads b.N messages on a topic, then times a router
// whose handler consumes them and publishes one message for each: one op
// is one message consumed, handled, published and acknowledged. The
// messages are loaded while the handler is held at a gate, so the time is
// the router's and the broker's alone, not the benchmark's own publishing.
func benchmarkBroker(b *testing.B, env *brokerEnv, in instrumentation) {
	inTopic, outTopic := uniqueTopic("in"), uniqueTopic("out")
	remove := env.prepare(b, inTopic, outTopic)
	defer remove()

	p := newPipeline(b.N, 0)
	gate := make(chan struct{})
	r := newRouter(b)
	in.add(b, r, prometheus.NewRegistry())
	r.AddHandler("produce", inTopic, env.newSubscriber(b), outTopic,
		&countingPublisher{next: env.newPublisher(b), p: p},
		func(msg *message.Message) ([]*message.Message, error) {
			<-gate
			return produce(msg)
		})
	rr := start(b, r)
	defer rr.stop(b)
	env.load(b, inTopic, b.N, make([]byte, payloadSize))

	b.ResetTimer()
	c := startClock()
	close(gate)
	p.wait(b)
	b.StopTimer()
	c.report(b)
}

// BenchmarkBrokerNATSJetStream runs the broker benchmark on watermill-nats
// in JetStream mode against an embedded nats-server with file storage:
// every consumed message is acknowledged with AckSync (watermill-nats'
// default) and every produced message waits for JetStream's publish ack.
func BenchmarkBrokerNATSJetStream(b *testing.B) {
	env := natsJetStreamEnv(b)
	for _, in := range routerInstrumentations {
		b.Run("instr="+in.name, func(b *testing.B) { benchmarkBroker(b, env, in) })
	}
}

// BenchmarkBrokerRedis runs the broker benchmark on watermill-redisstream
// with a consumer group, against a redis-server process of its own (or
// WMPROM_TEST_REDIS when no redis-server binary is installed).
func BenchmarkBrokerRedis(b *testing.B) {
	env := redisEnv(b)
	for _, in := range routerInstrumentations {
		b.Run("instr="+in.name, func(b *testing.B) { benchmarkBroker(b, env, in) })
	}
}

// --- NATS JetStream ------------------------------------------------------

var (
	natsOnce sync.Once
	natsURL  string
	natsErr  error
)

// embeddedNATS starts one nats-server with JetStream for the whole test
// binary, in the process: no network hop beyond loopback, no other user.
func embeddedNATS(tb testing.TB) string {
	tb.Helper()
	natsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wmprom-bench-nats-")
		if err != nil {
			natsErr = err
			return
		}
		s, err := server.NewServer(&server.Options{
			Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
		})
		if err != nil {
			natsErr = err
			return
		}
		s.Start()
		stops = append(stops, func() { s.Shutdown(); s.WaitForShutdown(); _ = os.RemoveAll(dir) })
		if !s.ReadyForConnections(10 * time.Second) {
			natsErr = fmt.Errorf("embedded nats-server not ready")
			return
		}
		natsURL = s.ClientURL()
	})
	if natsErr != nil {
		tb.Fatalf("embedded nats-server: %v", natsErr)
	}
	return natsURL
}

func natsJetStreamEnv(tb testing.TB) *brokerEnv {
	url := embeddedNATS(tb)
	connect := func(tb testing.TB) *nats.Conn {
		nc, err := nats.Connect(url)
		if err != nil {
			tb.Fatalf("nats connect: %v", err)
		}
		return nc
	}
	// Streams are created up front: with AutoProvision, watermill-nats
	// asks the server for the stream's info before every publish, a
	// round trip that would be charged to the handler.
	js := wmnats.JetStreamConfig{
		SubscribeOptions: []nats.SubOpt{nats.DeliverAll(), nats.AckExplicit()},
	}
	return &brokerEnv{
		prepare: func(tb testing.TB, topics ...string) func() {
			nc := connect(tb)
			jsc, err := nc.JetStream()
			if err != nil {
				tb.Fatal(err)
			}
			for _, topic := range topics {
				if _, err := jsc.AddStream(&nats.StreamConfig{Name: topic, Subjects: []string{topic}}); err != nil {
					tb.Fatalf("add stream %s: %v", topic, err)
				}
			}
			return func() {
				for _, topic := range topics {
					_ = jsc.DeleteStream(topic)
				}
				nc.Close()
			}
		},
		newSubscriber: func(tb testing.TB) message.Subscriber {
			s, err := wmnats.NewSubscriberWithNatsConn(connect(tb), wmnats.SubscriberSubscriptionConfig{
				Unmarshaler:    &wmnats.NATSMarshaler{},
				AckWaitTimeout: 30 * time.Second,
				CloseTimeout:   30 * time.Second,
				JetStream:      js,
			}, watermill.NopLogger{})
			if err != nil {
				tb.Fatal(err)
			}
			return s
		},
		newPublisher: func(tb testing.TB) message.Publisher {
			p, err := wmnats.NewPublisherWithNatsConn(connect(tb), wmnats.PublisherPublishConfig{
				Marshaler:         &wmnats.NATSMarshaler{},
				SubjectCalculator: wmnats.DefaultSubjectCalculator,
				JetStream:         js,
			}, watermill.NopLogger{})
			if err != nil {
				tb.Fatal(err)
			}
			return p
		},
		load: func(tb testing.TB, topic string, n int, payload []byte) {
			nc := connect(tb)
			defer nc.Close()
			jsc, err := nc.JetStream()
			if err != nil {
				tb.Fatal(err)
			}
			var marshaler wmnats.NATSMarshaler
			for i := range n {
				m, err := marshaler.Marshal(topic, message.NewMessage(watermill.NewUUID(), payload))
				if err != nil {
					tb.Fatal(err)
				}
				if _, err := jsc.PublishMsgAsync(m); err != nil {
					tb.Fatal(err)
				}
				if i%1000 == 999 || i == n-1 {
					select {
					case <-jsc.PublishAsyncComplete():
					case <-time.After(drainTimeout):
						tb.Fatal("JetStream did not acknowledge the loaded messages")
					}
				}
			}
		},
	}
}

// --- Redis streams -------------------------------------------------------

var (
	redisOnce sync.Once
	redisAddr string
	redisErr  error
)

// privateRedis starts one redis-server process for the whole test binary
// on a free port, without persistence, so that the benchmark neither
// disturbs nor is disturbed by the shared Redis other tests use. Without
// a redis-server binary it falls back to WMPROM_TEST_REDIS.
func privateRedis(tb testing.TB) string {
	tb.Helper()
	redisOnce.Do(func() {
		bin, err := exec.LookPath("redis-server")
		if err != nil {
			bin = "/usr/bin/redis-server"
			if _, statErr := os.Stat(bin); statErr != nil {
				if addr := os.Getenv("WMPROM_TEST_REDIS"); addr != "" {
					redisAddr = addr
					return
				}
				redisErr = fmt.Errorf("no redis-server binary and WMPROM_TEST_REDIS not set: %w", err)
				return
			}
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			redisErr = err
			return
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		dir, err := os.MkdirTemp("", "wmprom-bench-redis-")
		if err != nil {
			redisErr = err
			return
		}
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no")
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		// Should the benchmark die without reaching TestMain's cleanup (a
		// -timeout panic), the kernel stops redis-server with it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			redisErr = err
			return
		}
		stops = append(stops, func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
			_ = os.RemoveAll(dir)
		})
		redisAddr = "127.0.0.1:" + strconv.Itoa(port)
		c := redis.NewClient(&redis.Options{Addr: redisAddr})
		defer c.Close()
		deadline := time.Now().Add(10 * time.Second)
		for c.Ping(context.Background()).Err() != nil {
			if time.Now().After(deadline) {
				redisErr = fmt.Errorf("redis-server on %s does not answer PING", redisAddr)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	if redisErr != nil {
		tb.Skipf("no Redis to benchmark against: %v", redisErr)
	}
	return redisAddr
}

func redisEnv(tb testing.TB) *brokerEnv {
	addr := privateRedis(tb)
	client := func() *redis.Client { return redis.NewClient(&redis.Options{Addr: addr}) }
	return &brokerEnv{
		prepare: func(_ testing.TB, topics ...string) func() {
			return func() {
				c := client()
				defer c.Close()
				_ = c.Del(context.Background(), topics...).Err()
			}
		},
		newSubscriber: func(tb testing.TB) message.Subscriber {
			s, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
				Client:        client(),
				ConsumerGroup: "bench",
				// Close would otherwise wait for a first XREADGROUP that
				// blocks without end.
				DisableIndefiniteInitialBlock: true,
			}, watermill.NopLogger{})
			if err != nil {
				tb.Fatal(err)
			}
			return s
		},
		newPublisher: func(tb testing.TB) message.Publisher {
			p, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: client()}, watermill.NopLogger{})
			if err != nil {
				tb.Fatal(err)
			}
			return p
		},
		load: func(tb testing.TB, topic string, n int, payload []byte) {
			c := client()
			defer c.Close()
			var marshaler redisstream.DefaultMarshallerUnmarshaller
			ctx := context.Background()
			for from := 0; from < n; from += 1000 {
				pipe := c.Pipeline()
				for range min(1000, n-from) {
					values, err := marshaler.Marshal(topic, message.NewMessage(watermill.NewUUID(), payload))
					if err != nil {
						tb.Fatal(err)
					}
					pipe.XAdd(ctx, &redis.XAddArgs{Stream: topic, Values: values})
				}
				if _, err := pipe.Exec(ctx); err != nil {
					tb.Fatalf("loading %s: %v", topic, err)
				}
			}
		},
	}
}
