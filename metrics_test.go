package wmprom

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// A scrape while messages are recorded exposes consistent histograms:
// cumulative buckets, none above the count.
func TestScrapeDuringTraffic(t *testing.T) {
	m, reg := newMetrics(t)
	s := m.receiveSeries("b", "h", m.customStatic)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20000 {
			s.size.Observe(float64(i % 3000))
			observe(s.duration, float64(i%20)/100, nil)
		}
	}()
	for scraping := true; scraping; {
		select {
		case <-done:
			scraping = false
		default:
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, mt := range mf.GetMetric() {
				h := mt.GetHistogram()
				if h == nil {
					continue
				}
				buckets := h.GetBucket()
				for i := 1; i < len(buckets); i++ {
					if buckets[i].GetCumulativeCount() < buckets[i-1].GetCumulativeCount() {
						t.Fatalf("%s: buckets not cumulative", mf.GetName())
					}
				}
				if n := len(buckets); n > 0 && buckets[n-1].GetCumulativeCount() > h.GetSampleCount() {
					t.Fatalf("%s: bucket %v above the count %d", mf.GetName(), buckets[n-1].GetCumulativeCount(), h.GetSampleCount())
				}
			}
		}
	}
}

// Two Metrics recording one label set (two routers with one app name)
// count in the same series.
func TestLabelSetSharedByTwoMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	var hs []message.HandlerFunc
	for range 2 {
		m, err := New(reg)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil }))
	}
	for i, h := range hs {
		for range i + 1 {
			_, _ = h(message.NewMessage("1", make([]byte, 100)))
		}
	}
	assertSamples(t, reg, []string{"app_name", "broker"}, `
		received_messages_total{handler="unknown"} 3
		received_messages_in_process{handler="unknown"} 0
		received_messages_size_bytes_sum{handler="unknown"} 300
		received_messages_size_bytes_count{handler="unknown"} 3
		`+processed("unknown", 3, 0, 0, 0, 0),
		"received_messages_total", "received_messages_in_process", "received_messages_size_bytes", "received_processed_messages_total")
}
