// Command demo runs a small Watermill service whose message traffic fills every
// panel of Grafana dashboard 22130 (FastStream Metrics) through wmprom.
//
// With no flags it needs nothing installed: it runs on Watermill's in-memory
// GoChannel and serves Prometheus metrics on http://localhost:8000/metrics.
// Real brokers are selected with -brokers; each one gets its own pipeline,
// its own broker label and its own reconnect loop, so one broker being down
// never stops the others or the /metrics endpoint.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/wmprom/wmprom"
	"github.com/wmprom/wmprom/otlp"
)

// config is everything the demo can be told, from flags or, for containers, env vars.
type config struct {
	addr        string
	brokers     []string
	appName     string
	rate        float64
	kafkaAddrs  []string
	amqpURL     string
	natsURL     string
	redisAddr   string
	verbose     bool
	healthcheck bool
	stall       time.Duration
	native      []wmprom.Option // from -native-histograms
	// slowBroker's payments stage slows down for slowFor at the end of
	// every slowEvery, to show a backlog building on the message age panels.
	slowBroker string
	slowEvery  time.Duration
	slowFor    time.Duration
}

func main() {
	cfg, err := parseConfig(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(2)
	}
	if cfg.healthcheck {
		os.Exit(healthcheck(cfg.addr))
	}
	if err := run(cfg); err != nil {
		slog.Error("demo failed", "err", err.Error())
		os.Exit(1)
	}
}

// envOr lets container setups configure the demo without rewriting its command line.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func parseConfig(args []string) (config, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var cfg config
	var brokers, kafkaAddrs, native string
	fs.StringVar(&cfg.addr, "addr", envOr("DEMO_ADDR", ":8000"), "listen address of the /metrics endpoint (env DEMO_ADDR)")
	fs.StringVar(&brokers, "brokers", envOr("DEMO_BROKERS", "gochannel"),
		"comma-separated brokers to run a pipeline on: gochannel,kafka,rabbit,nats,redis (env DEMO_BROKERS)")
	fs.StringVar(&cfg.appName, "app-name", envOr("DEMO_APP_NAME", "wmprom-demo"), "app_name label value (env DEMO_APP_NAME)")
	fs.Float64Var(&cfg.rate, "rate", 10, "orders published per second on each broker")
	fs.StringVar(&kafkaAddrs, "kafka-brokers", envOr("KAFKA_BROKERS", "localhost:9092"), "comma-separated Kafka bootstrap addresses (env KAFKA_BROKERS)")
	fs.StringVar(&cfg.amqpURL, "amqp-url", envOr("AMQP_URL", "amqp://guest:guest@localhost:5672/"), "RabbitMQ URL (env AMQP_URL)")
	fs.StringVar(&cfg.natsURL, "nats-url", envOr("NATS_URL", "nats://localhost:4222"), "NATS URL, JetStream enabled (env NATS_URL)")
	fs.StringVar(&cfg.redisAddr, "redis-addr", envOr("REDIS_ADDR", "localhost:6379"), "Redis address (env REDIS_ADDR)")
	fs.DurationVar(&cfg.stall, "stall-timeout", 20*time.Second,
		"restart a broker session whose publishes fail or hang this long (consumption gets 1.5 times as long)")
	fs.StringVar(&native, "native-histograms", envOr("DEMO_NATIVE_HISTOGRAMS", "off"),
		"native histograms as well as classic: off (what dashboard 22130 needs), alongside (native and classic) or instead (native only) (env DEMO_NATIVE_HISTOGRAMS)")
	fs.StringVar(&cfg.slowBroker, "slow-broker", "",
		"broker whose payments handler slows down periodically, building a backlog (default: the first of -brokers other than kafka, whose partitions are consumed in parallel; none: no slow phases)")
	fs.DurationVar(&cfg.slowEvery, "slow-every", 2*time.Minute, "period of the slow phases")
	fs.DurationVar(&cfg.slowFor, "slow-for", 30*time.Second, "length of each slow phase, at the end of each period (0: no slow phases)")
	fs.BoolVar(&cfg.verbose, "v", false, "also log Watermill's own messages, including every simulated failure")
	fs.BoolVar(&cfg.healthcheck, "healthcheck", false, "probe the /metrics endpoint at -addr and exit 0 if it answers (for container health checks)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if cfg.rate <= 0 {
		return cfg, fmt.Errorf("-rate must be positive, got %v", cfg.rate)
	}
	if cfg.stall <= 0 {
		return cfg, fmt.Errorf("-stall-timeout must be positive, got %v", cfg.stall)
	}
	switch native {
	case "off":
	case "alongside":
		cfg.native = []wmprom.Option{wmprom.WithNativeHistograms(wmprom.AlongsideClassic)}
	case "instead":
		cfg.native = []wmprom.Option{wmprom.WithNativeHistograms(wmprom.InsteadOfClassic)}
	default:
		return cfg, fmt.Errorf("-native-histograms must be off, alongside or instead, got %q", native)
	}
	cfg.kafkaAddrs = splitList(kafkaAddrs)
	seen := map[string]bool{}
	for _, name := range splitList(brokers) {
		if _, ok := brokerFactories[name]; !ok {
			return cfg, fmt.Errorf("unknown broker %q in -brokers (known: gochannel,kafka,rabbit,nats,redis)", name)
		}
		if !seen[name] {
			seen[name] = true
			cfg.brokers = append(cfg.brokers, name)
		}
	}
	if len(cfg.brokers) == 0 {
		return cfg, errors.New("-brokers is empty")
	}
	return cfg, checkSlow(&cfg)
}

