package pipelinetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// dashboardPath is the Grafana dashboard shipped in deploy/, relative to
// this package.
const dashboardPath = "../../../deploy/grafana/autotriage.json"

// TestMetrics: every series the Grafana dashboard queries is exposed by a
// stage, both with the three stage binaries and with `autotriage up` (all
// stages in one process). The series the dashboard selects by label value
// (stage="classifier", consumer="writer", result!="ack", ...) exist from the
// start, before the first ticket, so a panel reads 0 rather than "no data";
// after a small flow every other series exists too, and the throughput
// counters count what the stages handled.
func TestMetrics(t *testing.T) {
	sels := dashboardSelectors(t)

	t.Run("stages", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.startAll()
		stages := []*proc{e.stages["fetcher"], e.stages["classifier"], e.stages["writer"]}

		var pinned []selector
		for _, s := range sels {
			if len(s.matchers) > 0 {
				pinned = append(pinned, s)
			}
		}
		eventually(t, time.Minute, "the dashboard's labelled series before the first ticket", func() (bool, string) {
			missing := missingSeries(pinned, scrapeAll(t, stages...))
			return len(missing) == 0, "no stage exposes:\n" + strings.Join(missing, "\n")
		})

		ids := e.arrive(20, 10)
		e.outcomes().waitAll(t, ids, 2*time.Minute)
		e.waitIdle(t, time.Minute)
		tickets, preds := e.streamCount(pipeline.StreamTickets), e.streamCount(pipeline.StreamPredictions)
		// The counters are read after the stages went idle; the lag gauges
		// refresh every 10s, so they are only required to exist.
		var fams families
		eventually(t, 30*time.Second, "every dashboard series after a flow", func() (bool, string) {
			fams = scrapeAll(t, stages...)
			missing := missingSeries(sels, fams)
			return len(missing) == 0, "no stage exposes:\n" + strings.Join(missing, "\n")
		})
		// "Tickets in / min" and "Throughput per stage" count every message.
		for _, c := range []struct {
			stage string
			want  uint64
		}{{"classifier", tickets}, {"writer", preds}} {
			got := fams.sum("autotriage_messages_handled_total", map[string]string{"stage": c.stage, "result": "ack"})
			if got < float64(c.want) {
				t.Errorf("autotriage_messages_handled_total{stage=%q,result=\"ack\"} = %v, want at least %d (the messages of its stream)", c.stage, got, c.want)
			}
			t.Logf("%s: %v messages acknowledged, %d in its stream", c.stage, got, c.want)
		}
		t.Logf("%d dashboard selectors (%d with label matchers) served by the three stages (%d families)", len(sels), len(pinned), len(fams))
	})

	t.Run("up", func(t *testing.T) {
		requireE2E(t)
		debug := freeAddr(t)
		vars := map[string]string{
			"AUTOTRIAGE_DATA_DIR":         t.TempDir(),
			"AUTOTRIAGE_NATS_ADDR":        freeAddr(t),
			"AUTOTRIAGE_SIM_ADDR":         freeAddr(t),
			"AUTOTRIAGE_WEBHOOK_ADDR":     freeAddr(t),
			"AUTOTRIAGE_DEBUG_ADDR":       debug,
			"AUTOTRIAGE_SIM_HISTORY":      "400",
			"AUTOTRIAGE_SIM_NEW":          "10",
			"AUTOTRIAGE_SIM_ARRIVAL_RATE": "2",
			"AUTOTRIAGE_SUMMARY_EVERY":    "5s",
			"AUTOTRIAGE_SHUTDOWN_TIMEOUT": "5s",
		}
		p := startProc(t, "autotriage-up", filepath.Join(binDir, "autotriage"), vars, t.TempDir(), "up")
		p.waitReady(t, 2*time.Minute)
		// Training the starter model comes before the stages start.
		var fams families
		eventually(t, 4*time.Minute, "outcomes from `autotriage up`", func() (bool, string) {
			if !p.alive() {
				t.Fatalf("autotriage up exited: %v\n%s", p.exitErr, tail(p.logPath, 20))
			}
			fams = scrapeAll(t, p)
			outcomes := fams.sum("autotriage_writer_outcomes_total", nil)
			return outcomes >= 5, fmt.Sprintf("%v outcomes", outcomes)
		})
		eventually(t, 30*time.Second, "every dashboard series from `autotriage up`", func() (bool, string) {
			fams = scrapeAll(t, p)
			missing := missingSeries(sels, fams)
			return len(missing) == 0, "not exposed:\n" + strings.Join(missing, "\n")
		})
		got := fams.sum("autotriage_messages_handled_total", map[string]string{"stage": "classifier", "result": "ack"})
		if got < 5 {
			t.Errorf("autotriage up: autotriage_messages_handled_total{stage=\"classifier\",result=\"ack\"} = %v after 5 outcomes", got)
		}
		t.Logf("autotriage up: %d dashboard selectors served by one process (%d families); %v outcomes, %v tickets handled by the classifier",
			len(sels), len(fams), fams.sum("autotriage_writer_outcomes_total", nil), got)
	})
}

