package benchmarks

import (
	"maps"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestGoChannelPipelineIsInstrumented checks that the pipeline the
// router benchmarks time really goes through the instrumentation under
// comparison, once per message: a benchmark of an instrumentation that
// silently records nothing would flatter it. It runs a few messages, so
// it stays quick.
func TestGoChannelPipelineIsInstrumented(t *testing.T) {
	const n = 25
	want := map[string]string{
		"none": "",
		"wmprom": `
# HELP faststream_published_messages_total Messages published, by status: success or error.
# TYPE faststream_published_messages_total counter
faststream_published_messages_total{app_name="faststream",broker="gochannel",destination="out",status="error"} 0
faststream_published_messages_total{app_name="faststream",broker="gochannel",destination="out",status="success"} 25
# HELP faststream_received_messages_total Messages received, counted before processing starts.
# TYPE faststream_received_messages_total counter
faststream_received_messages_total{app_name="faststream",broker="gochannel",handler="in"} 25
faststream_received_messages_total{app_name="faststream",broker="gochannel",handler="out"} 25
# HELP faststream_received_processed_messages_total Messages processed, by status: acked, nacked, rejected, skipped or error.
# TYPE faststream_received_processed_messages_total counter
faststream_received_processed_messages_total{app_name="faststream",broker="gochannel",handler="in",status="acked"} 25
faststream_received_processed_messages_total{app_name="faststream",broker="gochannel",handler="in",status="error"} 0
faststream_received_processed_messages_total{app_name="faststream",broker="gochannel",handler="in",status="nacked"} 0
faststream_received_processed_messages_total{app_name="faststream",broker="gochannel",handler="in",status="rejected"} 0
faststream_received_processed_messages_total{app_name="faststream",broker="gochannel",handler="in",status="skipped"} 0
faststream_received_processed_messages_total{app_name="faststream",broker="gochannel",handler="out",status="acked"} 25
faststream_received_processed_messages_total{app_name="faststream",broker="gochannel",handler="out",status="error"} 0
faststream_received_processed_messages_total{app_name="faststream",broker="gochannel",handler="out",status="nacked"} 0
faststream_received_processed_messages_total{app_name="faststream",broker="gochannel",handler="out",status="rejected"} 0
faststream_received_processed_messages_total{app_name="faststream",broker="gochannel",handler="out",status="skipped"} 0
`,
		// Watermill's subscriber decorator counts after the ack, in a
		// goroutine of its own, so only its synchronous handler histogram
		// can be asserted exactly.
		"watermill": "",
	}
	wantWatermill := map[string]uint64{
		`handler_name="consume",success="true"`: n,
		`handler_name="produce",success="true"`: n,
	}
	for _, in := range routerInstrumentations {
		t.Run(in.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			runGoChannel(t, in, n, true, reg)
			names := []string{"faststream_published_messages_total", "faststream_received_messages_total",
				"faststream_received_processed_messages_total"}
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want[in.name]), names...); err != nil {
				t.Error(err)
			}
			got := histogramCounts(t, reg, "handler_execution_time_seconds")
			if in.name != "watermill" {
				if len(got) != 0 {
					t.Errorf("handler_execution_time_seconds recorded without Watermill's metrics: %v", got)
				}
				return
			}
			if !maps.Equal(got, wantWatermill) {
				t.Errorf("handler_execution_time_seconds counts = %v, want %v", got, wantWatermill)
			}
		})
	}
}

// histogramCounts maps the label set of each series of a histogram
// family to its observation count.
func histogramCounts(t *testing.T, g prometheus.Gatherer, family string) map[string]uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() {
				pairs = append(pairs, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			sort.Strings(pairs)
			counts[strings.Join(pairs, ",")] = m.GetHistogram().GetSampleCount()
		}
	}
	return counts
}

// TestFloorRecords checks that the floor the GoChannel benchmark compares
// with does its recording: each message is received and processed by two
// handlers and published once.
func TestFloorRecords(t *testing.T) {
	const n = 25
	f := newFloorRecorder()
	in := instrumentation{name: "floor", add: func(_ testing.TB, r *message.Router, _ *prometheus.Registry) {
		r.AddPlugin(f.plugin)
	}}
	runGoChannel(t, in, n, true, prometheus.NewRegistry())
	// runGoChannel has closed the router, which waits for its handlers.
	if calls, done := f.total(); calls != 3*n || done != 3*n {
		t.Fatalf("floor counted %d calls and %d done, want %d each", calls, done, 3*n)
	}
}