// checkSlow validates the slow phase flags and picks the default broker.
func checkSlow(cfg *config) error {
	switch {
	case cfg.slowFor < 0:
		return fmt.Errorf("-slow-for must not be negative, got %v", cfg.slowFor)
	case cfg.slowEvery <= 0:
		return fmt.Errorf("-slow-every must be positive, got %v", cfg.slowEvery)
	case cfg.slowFor >= cfg.slowEvery:
		return fmt.Errorf("-slow-for %v must be shorter than -slow-every %v, or the handler never catches up", cfg.slowFor, cfg.slowEvery)
	}
	switch cfg.slowBroker {
	case "":
		cfg.slowBroker = defaultSlowBroker(cfg.brokers)
	case "none":
		cfg.slowFor = 0
	default:
		if !slices.Contains(cfg.brokers, cfg.slowBroker) {
			return fmt.Errorf("-slow-broker %q is not one of -brokers %v", cfg.slowBroker, cfg.brokers)
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func run(cfg config) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(logger)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// One Metrics per broker, all on one registry (they share the families).
	// The broker is named rather than detected because the demo's flaky
	// publisher wrapper hides the broker's publisher type. The pipeline's
	// topics are declared so that their publish series exist at zero before
	// the first order, and increase() counts even that one. Message age is
	// on: from Kafka's own timestamps, elsewhere from the publisher's stamp.
	metrics := map[string]*wmprom.Metrics{}
	for _, name := range cfg.brokers {
		topics := (&pipeline{prefix: name}).topics()
		opts := []wmprom.Option{
			wmprom.WithAppName(cfg.appName), wmprom.WithBroker(name), wmprom.WithDestinations(topics...),
			wmprom.WithMessageAge(true),
		}
		if pt := brokerFactories[name](cfg).publishTime; pt != nil {
			opts = append(opts, wmprom.WithPublishTime(pt))
		}
		opts = append(opts, cfg.native...)
		m, err := wmprom.New(reg, opts...)
		if err != nil {
			return fmt.Errorf("create metrics for %s: %w", name, err)
		}
		metrics[name] = m
	}

	// Listening before anything else makes the printed URL true even for -addr :0.
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	mux := http.NewServeMux()
	// OpenMetrics is what carries exemplars (trace ids) to Prometheus; it is
	// served only to scrapers that ask for it, so curl still gets the
	// classic text format.
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "err", err.Error())
		}
	}()
	fmt.Printf("wmprom demo: metrics at %s (brokers: %s); press Ctrl-C to stop\n",
		metricsURL(ln.Addr().String()), strings.Join(cfg.brokers, ","))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// With an OTLP endpoint in the environment, the same registry is pushed
	// as well (docs/otlp.md), to that endpoint, by the standard OTEL_*
	// variables; /metrics stays as it is.
	provider, err := startOTLP(ctx, reg, cfg.appName, logger)
	if err != nil {
		return err
	}

	wmLogger := newWatermillLogger(logger, cfg.verbose)
	started := time.Now()
	if cfg.slowFor > 0 {
		logger.Info("slow phases: a payments handler falls behind, then catches up",
			"broker", cfg.slowBroker, "every", cfg.slowEvery, "for", cfg.slowFor)
	}
	var wg sync.WaitGroup
	for _, name := range cfg.brokers {
		s := &supervisor{
			broker:  brokerFactories[name](cfg),
			metrics: metrics[name],
			rate:    cfg.rate,
			slow:    slowFor(cfg, name, started),
			stall:   cfg.stall,
			log:     logger.With("broker", name),
			wmLog:   wmLogger,
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx)
		}()
	}

	<-ctx.Done()
	// A second Ctrl-C now kills the process, for when a broker hangs the shutdown.
	stop()
	logger.Info("shutting down: closing routers")
	wg.Wait()

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("stop metrics server: %w", err)
	}
	if provider != nil {
		// The last push, with the final counts.
		if err := provider.Shutdown(shutdownCtx); err != nil {
			return fmt.Errorf("stop OTLP push: %w", err)
		}
	}
	logger.Info("demo stopped cleanly")
	return nil
}