// TestPromSelectors pins the dashboard-query parser on the shapes the
// dashboard uses and on ones it may come to use.
func TestPromSelectors(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`sum(rate(autotriage_messages_handled_total{stage="classifier",result="ack"}[5m])) * 60`,
			[]string{`autotriage_messages_handled_total{stage="classifier",result="ack"}`}},
		{`sum by (stage, result) (rate(a_total{result!="ack"}[$__rate_interval]))`, []string{`a_total{result!="ack"}`}},
		{`histogram_quantile(0.95, sum by (le, stage) (rate(h_seconds_bucket[$__rate_interval])))`, []string{`h_seconds_bucket`}},
		{`min(x_remaining) / max(x_total)`, []string{`x_remaining`, `x_total`}},
		{`max by (service, version, revision, instance) (build_info)`, []string{`build_info`}},
		{`sum without (instance) (up{job=~"auto.*"}) > bool 0 or on (job) vector(1)`, []string{`up{job=~"auto.*"}`}},
		{`rate(x{a="}{,\"b"}[1h:1m] offset 5m) and ignoring(le) group_left y`, []string{`x{a="}{,\"b"}`, `y`}},
		{`{__name__="named", k!~"v"}`, []string{`named{k!~"v"}`}},
		{`sum(increase(c_total[1h])) unless count(d) @ 1609746000`, []string{`c_total`, `d`}},
		{`1e3 * avg_over_time(g[10m]) + Inf - NaN`, []string{`g`}},
	} {
		sels, err := promSelectors(c.expr)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		var got []string
		for _, s := range sels {
			got = append(got, s.String())
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.expr, got, c.want)
		}
	}
	for _, bad := range []string{`x{a="b"`, `x{a=b}`, `x{a="b`, `sum(x[5m]`} {
		if _, err := promSelectors(bad); err == nil {
			t.Errorf("%s: parsed without an error", bad)
		}
	}
}

// ---------------------------------------------------------------------------
// The dashboard's queries.

// selector is one series selector of a PromQL expression: a metric name and
// its label matchers, with where it was found.
type selector struct {
	name     string
	matchers []matcher
	panel    string
}

type matcher struct {
	label, op, value string
	re               *regexp.Regexp // for =~ and !~, anchored as PromQL does
}

func (s selector) String() string {
	if len(s.matchers) == 0 {
		return s.name
	}
	var parts []string
	for _, m := range s.matchers {
		parts = append(parts, m.label+m.op+strconv.Quote(m.value))
	}
	return s.name + "{" + strings.Join(parts, ",") + "}"
}

func (m matcher) matches(v string) bool {
	switch m.op {
	case "=":
		return v == m.value
	case "!=":
		return v != m.value
	case "=~":
		return m.re.MatchString(v)
	default: // !~
		return !m.re.MatchString(v)
	}
}

