package wmprom_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wmprom/wmprom"
)

// The Plugin instruments every handler of a router and the publishers of
// their produced messages. Serve the registry with OpenMetrics, the only
// format that carries exemplars.
func ExampleMetrics_Plugin() {
	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg, wmprom.WithAppName("orders-service"))
	if err != nil {
		panic(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		panic(err)
	}
	router.AddPlugin(m.Plugin)

	pubSub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	router.AddHandler("orders", "orders", pubSub, "payments", pubSub, func(msg *message.Message) ([]*message.Message, error) {
		if len(msg.Payload) == 0 {
			return nil, wmprom.Reject(errors.New("empty order"))
		}
		return []*message.Message{message.NewMessage(watermill.NewUUID(), msg.Payload)}, nil
	})

	// In a service: http.Handle("/metrics", metrics) and http.ListenAndServe.
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})

	run(router)
	defer router.Close()
	publish(pubSub, "orders", `{"id":1}`, ``)
	waitFor(reg, "faststream_received_processed_messages_total", 2)

	printMetrics(metrics,
		"faststream_received_messages_total",
		"faststream_received_processed_messages_total",
		"faststream_received_processed_messages_duration_seconds_count",
		"faststream_published_messages_total")
	// Output:
	// faststream_received_messages_total{app_name="orders-service",broker="gochannel",handler="orders"} 2.0
	// faststream_received_processed_messages_total{app_name="orders-service",broker="gochannel",handler="orders",status="acked"} 1.0
	// faststream_received_processed_messages_total{app_name="orders-service",broker="gochannel",handler="orders",status="error"} 0.0
	// faststream_received_processed_messages_total{app_name="orders-service",broker="gochannel",handler="orders",status="nacked"} 0.0
	// faststream_received_processed_messages_total{app_name="orders-service",broker="gochannel",handler="orders",status="rejected"} 1.0
	// faststream_received_processed_messages_total{app_name="orders-service",broker="gochannel",handler="orders",status="skipped"} 0.0
	// faststream_received_processed_messages_duration_seconds_count{app_name="orders-service",broker="gochannel",handler="orders"} 2
	// faststream_published_messages_total{app_name="orders-service",broker="gochannel",destination="payments",status="error"} 0.0
	// faststream_published_messages_total{app_name="orders-service",broker="gochannel",destination="payments",status="success"} 1.0
}

// Added first, Middleware is the outermost middleware: a delivery is one
// message, however many attempts the Retry inside it makes. Decorate the
// handlers' publishers too, so that a failed publish of produced messages
// counts as an error.
func ExampleMetrics_Middleware() {
	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg)
	if err != nil {
		panic(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		panic(err)
	}
	retry := middleware.Retry{MaxRetries: 3}
	router.AddMiddleware(m.Middleware, retry.Middleware)
	router.AddPublisherDecorators(m.DecoratePublisher)

	pubSub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	attempts := 0
	router.AddHandler("orders", "orders", pubSub, "payments", pubSub, func(msg *message.Message) ([]*message.Message, error) {
		if attempts++; attempts == 1 {
			return nil, errors.New("stock service busy") // retried, and then fine
		}
		return []*message.Message{message.NewMessage(watermill.NewUUID(), msg.Payload)}, nil
	})

	run(router)
	defer router.Close()
	publish(pubSub, "orders", `{"id":1}`)
	waitFor(reg, "faststream_received_processed_messages_total", 1)

	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
	printMetrics(metrics,
		"faststream_received_messages_total",
		"faststream_received_processed_messages_total",
		"faststream_received_processed_messages_exceptions_total",
		"faststream_published_messages_total")
	// Output:
	// faststream_received_messages_total{app_name="faststream",broker="gochannel",handler="orders"} 1.0
	// faststream_received_processed_messages_total{app_name="faststream",broker="gochannel",handler="orders",status="acked"} 1.0
	// faststream_received_processed_messages_total{app_name="faststream",broker="gochannel",handler="orders",status="error"} 0.0
	// faststream_received_processed_messages_total{app_name="faststream",broker="gochannel",handler="orders",status="nacked"} 0.0
	// faststream_received_processed_messages_total{app_name="faststream",broker="gochannel",handler="orders",status="rejected"} 0.0
	// faststream_received_processed_messages_total{app_name="faststream",broker="gochannel",handler="orders",status="skipped"} 0.0
	// faststream_published_messages_total{app_name="faststream",broker="gochannel",destination="payments",status="error"} 0.0
	// faststream_published_messages_total{app_name="faststream",broker="gochannel",destination="payments",status="success"} 1.0
}

// A publisher used outside any router. WithDestinations creates the
// series of the topics it publishes to at zero.
func ExampleMetrics_DecoratePublisher() {
	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg, wmprom.WithAppName("checkout"), wmprom.WithDestinations("payments", "refunds"))
	if err != nil {
		panic(err)
	}
	pubSub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	publisher, err := m.DecoratePublisher(pubSub)
	if err != nil {
		panic(err)
	}
	if err := publisher.Publish("payments", message.NewMessage(watermill.NewUUID(), []byte(`{"amount":42}`))); err != nil {
		panic(err)
	}

	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
	printMetrics(metrics, "faststream_published_messages_total", "faststream_published_messages_duration_seconds_count")
	// Output:
	// faststream_published_messages_total{app_name="checkout",broker="gochannel",destination="payments",status="error"} 0.0
	// faststream_published_messages_total{app_name="checkout",broker="gochannel",destination="payments",status="success"} 1.0
	// faststream_published_messages_total{app_name="checkout",broker="gochannel",destination="refunds",status="error"} 0.0
	// faststream_published_messages_total{app_name="checkout",broker="gochannel",destination="refunds",status="success"} 0.0
	// faststream_published_messages_duration_seconds_count{app_name="checkout",broker="gochannel",destination="payments"} 1
	// faststream_published_messages_duration_seconds_count{app_name="checkout",broker="gochannel",destination="refunds"} 0
}