// metricsURL turns a listen address into something a user can paste into a browser.
func metricsURL(listenAddr string) string {
	host, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return "http://" + listenAddr + "/metrics"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/metrics"
}

// defaultSlowBroker is the first of brokers that delivers a subscription's
// messages one at a time. watermill-kafka consumes a topic's partitions in
// parallel (kfake creates 10 by default), so a slower handler there keeps
// up and builds no backlog to show; Kafka is picked only when alone.
func defaultSlowBroker(brokers []string) string {
	for _, b := range brokers {
		if b != "kafka" {
			return b
		}
	}
	return brokers[0]
}

// slowFor returns the slow phase of broker's pipeline, nil for a broker that
// keeps its pace.
func slowFor(cfg config, broker string, start time.Time) *slowPhase {
	if broker != cfg.slowBroker {
		return nil
	}
	return newSlowPhase(start, cfg.slowEvery, cfg.slowFor, cfg.rate)
}

// otlpEndpointVars are the variables that turn the demo's OTLP push on:
// the endpoint of every signal, or of metrics alone.
var otlpEndpointVars = []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"}

// startOTLP starts pushing reg over OTLP when one of otlpEndpointVars is
// set, with appName as the default service.name (OTEL_SERVICE_NAME
// overrides it), and returns the MeterProvider to shut down at exit; nil
// when no endpoint is set.
func startOTLP(ctx context.Context, reg *prometheus.Registry, appName string, logger *slog.Logger) (*sdkmetric.MeterProvider, error) {
	endpoint := ""
	for _, name := range otlpEndpointVars {
		if v := os.Getenv(name); v != "" {
			endpoint = v
			break
		}
	}
	if endpoint == "" {
		return nil, nil
	}
	protocol, err := otlp.Protocol()
	if err != nil {
		return nil, err
	}
	provider, err := otlp.NewMeterProvider(ctx, reg, appName)
	if err != nil {
		return nil, fmt.Errorf("OTLP push: %w", err)
	}
	fmt.Printf("wmprom demo: pushing OTLP (%s) to %s as well\n", protocol, endpoint)
	logger.Info("pushing metrics over OTLP", "endpoint", endpoint, "protocol", protocol)
	return provider, nil
}
