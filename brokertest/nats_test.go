package brokertest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	wmjetstream "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/testcontainers/testcontainers-go"
	tcnats "github.com/testcontainers/testcontainers-go/modules/nats"
)

// natsImage is the image testcontainers runs (with JetStream) when a
// Docker engine is reachable and WMPROM_TEST_NATS is not set.
const natsImage = "nats:2.10"

// natsURL finds a NATS server with JetStream: WMPROM_TEST_NATS, a
// testcontainers NATS, or an embedded nats-server.
func natsURL(t *testing.T) (url, source string) {
	t.Helper()
	if v := os.Getenv("WMPROM_TEST_NATS"); v != "" {
		return v, "WMPROM_TEST_NATS=" + v
	}
	var passed sourceLog
	passed.pass("WMPROM_TEST_NATS not set")
	if u, ok := fromContainer(t, &passed, natsImage, func(ctx context.Context) (testcontainers.Container, string, error) {
		c, err := tcnats.Run(ctx, natsImage)
		if err != nil {
			return c, "", err
		}
		u, err := c.ConnectionString(ctx)
		return c, u, err
	}); ok {
		return u, "testcontainers " + natsImage + " (with -js) at " + u
	}
	s := startNATSServer(t, -1, t.TempDir())
	return s.ClientURL(), "embedded nats-server " + server.VERSION + " with JetStream at " + s.ClientURL() + " (" + passed.String() + ")"
}

// startNATSServer starts an embedded NATS server with JetStream storing
// in dir, on port (-1 picks a free one). The caller may shut it down
// earlier than the cleanup does.
func startNATSServer(t *testing.T, port int, dir string) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("nats-server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func natsConnect(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("nats connect %s: %v", url, err)
	}
	return nc
}

