// The README's quick start: a Watermill router on the in-memory GoChannel,
// instrumented by wmprom, with its metrics on http://localhost:8080/metrics.
package main

import (
	"context"
	"log"
	"net/http"
	"os"
	"os/signal"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wmprom/wmprom"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	logger := watermill.NewStdLogger(false, false)
	pubSub := gochannel.NewGoChannel(gochannel.Config{}, logger) // or any Watermill pub/sub

	reg := prometheus.NewRegistry()
	metrics, err := wmprom.New(reg, wmprom.WithAppName("orders-service"))
	if err != nil {
		log.Fatal(err)
	}

	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		log.Fatal(err)
	}
	router.AddPlugin(metrics.Plugin) // every handler, and the publishers of their produced messages
	router.AddNoPublisherHandler("print-orders", "orders", pubSub, func(msg *message.Message) error {
		log.Printf("order %s: %s", msg.UUID, msg.Payload)
		return nil // acked; return wmprom.Reject(err), wmprom.Nack(err) or an error for the other statuses
	})

	// OpenMetrics carries exemplars (trace ids); Prometheus asks for it by itself.
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	go func() { log.Fatal(http.ListenAndServe(":8080", nil)) }()

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