// dashboardSelectors reads every query of the dashboard (panels, rows'
// panels, templating queries) and returns their selectors.
func dashboardSelectors(t *testing.T) []selector {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatalf("read the dashboard: %v", err)
	}
	var dash struct {
		Panels     []dashPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("decode the dashboard %s: %v", dashboardPath, err)
	}
	type query struct{ panel, expr string }
	var queries []query
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) != "" {
					queries = append(queries, query{p.Title, tg.Expr})
				}
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		// A query variable holds a string or {"query": "..."}; Grafana's
		// label_values(metric, label) names a metric too.
		var q string
		if json.Unmarshal(v.Query, &q) != nil {
			var o struct {
				Query string `json:"query"`
			}
			_ = json.Unmarshal(v.Query, &o)
			q = o.Query
		}
		if m := regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*\w+\s*\)\s*$`).FindStringSubmatch(q); m != nil {
			q = m[1]
		}
		if strings.TrimSpace(q) != "" {
			queries = append(queries, query{"variable " + v.Name, q})
		}
	}
	var out []selector
	for _, q := range queries {
		sels, err := promSelectors(q.expr)
		if err != nil {
			t.Fatalf("dashboard panel %q: query %q: %v", q.panel, q.expr, err)
		}
		if len(sels) == 0 {
			t.Fatalf("dashboard panel %q: query %q selects no series", q.panel, q.expr)
		}
		for _, s := range sels {
			s.panel = q.panel
			out = append(out, s)
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d selectors in the dashboard's queries; is %s the dashboard?", len(out), dashboardPath)
	}
	return out
}

type dashPanel struct {
	Title   string      `json:"title"`
	Panels  []dashPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// promKeywords are the PromQL words that are not metric names when they are
// not followed by "(": aggregation operators (which may take their by/
// without clause before the parenthesis), binary and set operators,
// modifiers and the special numbers.
var promKeywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "offset": true, "and": true, "or": true, "unless": true, "atan2": true,
	"inf": true, "nan": true,
}

// labelListKeywords take a parenthesised list of label names.
var labelListKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// promSelectors returns the series selectors of a PromQL expression. It is a
// scanner, not a full parser: it skips string literals outside selectors,
// range and subquery brackets, offset and @ modifiers, numbers, Grafana
// variables, function calls and the label lists of by/without/on/ignoring/
// group_left/group_right, and takes every other identifier as a metric name
// with its optional {matchers}.
func promSelectors(expr string) ([]selector, error) {
	var out []selector
	rs := []rune(expr)
	n := len(rs)
	isIdentStart := func(r rune) bool { return r == '_' || r == ':' || unicode.IsLetter(r) }
	isIdent := func(r rune) bool { return isIdentStart(r) || unicode.IsDigit(r) }
	skipSpace := func(i int) int {
		for i < n && unicode.IsSpace(rs[i]) {
			i++
		}
		return i
	}
	depth := 0
	for i := 0; i < n; {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '"' || r == '\'' || r == '`':
			_, j, err := readString(rs, i)
			if err != nil {
				return nil, err
			}
			i = j
		case r == '[':
			j := i + 1
			for j < n && rs[j] != ']' {
				j++
			}
			if j == n {
				return nil, fmt.Errorf("unclosed [ at %d", i)
			}
			i = j + 1
		case r == '(':
			depth++
			i++
		case r == ')':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unbalanced ) at %d", i)
			}
			i++
		case r == '$':
			// A Grafana variable ($var, ${var}) stands for a value.
			i++
			if i < n && rs[i] == '{' {
				for i < n && rs[i] != '}' {
					i++
				}
				i++
			}
			for i < n && isIdent(rs[i]) {
				i++
			}
		case r == '@':
			// @ <timestamp> | start() | end()
			i = skipSpace(i + 1)
			for i < n && (isIdent(rs[i]) || rs[i] == '.' || rs[i] == '-') {
				i++
			}
		case unicode.IsDigit(r) || r == '.':
			for i < n && (isIdent(rs[i]) || rs[i] == '.' || ((rs[i] == '+' || rs[i] == '-') && (rs[i-1] == 'e' || rs[i-1] == 'E'))) {
				i++
			}
		case r == '{':
			ms, j, err := readMatchers(rs, i)
			if err != nil {
				return nil, err
			}
			i = j
			s := selector{}
			for _, m := range ms {
				if m.label == "__name__" && m.op == "=" {
					s.name = m.value
				} else {
					s.matchers = append(s.matchers, m)
				}
			}
			if s.name == "" {
				return nil, fmt.Errorf("selector without a metric name at %d", i)
			}
			out = append(out, s)
		case isIdentStart(r):
			j := i
			for j < n && isIdent(rs[j]) {
				j++
			}
			word := string(rs[i:j])
			k := skipSpace(j)
			lower := strings.ToLower(word)
			switch {
			case labelListKeywords[lower] && k < n && rs[k] == '(':
				end := k
				for end < n && rs[end] != ')' {
					end++
				}
				if end == n {
					return nil, fmt.Errorf("unclosed label list after %s", word)
				}
				i = end + 1
			case lower == "offset":
				i = skipSpace(j)
				for i < n && (isIdent(rs[i]) || rs[i] == '-') {
					i++
				}
			case k < n && rs[k] == '(':
				i = j // a function or an aggregation: its arguments follow
			case promKeywords[lower]:
				i = j
			default:
				s := selector{name: word}
				i = j
				if k < n && rs[k] == '{' {
					ms, end, err := readMatchers(rs, k)
					if err != nil {
						return nil, err
					}
					s.matchers, i = ms, end
				}
				out = append(out, s)
			}
		default:
			i++ // operators and commas
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced parentheses")
	}
	return out, nil
}

