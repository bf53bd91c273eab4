package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// defaultDashboardPath is where the project keeps FastStream's dashboard
// 22130, outside the repository (it is not ours to redistribute).
const defaultDashboardPath = "../../shared/reference/grafana-dashboard-22130.json"

// panelQuery is one PromQL expression of one panel.
type panelQuery struct {
	panel    string // the panel's title
	ref      string // the target's refId
	expr     string // with the dashboard's variables substituted
	exemplar bool   // Grafana also asks for the exemplars of its series
}

// varQuery is one template variable's label_values query.
type varQuery struct {
	variable string
	raw      string // as written in the dashboard
	label    string
	selector string // match[] selector, "" for none
}

type dashboard struct {
	name string // for messages: "22130" or the file's uid
	// statusShares: the dashboard has 22130's three status-share panels,
	// which must add up to 1 per handler.
	statusShares bool

	UID        string      `json:"uid"`
	Version    int         `json:"version"` // the grafana.com revision of a downloaded dashboard
	Panels     []dashPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Definition string          `json:"definition"`
			Query      json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type dashPanel struct {
	Title   string      `json:"title"`
	Type    string      `json:"type"`
	Panels  []dashPanel `json:"panels"`
	Targets []struct {
		Expr     string `json:"expr"`
		RefID    string `json:"refId"`
		Hide     bool   `json:"hide"`
		Exemplar bool   `json:"exemplar"`
	} `json:"targets"`
}

// loadDashboard reads dashboard 22130 from WMPROM_DASHBOARD_22130 or the
// shared reference directory, skipping loudly when neither exists.
func loadDashboard(t *testing.T) *dashboard {
	t.Helper()
	path := os.Getenv("WMPROM_DASHBOARD_22130")
	if path == "" {
		path = defaultDashboardPath
	}
	if _, err := os.Stat(path); os.IsNotExist(err) {
		t.Skipf("SKIPPED, NOT PASSED: dashboard 22130 JSON not found at %s (set WMPROM_DASHBOARD_22130 to the file downloaded from grafana.com)", path)
	}
	d := parseDashboard(t, path)
	d.name, d.statusShares = "22130", true
	return d
}

// ownDashboardPath is the project's own dashboard, which the compose stack
// provisions next to 22130.
const ownDashboardPath = "../grafana/dashboards/wmprom.json"

// loadOwnDashboard reads the project's dashboard; it is in the repository,
// so its absence is a failure, not a skip.
func loadOwnDashboard(t *testing.T) *dashboard {
	t.Helper()
	d := parseDashboard(t, ownDashboardPath)
	d.name = d.UID
	return d
}

func parseDashboard(t *testing.T, path string) *dashboard {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return &d
}

// grafanaVars are the values Grafana uses with a dashboard's defaults:
// the prefix box left at faststream, every multi-value variable at All
// (whose allValue is .+), and the time range of the test window.
func grafanaVars(rangeDur string) map[string]string {
	return map[string]string{
		"metrics_prefix": "faststream",
		"app_name":       ".+",
		"broker":         ".+", // our dashboard's; 22130 has no broker variable
		"handler":        ".+",
		"destination":    ".+",
		"datasource":     "prometheus",
		"__range":        rangeDur,
	}
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[a-z]+)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)\]\]`)

// substitute replaces $var, ${var} and [[var]] as Grafana does, and fails on
// a variable it does not know, so a new dashboard revision cannot slip an
// unevaluated query through.
func substitute(expr string, vars map[string]string) (string, error) {
	var missing []string
	out := varRef.ReplaceAllStringFunc(expr, func(m string) string {
		sub := varRef.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown dashboard variables %v in %q", missing, expr)
	}
	return out, nil
}

// panelQueries returns every visible target of every panel, rows included.
func (d *dashboard) panelQueries(vars map[string]string) ([]panelQuery, error) {
	var out []panelQuery
	var walk func([]dashPanel) error
	walk = func(panels []dashPanel) error {
		for _, p := range panels {
			if err := walk(p.Panels); err != nil {
				return err
			}
			for _, tg := range p.Targets {
				if tg.Hide || strings.TrimSpace(tg.Expr) == "" {
					continue
				}
				expr, err := substitute(tg.Expr, vars)
				if err != nil {
					return fmt.Errorf("panel %q: %w", p.Title, err)
				}
				out = append(out, panelQuery{panel: p.Title, ref: tg.RefID, expr: expr, exemplar: tg.Exemplar})
			}
		}
		return nil
	}
	err := walk(d.Panels)
	return out, err
}

var labelValuesCall = regexp.MustCompile(`^\s*label_values\(\s*(?:(.*)\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// variableQueries returns the label_values queries of the query variables:
// both the query Grafana runs and the definition it shows, when they differ.
func (d *dashboard) variableQueries(vars map[string]string) ([]varQuery, error) {
	var out []varQuery
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var texts []string
		var q struct {
			Query string `json:"query"`
		}
		var s string
		switch {
		case json.Unmarshal(v.Query, &s) == nil:
			texts = append(texts, s)
		case json.Unmarshal(v.Query, &q) == nil:
			texts = append(texts, q.Query)
		default:
			return nil, fmt.Errorf("variable %s: unreadable query %s", v.Name, v.Query)
		}
		if v.Definition != "" && v.Definition != texts[0] {
			texts = append(texts, v.Definition)
		}
		for _, text := range texts {
			expanded, err := substitute(text, vars)
			if err != nil {
				return nil, fmt.Errorf("variable %s: %w", v.Name, err)
			}
			m := labelValuesCall.FindStringSubmatch(expanded)
			if m == nil {
				return nil, fmt.Errorf("variable %s: %q is not a label_values query", v.Name, text)
			}
			out = append(out, varQuery{variable: v.Name, raw: text, label: m[2], selector: strings.TrimSpace(m[1])})
		}
	}
	return out, nil
}

func TestDashboardQueriesParse(t *testing.T) {
	d := loadDashboard(t)
	vars := grafanaVars("1m")
	panels, err := d.panelQueries(vars)
	if err != nil {
		t.Fatal(err)
	}
	// Dashboard 22130 as published: 19 panels with one query each.
	if len(panels) != 19 {
		t.Fatalf("found %d panel queries, want the 19 of dashboard 22130", len(panels))
	}
	for _, q := range panels {
		if strings.Contains(q.expr, "$") {
			t.Errorf("panel %q keeps a variable after substitution: %s", q.panel, q.expr)
		}
	}
	checkVariableSelectors(t, d, map[string]string{
		"app_name app_name":       `[][{__name__=~"faststream_published_messages_total|faststream_received_messages_total"}]`,
		"destination destination": `[{__name__=~"faststream_published_messages_total", app_name=~".+"}]`,
		"handler handler":         `[{__name__=~"faststream_received_messages_total", app_name=~".+"}]`,
	})
}

// TestOwnDashboardQueriesParse pins down what the end-to-end test evaluates
// of grafana/dashboards/wmprom.json, so that a panel whose query the test
// could not read cannot drop out of the check unnoticed.
func TestOwnDashboardQueriesParse(t *testing.T) {
	d := loadOwnDashboard(t)
	panels, err := d.panelQueries(grafanaVars("1m"))
	if err != nil {
		t.Fatal(err)
	}
	if len(panels) != 25 {
		t.Fatalf("found %d panel queries, want the 25 of %s", len(panels), ownDashboardPath)
	}
	var withExemplars []string
	for _, q := range panels {
		if strings.Contains(q.expr, "$") {
			t.Errorf("panel %q keeps a variable after substitution: %s", q.panel, q.expr)
		}
		if q.exemplar {
			withExemplars = append(withExemplars, q.panel)
			if !strings.Contains(q.expr, "_duration_seconds_bucket") {
				t.Errorf("panel %q asks for exemplars of %s; wmprom puts them on the duration histograms", q.panel, q.expr)
			}
		}
	}
	// Both latency-by-broker panels and the p99 of the two per-handler and
	// per-destination latency panels show exemplar dots.
	if len(withExemplars) != 4 {
		t.Errorf("queries with exemplars on: %q, want 4", withExemplars)
	}
	checkVariableSelectors(t, d, map[string]string{
		"app_name app_name":       `[{__name__=~"faststream_received_messages_total"}]`,
		"broker broker":           `[{__name__=~"faststream_received_messages_total", app_name=~".+"}]`,
		"handler handler":         `[{__name__=~"faststream_received_messages_total", app_name=~".+", broker=~".+"}]`,
		"destination destination": `[{__name__=~"faststream_published_messages_total", app_name=~".+", broker=~".+"}]`,
	})
}

// checkVariableSelectors compares the label_values queries of d's
// variables, as "variable label" -> "[selector]" for each query text, with
// want.
func checkVariableSelectors(t *testing.T, d *dashboard, want map[string]string) {
	t.Helper()
	vq, err := d.variableQueries(grafanaVars("1m"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, q := range vq {
		got[q.variable+" "+q.label] += "[" + q.selector + "]"
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("variable queries:\n got %v\nwant %v", got, want)
	}
}
