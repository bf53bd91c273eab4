// The OTLP recipe of docs/otlp.md: a Watermill router on the in-memory
// GoChannel, instrumented by wmprom, whose metrics are pushed over OTLP as
// the OTEL_* variables say, with no /metrics endpoint.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wmprom/wmprom"
	"github.com/wmprom/wmprom/otlp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	logger := watermill.NewStdLogger(false, false)
	pubSub := gochannel.NewGoChannel(gochannel.Config{}, logger)

	// wmprom records into a registry, as for scraping.
	reg := prometheus.NewRegistry()
	metrics, err := wmprom.New(reg, wmprom.WithAppName("orders-service"))
	if err != nil {
		log.Fatal(err)
	}

	// The registry, pushed: OTEL_EXPORTER_OTLP_ENDPOINT says where,
	// OTEL_SERVICE_NAME overrides the job, OTEL_METRIC_EXPORT_INTERVAL
	// the period (15 s by default).
	provider, err := otlp.NewMeterProvider(ctx, reg, "orders-service")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { // the last push, with the final counts
		if err := provider.Shutdown(context.Background()); err != nil {
			log.Print(err)
		}
	}()

	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		log.Fatal(err)
	}
	router.AddPlugin(metrics.Plugin)
	router.AddConsumerHandler("print-orders", "orders", pubSub, func(msg *message.Message) error {
		log.Printf("order %s: %s", msg.UUID, msg.Payload)
		return nil
	})

	go func() { // some traffic, once the handler is subscribed
		<-router.Running()
		msg := message.NewMessage(watermill.NewUUID(), []byte(`{"order": 1}`))
		if err := pubSub.Publish("orders", msg); err != nil {
			log.Print(err)
		}
	}()

	if err := router.Run(ctx); err != nil { // until Ctrl-C
		log.Fatal(err)
	}
}
