// Package promrules holds no code: its tests prove the Prometheus rule files
// in this directory with promtool, so `go test ./...` fails when a rule stops
// parsing, stops matching its unit tests, or an alert loses its coverage.
package promrules

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// promtoolVersion is one promtool the rules are proven with.
type promtoolVersion struct {
	name    string // subtest name: promtool-2 or promtool-3
	major   int
	bin     string
	env     string // the variable that overrides bin
	install string // how to get it, for the skip message
}

// promtools are Debian's promtool 2.42 (PATH, or WMPROM_PROMTOOL) and the
// Prometheus 3 promtool that .ci/install-prometheus3 builds
// (WMPROM_PROMTOOL3): the rules must load and pass their unit tests on both.
func promtools() []promtoolVersion {
	v2 := promtoolVersion{name: "promtool-2", major: 2, env: "WMPROM_PROMTOOL",
		install: "install Debian's prometheus package, which ships it, as .ci/run does"}
	if p, err := exec.LookPath("promtool"); err == nil {
		v2.bin = p
	} else {
		v2.bin = "/usr/bin/promtool"
	}
	v3 := promtoolVersion{name: "promtool-3", major: 3, bin: "/var/cache/wmprom/prom3/promtool", env: "WMPROM_PROMTOOL3",
		install: "run .ci/install-prometheus3, as .ci/run does"}
	out := []promtoolVersion{v2, v3}
	for i := range out {
		if p := os.Getenv(out[i].env); p != "" {
			out[i].bin = p
		}
	}
	return out
}

var versionLine = regexp.MustCompile(`(?m)^promtool, version (\S+)`)

// require skips t, loudly, when this promtool is absent, fails it when the
// binary is another major version, and logs its version.
func (v promtoolVersion) require(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(v.bin); err != nil {
		t.Skipf("SKIPPED, NOT PASSED: no promtool %d at %s (%s, or set %s): rule files NOT verified on Prometheus %d: %v", v.major, v.bin, v.install, v.env, v.major, err)
	}
	out, err := exec.Command(v.bin, "--version").CombinedOutput()
	m := versionLine.FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("%s --version: %v\n%s", v.bin, err, out)
	}
	version := string(m[1])
	if major, _, _ := strings.Cut(version, "."); major != strconv.Itoa(v.major) {
		t.Fatalf("%s is promtool %s, want %d.x", v.bin, version, v.major)
	}
	t.Logf("promtool %s (%s)", version, v.bin)
	return v.bin
}

// forEachPromtool runs proof once per promtool version, as subtests named
// for it.
func forEachPromtool(t *testing.T, proof func(t *testing.T, bin string)) {
	t.Helper()
	for _, v := range promtools() {
		t.Run(v.name, func(t *testing.T) { proof(t, v.require(t)) })
	}
}

// ruleFiles returns the files Prometheus loads: the demo stack mounts
// prometheus/*.rules.yml, so the test checks exactly that glob.
func ruleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no *.rules.yml files found next to rules_test.go")
	}
	return files
}

// testFiles returns the promtool unit-test files.
func testFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.rules.test.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no *.rules.test.yml files found next to rules_test.go")
	}
	return files
}

// run executes promtool and fails the test on a non-zero exit, always logging
// promtool's own report so a failure shows which rule or case broke.
func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("promtool %s failed: %v", args[0]+" "+args[1], err)
	}
	return string(out)
}

func TestPromtoolCheckRules(t *testing.T) {
	forEachPromtool(t, func(t *testing.T, bin string) {
		out := run(t, bin, append([]string{"check", "rules"}, ruleFiles(t)...)...)
		// promtool exits 0 for a file with zero rules; insist that each
		// file really contributed rules.
		if n := strings.Count(out, "SUCCESS:"); n != len(ruleFiles(t)) {
			t.Fatalf("promtool reported %d successful files, want %d", n, len(ruleFiles(t)))
		}
	})
}

func TestPromtoolTestRules(t *testing.T) {
	forEachPromtool(t, func(t *testing.T, bin string) {
		out := run(t, bin, append([]string{"test", "rules"}, testFiles(t)...)...)
		if strings.Contains(out, "FAILED") {
			t.Fatal("promtool reported FAILED despite exiting 0")
		}
	})
}

// ruleFile is the part of a Prometheus rule file the coverage check needs.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// unitTestFile is the part of a promtool unit-test file the coverage check needs.
type unitTestFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			AlertName string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromQLExprTest []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestEveryRuleIsUnitTested keeps the promtool tests honest as rules are
// added: promtool happily passes a test file that never mentions a rule.
// Every alert needs a case where it fires and one where it must not, and
// every recording rule needs its value checked.
func TestEveryRuleIsUnitTested(t *testing.T) {
	alerts := map[string]bool{}
	records := map[string]bool{}
	for _, f := range ruleFiles(t) {
		var rf ruleFile
		readYAML(t, f, &rf)
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					alerts[r.Alert] = true
				}
				if r.Record != "" {
					records[r.Record] = true
				}
			}
		}
	}
	if len(alerts) == 0 || len(records) == 0 {
		t.Fatalf("found %d alerts and %d recording rules; expected both", len(alerts), len(records))
	}

	firing := map[string]int{}
	silent := map[string]int{}
	checked := map[string]int{}
	loaded := map[string]bool{}
	for _, f := range testFiles(t) {
		var tf unitTestFile
		readYAML(t, f, &tf)
		for _, rf := range tf.RuleFiles {
			loaded[filepath.Join(filepath.Dir(f), rf)] = true
		}
		for _, tc := range tf.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					firing[a.AlertName]++
				} else {
					silent[a.AlertName]++
				}
			}
			for _, e := range tc.PromQLExprTest {
				checked[strings.TrimSpace(e.Expr)]++
			}
		}
	}

	for _, f := range ruleFiles(t) {
		if !loaded[f] {
			t.Errorf("%s is not listed in rule_files of any *.rules.test.yml", f)
		}
	}
	for _, a := range sortedKeys(alerts) {
		t.Logf("alert %s: %d firing case(s), %d not-firing case(s)", a, firing[a], silent[a])
		if firing[a] == 0 {
			t.Errorf("alert %s has no alert_rule_test where it fires", a)
		}
		if silent[a] == 0 {
			t.Errorf("alert %s has no alert_rule_test with exp_alerts: [] (not firing)", a)
		}
	}
	for _, r := range sortedKeys(records) {
		t.Logf("recording rule %s: %d promql_expr_test(s)", r, checked[r])
		if checked[r] == 0 {
			t.Errorf("recording rule %s has no promql_expr_test with expr: %s", r, r)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
