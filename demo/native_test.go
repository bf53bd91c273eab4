package main

import (
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wmprom/wmprom"
)

// TestNativeHistogramsSetting checks what -native-histograms and
// DEMO_NATIVE_HISTOGRAMS do to the size histogram the demo exposes:
// classic bounds only by default, native schema 3 as well, or native only.
func TestNativeHistogramsSetting(t *testing.T) {
	cases := []struct {
		env, flag      string
		schema         bool
		classicBuckets int
	}{
		{"", "", false, 11},
		{"alongside", "", true, 11},
		{"", "instead", true, 0},
		{"instead", "off", false, 11}, // the flag wins over the env var
	}
	for _, tc := range cases {
		t.Run(tc.env+"/"+tc.flag, func(t *testing.T) {
			t.Setenv("DEMO_NATIVE_HISTOGRAMS", tc.env)
			var args []string
			if tc.flag != "" {
				args = []string{"-native-histograms", tc.flag}
			}
			cfg, err := parseConfig(args)
			if err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			m, err := wmprom.New(reg, cfg.native...)
			if err != nil {
				t.Fatal(err)
			}
			h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
			_, _ = h(message.NewMessage("1", []byte("payload")))
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() != "faststream_received_messages_size_bytes" {
					continue
				}
				hist := mf.GetMetric()[0].GetHistogram()
				if (hist.Schema != nil) != tc.schema || len(hist.GetBucket()) != tc.classicBuckets {
					t.Errorf("schema %v and %d classic buckets, want native %v and %d", hist.Schema, len(hist.GetBucket()), tc.schema, tc.classicBuckets)
				}
				return
			}
			t.Fatal("no size histogram gathered")
		})
	}
	t.Setenv("DEMO_NATIVE_HISTOGRAMS", "")
	if _, err := parseConfig([]string{"-native-histograms", "both"}); err == nil || !strings.Contains(err.Error(), "-native-histograms must be off, alongside or instead") {
		t.Errorf("-native-histograms both: %v, want an error naming the choices", err)
	}
}