// Two handlers subscribed to one topic (fan-out) get a handler label each
// when it names the router's handler instead of the topic.
func ExampleWithHandlerLabel() {
	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg, wmprom.WithHandlerLabel(wmprom.HandlerName))
	if err != nil {
		panic(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		panic(err)
	}
	router.AddPlugin(m.Plugin)

	pubSub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	router.AddHandler("audit", "orders", pubSub, "audit-log", pubSub, func(msg *message.Message) ([]*message.Message, error) {
		return nil, nil
	})
	router.AddHandler("billing", "orders", pubSub, "invoices", pubSub, func(msg *message.Message) ([]*message.Message, error) {
		return nil, wmprom.Skip(errors.New("a free order"))
	})

	run(router)
	defer router.Close()
	publish(pubSub, "orders", `{"id":1,"total":0}`)
	waitFor(reg, "faststream_received_processed_messages_total", 2)

	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
	printMetrics(metrics, "faststream_received_messages_total")
	// Output:
	// faststream_received_messages_total{app_name="faststream",broker="gochannel",handler="audit"} 1.0
	// faststream_received_messages_total{app_name="faststream",broker="gochannel",handler="billing"} 1.0
}

// The causes of Reject, Skip and Ack reach a logger, as the router, told
// nil, does not log them. Without WithLogger, the Plugin uses the router's
// logger.
func ExampleWithLogger() {
	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg, wmprom.WithLogger(printLogger{}))
	if err != nil {
		panic(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		panic(err)
	}
	router.AddPlugin(m.Plugin)

	pubSub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	router.AddHandler("orders", "orders", pubSub, "payments", pubSub, func(msg *message.Message) ([]*message.Message, error) {
		switch string(msg.Payload) {
		case "":
			return nil, wmprom.Reject(errors.New("empty order"))
		case "test":
			return nil, wmprom.Skip(errors.New("a test order"))
		}
		return nil, nil
	})

	run(router)
	defer router.Close()
	for i, payload := range []string{"", "test", `{"id":1}`} {
		publish(pubSub, "orders", payload) // one at a time, to print the entries in order
		waitFor(reg, "faststream_received_processed_messages_total", float64(i+1))
	}
	// Output:
	// ERROR Handler rejected the message: acknowledged, not delivered again: wmprom: reject: empty order (handler_name=orders topic=orders)
	// INFO Handler skipped the message: a test order (handler_name=orders topic=orders)
}

// printLogger prints the entries it gets without their message UUIDs,
// which change from run to run.
type printLogger struct{ watermill.NopLogger }

func (printLogger) Error(msg string, err error, fields watermill.LogFields) {
	fmt.Printf("ERROR %s: %v (handler_name=%v topic=%v)\n", msg, err, fields["handler_name"], fields["topic"])
}

func (printLogger) Info(msg string, fields watermill.LogFields) {
	fmt.Printf("INFO %s: %v (handler_name=%v topic=%v)\n", msg, fields["cause"], fields["handler_name"], fields["topic"])
}

// run runs router until it is closed, and returns once it is running.
func run(router *message.Router) {
	go func() {
		if err := router.Run(context.Background()); err != nil {
			panic(err)
		}
	}()
	<-router.Running()
}

func publish(pub message.Publisher, topic string, payloads ...string) {
	for _, p := range payloads {
		if err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(p))); err != nil {
			panic(err)
		}
	}
}

// waitFor polls reg until the series of the counter family name add up
// to want: the middleware counts a message after its handler returned.
func waitFor(reg prometheus.Gatherer, name string, want float64) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		mfs, err := reg.Gather()
		if err != nil {
			panic(err)
		}
		got := 0.0
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, m := range mf.GetMetric() {
					got += m.GetCounter().GetValue()
				}
			}
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			panic(fmt.Sprintf("%s is %v, want %v", name, got, want))
		}
		time.Sleep(time.Millisecond)
	}
}

// printMetrics scrapes metrics as Prometheus does, asking for
// OpenMetrics, and prints the samples of the named series in the
// exposition's order. Durations vary from run to run: print histograms'
// _count, not their buckets or _sum.
func printMetrics(metrics http.Handler, names ...string) {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	rec := httptest.NewRecorder()
	metrics.ServeHTTP(rec, req)
	var lines []string
	scanner := bufio.NewScanner(rec.Body)
	for scanner.Scan() {
		lines = append(lines, scanner.Text())
	}
	for _, name := range names {
		for _, line := range lines {
			if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
				fmt.Println(line)
			}
		}
	}
}

// A service that publishes to two brokers declares each broker's topics
// for that broker only: a publisher gets series at zero just for the
// topics it can publish to.
func ExampleWithBrokerDestinations() {
	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg,
		wmprom.WithBrokerDestinations("kafka", "payments"),
		wmprom.WithBrokerDestinations("gochannel", "audit"))
	if err != nil {
		panic(err)
	}
	pub, err := m.DecoratePublisher(gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{}))
	if err != nil {
		panic(err)
	}
	_ = pub

	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "faststream_published_messages_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			fmt.Println(strings.Join(labels, " "), s.GetCounter().GetValue())
		}
	}
	// Output:
	// app_name=faststream broker=gochannel destination=audit status=error 0
	// app_name=faststream broker=gochannel destination=audit status=success 0
}
