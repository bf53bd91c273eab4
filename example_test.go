package wmprom_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wmprom/wmprom"
)

// The plugin instruments every handler of a router and the publishers of
// their produced messages.
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
			return nil, wmprom.Reject(fmt.Errorf("empty order %s", msg.UUID))
		}
		return []*message.Message{message.NewMessage(msg.UUID, msg.Payload)}, nil
	})
	_ = router // router.Run(ctx) starts it.
}

// Adding the middleware yourself decides its place in the chain: added
// first, it is outermost and sees one delivery as one message whatever
// the middlewares inside it retry. Decorate the handlers' publishers too,
// so that a failed publish of produced messages counts as an error.
func ExampleMetrics_Middleware() {
	m, err := wmprom.New(prometheus.NewRegistry())
	if err != nil {
		panic(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		panic(err)
	}
	router.AddMiddleware(m.Middleware)
	router.AddPublisherDecorators(m.DecoratePublisher)
}

// A publisher used outside any router, and the /metrics endpoint.
func ExampleMetrics_DecoratePublisher() {
	reg := prometheus.NewRegistry()
	m, err := wmprom.New(reg, wmprom.WithAppName("checkout"))
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

	server := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer server.Close()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, server.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "faststream_published_messages_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// faststream_published_messages_total{app_name="checkout",broker="gochannel",destination="payments",status="error"} 0
	// faststream_published_messages_total{app_name="checkout",broker="gochannel",destination="payments",status="success"} 1
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
