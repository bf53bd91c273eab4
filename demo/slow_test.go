package main

import (
	"strings"
	"testing"
	"time"
)

func TestSlowPhaseIsTheEndOfEachPeriod(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	s := newSlowPhase(start, 2*time.Minute, 30*time.Second, 10)
	for _, tc := range []struct {
		after time.Duration
		slow  bool
	}{
		{0, false},
		{89*time.Second + 999*time.Millisecond, false},
		{90 * time.Second, true},
		{119 * time.Second, true},
		{120 * time.Second, false},
		{210 * time.Second, true},
	} {
		if got := s.active(start.Add(tc.after)); got != tc.slow {
			t.Errorf("%v after start: slow %v, want %v", tc.after, got, tc.slow)
		}
	}
	// 2.5 gaps between orders at 10 orders per second.
	if s.work != 250*time.Millisecond {
		t.Errorf("slow work %v, want 250ms", s.work)
	}
	var none *slowPhase
	if none.active(start) || newSlowPhase(start, time.Minute, 0, 10) != nil {
		t.Error("no slow phase must never be slow")
	}
}

func TestSlowFlags(t *testing.T) {
	t.Setenv("DEMO_BROKERS", "")
	cfg, err := parseConfig([]string{"-brokers", "redis,kafka"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.slowBroker != "redis" || cfg.slowEvery != 2*time.Minute || cfg.slowFor != 30*time.Second {
		t.Errorf("defaults: broker %q every %v for %v, want redis 2m 30s", cfg.slowBroker, cfg.slowEvery, cfg.slowFor)
	}
	if slowFor(cfg, "kafka", time.Now()) != nil || slowFor(cfg, "redis", time.Now()) == nil {
		t.Error("only the slow broker's pipeline gets a slow phase")
	}
	for brokers, want := range map[string]string{"kafka,rabbit,nats": "rabbit", "kafka": "kafka", "nats,kafka": "nats"} {
		cfg, err := parseConfig([]string{"-brokers", brokers})
		if err != nil || cfg.slowBroker != want {
			t.Errorf("-brokers %s: slow broker %q (%v), want %q", brokers, cfg.slowBroker, err, want)
		}
	}
	cfg, err = parseConfig([]string{"-brokers", "redis,kafka", "-slow-broker", "none"})
	if err != nil || slowFor(cfg, "redis", time.Now()) != nil {
		t.Errorf("-slow-broker none: %v, slow phase %v", err, slowFor(cfg, "redis", time.Now()))
	}
	for args, want := range map[string]string{
		"-slow-broker rabbit":             `-slow-broker "rabbit" is not one of -brokers`,
		"-slow-for 2m -slow-every 1m":     "must be shorter than -slow-every",
		"-slow-for -1s":                   "-slow-for must not be negative",
		"-slow-every 0s":                  "-slow-every must be positive",
		"-slow-for 0s -slow-broker kafka": "",
	} {
		_, err := parseConfig(append([]string{"-brokers", "redis,kafka"}, strings.Fields(args)...))
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("parseConfig(%s) = %v, want %q", args, err, want)
		}
	}
}