// readMatchers reads {label op "value", ...} starting at the brace and
// returns the matchers and the index after the closing brace.
func readMatchers(rs []rune, i int) ([]matcher, int, error) {
	n := len(rs)
	i++ // {
	var out []matcher
	for {
		for i < n && (unicode.IsSpace(rs[i]) || rs[i] == ',') {
			i++
		}
		if i >= n {
			return nil, i, fmt.Errorf("unclosed {")
		}
		if rs[i] == '}' {
			return out, i + 1, nil
		}
		j := i
		for j < n && (rs[j] == '_' || unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j])) {
			j++
		}
		if j == i {
			return nil, i, fmt.Errorf("label name expected at %d", i)
		}
		label := string(rs[i:j])
		for j < n && unicode.IsSpace(rs[j]) {
			j++
		}
		var op string
		for _, o := range []string{"!=", "=~", "!~", "="} {
			if strings.HasPrefix(string(rs[j:min(j+2, n)]), o) {
				op = o
				break
			}
		}
		if op == "" {
			return nil, j, fmt.Errorf("matcher operator expected after %s", label)
		}
		j += len(op)
		for j < n && unicode.IsSpace(rs[j]) {
			j++
		}
		if j >= n || (rs[j] != '"' && rs[j] != '\'' && rs[j] != '`') {
			return nil, j, fmt.Errorf("quoted value expected for label %s", label)
		}
		val, end, err := readString(rs, j)
		if err != nil {
			return nil, j, err
		}
		m := matcher{label: label, op: op, value: val}
		if op == "=~" || op == "!~" {
			if m.re, err = regexp.Compile("^(?:" + val + ")$"); err != nil {
				return nil, j, fmt.Errorf("label %s: %w", label, err)
			}
		}
		out = append(out, m)
		i = end
	}
}

// readString reads a PromQL string literal starting at its quote and
// returns its value and the index after it.
func readString(rs []rune, i int) (string, int, error) {
	q := rs[i]
	j := i + 1
	for j < len(rs) && rs[j] != q {
		if rs[j] == '\\' && q != '`' {
			j++
		}
		j++
	}
	if j >= len(rs) {
		return "", j, fmt.Errorf("unterminated string at %d", i)
	}
	lit := string(rs[i : j+1])
	switch q {
	case '`':
		return lit[1 : len(lit)-1], j + 1, nil
	case '\'':
		lit = `"` + strings.ReplaceAll(strings.ReplaceAll(lit[1:len(lit)-1], `"`, `\"`), `\'`, `'`) + `"`
	}
	v, err := strconv.Unquote(lit)
	if err != nil {
		return "", j, fmt.Errorf("string at %d: %w", i, err)
	}
	return v, j + 1, nil
}

// ---------------------------------------------------------------------------
// What the stages expose.

// families are the metric families scraped from one or more processes,
// by name; a name several processes expose holds all their metrics.
type families map[string]*dto.MetricFamily

// scrapeAll reads /metrics of every process and merges the families.
func scrapeAll(t *testing.T, ps ...*proc) families {
	t.Helper()
	out := families{}
	for _, p := range ps {
		fams, err := scrape(p.debug)
		if err != nil {
			t.Fatalf("scrape %s: %v", p.name, err)
		}
		for name, f := range fams {
			if have := out[name]; have != nil {
				have.Metric = append(have.Metric, f.Metric...)
			} else {
				out[name] = f
			}
		}
	}
	return out
}

func scrape(addr string) (map[string]*dto.MetricFamily, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("parse the exposition: %w", err)
	}
	return fams, nil
}

// targetLabels are added by Prometheus at scrape time (and by the scrape
// configuration's relabelling), so no process exposes them.
var targetLabels = map[string]bool{"job": true, "instance": true, "compose_service": true}

// family finds the family a selector's name reads: the family itself, or for
// name_bucket, name_sum and name_count the histogram (or summary) name.
func (fs families) family(name string) (*dto.MetricFamily, string) {
	if f := fs[name]; f != nil {
		return f, ""
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suf)
		if !ok {
			continue
		}
		f := fs[base]
		if f == nil {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			return f, suf
		case dto.MetricType_SUMMARY:
			if suf != "_bucket" {
				return f, suf
			}
		}
	}
	return nil, ""
}

// matches reports whether some series of the family satisfies every matcher.
func (fs families) matches(s selector) bool {
	f, suffix := fs.family(s.name)
	if f == nil {
		return false
	}
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		ok := true
		for _, mt := range s.matchers {
			if targetLabels[mt.label] {
				continue
			}
			if mt.label == "le" && suffix == "_bucket" {
				// The bucket bounds are the le values of name_bucket.
				ok = mt.matches("+Inf") || slices.ContainsFunc(m.GetHistogram().GetBucket(), func(b *dto.Bucket) bool {
					return mt.matches(strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))
				})
				if !ok {
					break
				}
				continue
			}
			if !mt.matches(labels[mt.label]) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// sum adds the values of the counter or gauge series with the given labels.
func (fs families) sum(name string, labels map[string]string) float64 {
	f := fs[name]
	if f == nil {
		return 0
	}
	var total float64
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		ok := true
		for k, v := range labels {
			ok = ok && have[k] == v
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

// missingSeries lists the selectors no family satisfies, with their panels.
func missingSeries(sels []selector, fs families) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range sels {
		if fs.matches(s) {
			continue
		}
		line := fmt.Sprintf("  %s (panel %q)", s, s.panel)
		if !seen[line] {
			seen[line] = true
			out = append(out, line)
		}
	}
	sort.Strings(out)
	return out
}
