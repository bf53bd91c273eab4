package wmprom

import (
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// NativeHistograms says how the native form of the three histograms (the
// two durations and the received size) stands next to the classic one;
// pass it to WithNativeHistograms.
type NativeHistograms int

const (
	// AlongsideClassic exposes every histogram both ways: the native
	// buckets and FastStream's classic _bucket series. Dashboard 22130 and
	// any query of _bucket keep working, and a Prometheus that scrapes
	// native histograms (scrape_native_histograms: true) gets the precise
	// form too, if it also sets always_scrape_classic_histograms: true to
	// keep the classic one.
	AlongsideClassic NativeHistograms = iota + 1
	// InsteadOfClassic exposes native buckets only: the _bucket series
	// are gone (in the text formats only the +Inf bucket, _sum and _count
	// remain), so dashboard 22130's three quantile panels (process and
	// publish duration, received size) go blank. For fleets whose
	// dashboards query the native series, such as
	// grafana/dashboards/wmprom.json.
	InsteadOfClassic
)

// Native histogram defaults. A bucket factor of 1.1 gives schema 3: eight
// buckets per power of two, each bound 9% above the one before, so a
// quantile lands within 9% of the true value wherever it falls, where
// FastStream's classic duration buckets are up to 2.5x apart (0.1 to 0.25
// s) and its size buckets 4x. Durations from 1 ms to 10 s span about 13
// powers of two, about 106 buckets, and the default size range, 16 B to
// 16 MiB, 20 powers of two, exactly 160: so 160 holds a handler's whole
// range at full resolution, and past it client_golang halves the
// resolution rather than grow, which bounds a series to 160 buckets
// whatever the traffic. An hour before a full histogram may be reset
// instead keeps the resets, which rate() must bridge, rare.
const (
	defaultNativeBucketFactor   = 1.1
	defaultNativeMaxBuckets     = 160
	defaultNativeMinResetPeriod = time.Hour
)

// nativeConfig is the native histogram part of config; zero form: off.
type nativeConfig struct {
	form       NativeHistograms
	factor     float64
	maxBuckets uint32
	minReset   time.Duration
}

func defaultNativeConfig() nativeConfig {
	return nativeConfig{
		factor:     defaultNativeBucketFactor,
		maxBuckets: defaultNativeMaxBuckets,
		minReset:   defaultNativeMinResetPeriod,
	}
}

// WithNativeHistograms makes the two duration histograms and the received
// size histogram native histograms as well, AlongsideClassic or
// InsteadOfClassic, with a bucket factor of 1.1, at most 160 buckets per
// series and at least an hour between resets (see
// WithNativeHistogramBuckets). Off by default: FastStream has only classic
// histograms, and Prometheus stores native ones only when its scrape
// config says scrape_native_histograms: true, over protobuf. Like the
// buckets, the form belongs to the families: Metrics sharing a registry
// share them, and the first one registered decides.
func WithNativeHistograms(form NativeHistograms) Option {
	return func(c *config) { c.native.form = form }
}

// WithNativeHistogramBuckets tunes the native histograms that
// WithNativeHistograms turns on: factor bounds the ratio of one bucket's
// upper bound to the one before (above 1; client_golang picks the
// coarsest standard schema within it), maxBuckets bounds the buckets of
// one series (at least 1), and minReset is the least time before a series
// that reaches maxBuckets is reset rather than made coarser.
func WithNativeHistogramBuckets(factor float64, maxBuckets uint32, minReset time.Duration) Option {
	return func(c *config) {
		c.native.factor, c.native.maxBuckets, c.native.minReset = factor, maxBuckets, minReset
	}
}

// validate reports what is wrong with the native histogram options.
func (n nativeConfig) validate() []string {
	var problems []string
	switch n.form {
	case 0, AlongsideClassic, InsteadOfClassic:
	default:
		problems = append(problems, fmt.Sprintf("native histograms %d is neither AlongsideClassic nor InsteadOfClassic", n.form))
	}
	if !(n.factor > 1) || math.IsInf(n.factor, 1) {
		problems = append(problems, fmt.Sprintf("native histogram bucket factor %v, want a finite number above 1", n.factor))
	}
	if n.maxBuckets < 1 {
		problems = append(problems, "native histogram max buckets is 0, want at least 1")
	}
	if n.minReset < 0 {
		problems = append(problems, fmt.Sprintf("native histogram min reset duration %v is negative", n.minReset))
	}
	return problems
}

// histogramOpts returns opts shaped by the native histogram options:
// unchanged when they are off, with the native fields set when on, and
// without classic buckets for InsteadOfClassic.
func (n nativeConfig) histogramOpts(opts prometheus.HistogramOpts) prometheus.HistogramOpts {
	if n.form == 0 {
		return opts
	}
	opts.NativeHistogramBucketFactor = n.factor
	opts.NativeHistogramMaxBucketNumber = n.maxBuckets
	opts.NativeHistogramMinResetDuration = n.minReset
	if n.form == InsteadOfClassic {
		// With a factor above 1, no buckets means no classic buckets
		// (not client_golang's defaults).
		opts.Buckets = nil
	}
	return opts
}
