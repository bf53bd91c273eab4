package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// ageAlert is the alert on message age in the project's rules.
const ageAlert = "FastStreamMessagesGettingOld"

// backlogAge is the p99 message age, in seconds, that shows the slowed
// handler's backlog. A slow phase of 15 s, in which the handler takes 2.5
// times the gap between its messages, leaves messages waiting up to about
// 10 s; outside the phases they wait milliseconds to a second. It is an
// age bucket boundary, so the quantile reaches it only when more than 1 %
// of the messages in the window waited longer.
const backlogAge = 5

// backlogTimeout bounds the wait for the backlog: the first slow phase
// starts 30 s after the demo and the check begins after the dashboards'.
const backlogTimeout = 2 * time.Minute

// checkMessageAge shows message age end to end on a real Prometheus: the
// recorded p99 age that the alert reads has a series for every handler of
// the demo; the alert's expression, as written in the rule file, answers
// for each of them (compared with "bool", so that it answers below its
// threshold too: the demo's backlog stays well under a minute); and the
// slowed payments handler's backlog shows as a p99 age of backlogAge.
func checkMessageAge(t *testing.T, prom *promServer, brokers []string, slowBroker string) {
	t.Helper()
	expr := alertExpr(t, ageAlert)
	boolExpr, n := strings.Replace(expr, " > ", " > bool ", 1), strings.Count(expr, " > ")
	if n != 1 {
		t.Fatalf("alert %s: expression %q has %d comparisons, want one", ageAlert, expr, n)
	}
	recorded := strings.TrimSpace(strings.SplitN(expr, " > ", 2)[0])
	want := slices.Sorted(slices.Values(demoTopics(brokers)))

	start := time.Now()
	err := eventually(context.Background(), dataTimeout, time.Second, func() error {
		var problems []error
		for _, q := range []string{recorded, boolExpr} {
			samples, err := prom.query(q, time.Now())
			if err != nil {
				return err
			}
			var handlers []string
			for _, s := range samples {
				handlers = append(handlers, s.labels["handler"])
			}
			sort.Strings(handlers)
			if !slices.Equal(handlers, want) || finiteCount(samples) != len(want) {
				problems = append(problems, fmt.Errorf("%s: handlers %v (%s), want a finite value for each of %v", q, handlers, describe(samples), want))
			}
		}
		return errors.Join(problems...)
	})
	if err != nil {
		t.Fatalf("after %s: %v", time.Since(start).Round(time.Second), err)
	}
	t.Logf("%s and alert %s's expression %q (as %q) answer for all %d handlers", recorded, ageAlert, expr, boolExpr, len(want))

	if slowBroker == "" {
		return
	}
	slowed := slowBroker + "-payments"
	backlog := fmt.Sprintf(`histogram_quantile(0.99, sum by (le) (rate(faststream_received_messages_age_seconds_bucket{handler=%q}[10s])))`, slowed)
	var peak float64
	err = eventually(context.Background(), backlogTimeout, time.Second, func() error {
		samples, err := prom.query(backlog, time.Now())
		if err != nil {
			return err
		}
		if len(samples) != 1 {
			return fmt.Errorf("%s: %d series", backlog, len(samples))
		}
		peak = max(peak, samples[0].value)
		if samples[0].value < backlogAge {
			return fmt.Errorf("p99 age of %s is %.3fs (peak so far %.3fs), want a backlog of at least %ds", slowed, samples[0].value, peak, backlogAge)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the slow phase of %s built a backlog: p99 message age %.1fs after %s", slowed, peak, time.Since(start).Round(time.Second))
}

// alertRE finds an alert's expression in the rule file: a one-line expr
// right after the alert's name and its comments.
var alertRE = regexp.MustCompile(`(?m)^\s*- alert: (\S+)\n(?:\s*#.*\n)*\s*expr: (.+)$`)

// alertExpr returns the expression of the alert named name in rulesPath.
func alertExpr(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range alertRE.FindAllStringSubmatch(string(b), -1) {
		if m[1] == name {
			return strings.TrimSpace(m[2])
		}
	}
	t.Fatalf("%s has no alert %s with a one-line expr", rulesPath, name)
	return ""
}

// The e2e check reads the alert's expression from the rule file; this
// keeps that reading working without a Prometheus.
func TestAgeAlertExpr(t *testing.T) {
	if got, want := alertExpr(t, ageAlert), "handler:faststream_received_messages_age_seconds:p99_rate5m > 60"; got != want {
		t.Errorf("alert %s: expression %q, want %q", ageAlert, got, want)
	}
}
