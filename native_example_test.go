package wmprom_test

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wmprom/wmprom"
)

// Native histograms alongside the classic ones: dashboard 22130 keeps its
// _bucket series, and a Prometheus 3 with scrape_native_histograms: true
// and always_scrape_classic_histograms: true stores both forms.
// InsteadOfClassic drops the classic buckets.
func ExampleWithNativeHistograms() {
	for _, form := range []wmprom.NativeHistograms{wmprom.AlongsideClassic, wmprom.InsteadOfClassic} {
		reg := prometheus.NewRegistry()
		m, err := wmprom.New(reg, wmprom.WithNativeHistograms(form))
		if err != nil {
			panic(err)
		}
		handler := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		_, _ = handler(message.NewMessage("1", make([]byte, 100)))

		mfs, err := reg.Gather()
		if err != nil {
			panic(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "faststream_received_messages_size_bytes" {
				h := mf.GetMetric()[0].GetHistogram()
				fmt.Printf("schema %d, %d classic buckets\n", h.GetSchema(), len(h.GetBucket()))
			}
		}
	}
	// Output:
	// schema 3, 11 classic buckets
	// schema 3, 0 classic buckets
}
