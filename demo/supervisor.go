package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/cenkalti/backoff/v5"

	"github.com/wmprom/wmprom"
)

// broker knows how to open a session with one kind of message broker.
type broker struct {
	// name is the broker's label value in the metrics and the prefix of its topics.
	name string
	// addr says where the broker lives, so that "cannot connect" log lines are actionable.
	addr    string
	connect func(ctx context.Context, logger watermill.LoggerAdapter) (*connection, error)
	// publishTime reads the broker's own timestamp of a consumed message, for
	// wmprom.WithPublishTime; nil where the Watermill subscriber drops it.
	publishTime func(*message.Message) (time.Time, bool)
}

// connection is one live session with a broker.
type connection struct {
	publisher message.Publisher
	// subscriber hands out the subscriber for a topic: Kafka wants one consumer
	// group per topic, the other brokers share one subscriber.
	subscriber func(topic string) (message.Subscriber, error)
	// close releases everything the session opened; it must tolerate things the
	// router already closed.
	close func() error
}

// sharedConnection is a connection whose topics all use one subscriber.
func sharedConnection(pub message.Publisher, sub message.Subscriber, close func() error) *connection {
	return &connection{
		publisher:  pub,
		subscriber: func(string) (message.Subscriber, error) { return sub, nil },
		close:      close,
	}
}

// brokerFactories maps a -brokers name to its broker; each lives in its own file.
var brokerFactories = map[string]func(config) broker{
	"gochannel": newGoChannelBroker,
	"kafka":     newKafkaBroker,
	"rabbit":    newRabbitBroker,
	"nats":      newNATSBroker,
	"redis":     newRedisBroker,
}

const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
	// A session that stayed healthy this long earns a fresh, short backoff.
	healthySession = time.Minute
)

// newRetryBackoff gives the waits before the retries: a backoff that starts
// at minBackoff and doubles up to maxBackoff, each wait a random time between
// half and all of it (0.5-1 s for the first retry). Jitter keeps several
// demos (or brokers) from hammering a recovering server in lockstep.
// backoff's randomisation is symmetric around its interval, so the interval
// is three quarters of that backoff, give or take a third: 0.75 s ± 0.25 s
// is 0.5-1 s.
func newRetryBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval:     minBackoff * 3 / 4,
		RandomizationFactor: 1.0 / 3,
		Multiplier:          2,
		MaxInterval:         maxBackoff * 3 / 4,
	}
}

// supervisor keeps one broker's pipeline running: it connects, runs the router
// and the traffic generator, and after any failure starts again with backoff.
// It never gives up and never takes the process down, because the other
// brokers and /metrics must keep going.
type supervisor struct {
	broker  broker
	metrics *wmprom.Metrics
	rate    float64
	slow    *slowPhase
	// stall is how long publishing may fail or hang before the session is
	// restarted. Brokers' clients reconnect by themselves when they can; this
	// catches the cases where they silently cannot.
	stall time.Duration
	log   *slog.Logger
	wmLog watermill.LoggerAdapter
}

func (s *supervisor) run(ctx context.Context) {
	retry := newRetryBackoff()
	for {
		started := time.Now()
		err := s.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > healthySession {
			retry.Reset()
		}
		wait := retry.NextBackOff()
		// err.Error(), not err: slog prints errors with %+v, which for pkg/errors
		// (used by the Watermill pub/subs) means a stack trace in the line.
		s.log.Warn("broker unavailable, retrying", "addr", s.broker.addr, "err", err.Error(), "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// session runs one connection until ctx ends (nil) or the broker fails (the reason).
func (s *supervisor) session(ctx context.Context) error {
	conn, err := s.broker.connect(ctx, s.wmLog)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		if err := conn.close(); err != nil {
			s.log.Debug("closing broker session", "err", err.Error())
		}
	}()

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, s.wmLog)
	if err != nil {
		return fmt.Errorf("create router: %w", err)
	}
	router.AddPlugin(s.metrics.Plugin)
	health := &pipelineHealth{publishDeadAfter: s.stall, consumeDeadAfter: s.stall * 3 / 2}
	p := &pipeline{prefix: s.broker.name, health: health, slow: s.slow}
	if err := p.addHandlers(router, conn); err != nil {
		return err
	}

	// The router's context is not the caller's: cancelling the subscriptions
	// at Ctrl-C would fail the messages in flight, while Close lets them
	// finish first.
	routerCtx, cancelRouter := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRouter()
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(routerCtx) }()

	select {
	case <-router.Running():
	case err := <-routerDone:
		return fmt.Errorf("start router: %w", err)
	case <-ctx.Done():
		return closeRouter(router, routerDone)
	}

	orders, err := s.metrics.DecoratePublisher(conn.publisher)
	if err != nil {
		_ = closeRouter(router, routerDone)
		return fmt.Errorf("decorate publisher: %w", err)
	}
	s.log.Info("connected; traffic flowing", "addr", s.broker.addr, "topics", p.topics())

	genCtx, stopGen := context.WithCancel(ctx)
	defer stopGen()
	genDone := make(chan struct{})
	go func() {
		defer close(genDone)
		p.generate(genCtx, orders, s.rate, s.log)
	}()

	var reason error
	watchdog := time.NewTicker(time.Second)
	defer watchdog.Stop()
	for reason == nil {
		select {
		case <-ctx.Done():
			reason = ctx.Err()
		case err := <-routerDone:
			// The router stops by itself only when every subscription has closed.
			routerDone <- err
			reason = errors.New("all subscriptions closed by the broker client")
		case <-watchdog.C:
			reason = health.check(time.Now())
		}
	}
	// Stop placing orders first, so nothing publishes into a closed router.
	stopGen()
	<-genDone
	if err := closeRouter(router, routerDone); err != nil {
		s.log.Warn("router did not close cleanly", "err", err.Error())
	} else if ctx.Err() != nil {
		s.log.Info("router closed")
	}
	if ctx.Err() != nil {
		return nil
	}
	return reason
}

// closeRouter closes the router and waits for Run to return, so that no
// handler is still running when the broker session is torn down.
func closeRouter(router *message.Router, routerDone chan error) error {
	closeErr := router.Close()
	runErr := <-routerDone
	return errors.Join(closeErr, runErr)
}

// redactURL keeps passwords out of log lines.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