// newNATSCoreEnv is watermill-nats with JetStream disabled: plain NATS
// subjects, no acknowledgements.
func newNATSCoreEnv(t *testing.T, url, source string) *brokerEnv {
	logger := watermillLogger()
	var mu sync.Mutex
	var subConns []*nats.Conn
	return &brokerEnv{
		source:      source,
		label:       "nats",
		redelivers:  false,
		nackMeaning: "is a no-op on core NATS (no acknowledgements): the message is not delivered again; Reject likewise just drops it",
		newPublisher: func(t *testing.T) message.Publisher {
			p, err := wmnats.NewPublisherWithNatsConn(natsConnect(t, url), wmnats.PublisherPublishConfig{
				Marshaler:         &wmnats.NATSMarshaler{},
				SubjectCalculator: wmnats.DefaultSubjectCalculator,
				JetStream:         wmnats.JetStreamConfig{Disabled: true},
			}, logger)
			if err != nil {
				t.Fatalf("nats publisher: %v", err)
			}
			t.Cleanup(func() { _ = p.Close() })
			return p
		},
		newSubscriber: func(t *testing.T, group string) message.Subscriber {
			nc := natsConnect(t, url)
			mu.Lock()
			subConns = append(subConns, nc)
			mu.Unlock()
			s, err := wmnats.NewSubscriberWithNatsConn(nc, wmnats.SubscriberSubscriptionConfig{
				Unmarshaler:    &wmnats.NATSMarshaler{},
				CloseTimeout:   5 * time.Second,
				AckWaitTimeout: 5 * time.Second,
				JetStream:      wmnats.JetStreamConfig{Disabled: true},
			}, logger)
			if err != nil {
				t.Fatalf("nats subscriber: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		// Core NATS delivers only to subscriptions the server already
		// knows: the SUB protocol lines are buffered in the client until
		// flushed, so messages published right after Router.Running()
		// would be dropped.
		afterRunning: func(t *testing.T) {
			mu.Lock()
			defer mu.Unlock()
			for _, nc := range subConns {
				if err := nc.FlushTimeout(10 * time.Second); err != nil {
					t.Fatalf("flush subscriber connection: %v", err)
				}
			}
		},
		closedPublishErrorType: "errors.errorString",
	}
}

// jetStreamConfig auto-provisions one stream per topic (named after it)
// and redelivers quickly when an ack does not come.
func jetStreamConfig() wmnats.JetStreamConfig {
	return wmnats.JetStreamConfig{
		AutoProvision:    true,
		SubscribeOptions: []nats.SubOpt{nats.AckWait(5 * time.Second), nats.DeliverAll(), nats.AckExplicit()},
	}
}

// newNATSJetStreamEnv is watermill-nats in JetStream mode: acknowledged
// consumers on streams named after the topics.
func newNATSJetStreamEnv(t *testing.T, url, source string) *brokerEnv {
	logger := watermillLogger()
	return &brokerEnv{
		source:      source,
		label:       "nats",
		redelivers:  true,
		nackMeaning: "on JetStream sends a NAK: the server redelivers the message at once (or after NakDelay); Reject acks it, so it is not redelivered",
		newPublisher: func(t *testing.T) message.Publisher {
			p, err := wmnats.NewPublisherWithNatsConn(natsConnect(t, url), wmnats.PublisherPublishConfig{
				Marshaler:         &wmnats.NATSMarshaler{},
				SubjectCalculator: wmnats.DefaultSubjectCalculator,
				JetStream:         jetStreamConfig(),
			}, logger)
			if err != nil {
				t.Fatalf("jetstream publisher: %v", err)
			}
			t.Cleanup(func() { _ = p.Close() })
			return p
		},
		newSubscriber: func(t *testing.T, group string) message.Subscriber {
			s, err := wmnats.NewSubscriberWithNatsConn(natsConnect(t, url), wmnats.SubscriberSubscriptionConfig{
				Unmarshaler:    &wmnats.NATSMarshaler{},
				CloseTimeout:   5 * time.Second,
				AckWaitTimeout: 5 * time.Second,
				JetStream:      jetStreamConfig(),
			}, logger)
			if err != nil {
				t.Fatalf("jetstream subscriber: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		prepare: func(t *testing.T, topics ...string) {
			deleteStreamsLater(t, url, topics)
		},
		closedPublishErrorType: "errors.errorString",
	}
}

// deleteStreamsLater removes the streams named after topics when the test
// ends: they would outlive it on a shared server.
func deleteStreamsLater(t *testing.T, url string, topics []string) {
	t.Cleanup(func() {
		nc, err := nats.Connect(url)
		if err != nil {
			return
		}
		defer nc.Close()
		js, err := nc.JetStream()
		if err != nil {
			return
		}
		for _, topic := range topics {
			_ = js.DeleteStream(topic)
		}
	})
}

// newNATSJetStreamPkgEnv is watermill-nats' newer pkg/jetstream (pull
// consumers on the nats.go jetstream API); the library labels it nats too.
func newNATSJetStreamPkgEnv(t *testing.T, url, source string) *brokerEnv {
	logger := watermillLogger()
	return &brokerEnv{
		source:      source,
		label:       "nats",
		redelivers:  true,
		nackMeaning: "in watermill-nats pkg/jetstream sends a NAK: the server redelivers the message (after NakDelay if set); Reject acks it",
		newPublisher: func(t *testing.T) message.Publisher {
			p, err := wmjetstream.NewPublisher(wmjetstream.PublisherConfig{Conn: natsConnect(t, url), Logger: logger})
			if err != nil {
				t.Fatalf("jetstream publisher: %v", err)
			}
			t.Cleanup(func() { _ = p.Close() })
			return p
		},
		newSubscriber: func(t *testing.T, group string) message.Subscriber {
			s, err := wmjetstream.NewSubscriber(wmjetstream.SubscriberConfig{
				Conn:           natsConnect(t, url),
				Logger:         logger,
				AckWaitTimeout: 5 * time.Second,
			})
			if err != nil {
				t.Fatalf("jetstream subscriber: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		// pkg/jetstream's consumers need the stream to exist: make one per
		// topic, as its SubscribeInitialize would.
		prepare: func(t *testing.T, topics ...string) {
			deleteStreamsLater(t, url, topics)
			nc := natsConnect(t, url)
			defer nc.Close()
			js, err := nc.JetStream()
			if err != nil {
				t.Fatalf("jetstream: %v", err)
			}
			for _, topic := range topics {
				if _, err := js.AddStream(&nats.StreamConfig{Name: topic, Subjects: []string{topic}}); err != nil {
					t.Fatalf("add stream %s: %v", topic, err)
				}
			}
		},
		closedPublishErrorType: "errors.errorString",
	}
}

// TestNATS runs the shared scenario on watermill-nats against one server:
// core NATS and JetStream through pkg/nats, and pkg/jetstream.
func TestNATS(t *testing.T) {
	url, source := natsURL(t)
	t.Run("core", func(t *testing.T) { runScenario(t, newNATSCoreEnv(t, url, source)) })
	t.Run("jetstream", func(t *testing.T) { runScenario(t, newNATSJetStreamEnv(t, url, source)) })
	t.Run("jetstream_pkg", func(t *testing.T) { runScenario(t, newNATSJetStreamPkgEnv(t, url, source)) })
}
