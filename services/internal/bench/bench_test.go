package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/classify"
)

// TestMain lets the test binary serve as the bench's child process.
func TestMain(m *testing.M) {
	ChildMain()
	os.Exit(m.Run())
}

// tinyDatasets writes a small labelled dataset and a README with a baseline
// table, so the test does not depend on the shared datasets.
func tinyDatasets(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "tiny")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	words := map[string][]string{
		"Billing":  {"invoice", "refund", "charge", "payment", "card", "billing"},
		"Access":   {"password", "login", "locked", "account", "reset", "sso"},
		"Hardware": {"laptop", "screen", "keyboard", "printer", "battery", "monitor"},
	}
	write := func(name string, n int) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		enc := json.NewEncoder(f)
		i := 0
		for range n {
			for _, g := range []string{"Billing", "Access", "Hardware"} {
				w := words[g]
				body := w[i%len(w)] + " problem with my " + w[(i+1)%len(w)] + " and " + w[(i+3)%len(w)] + " please help"
				_ = enc.Encode(classify.Example{ID: "x", Subject: w[(i+2)%len(w)], Body: body, Group: g})
				i++
			}
		}
	}
	write("train.jsonl", 40)
	write("test.jsonl", 10)
	readme := "# data\n\n| dataset | label | classes | majority acc | model | accuracy | macro-F1 | train µs/ticket | predict µs/ticket |\n" +
		"|---|---|---|---|---|---|---|---|---|\n" +
		"| tiny | group | 3 | 0.33 | LinearSVC | 0.9000 | 0.8900 | 100 | 10 |\n" +
		"| tiny | group | 3 | 0.33 | LogReg | 0.9100 | 0.9050 | 900 | 12 |\n"
	if err := os.WriteFile(filepath.Join(base, "README.md"), []byte(readme), 0o644); err != nil {
		t.Fatal(err)
	}
	return base
}

func testOptions(t *testing.T) Options {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Out: t.TempDir(), Quick: true, Datasets: tinyDatasets(t),
		Tickets: 40, CreditTickets: 30, MemTickets: 20, History: 200,
		Exe: exe, ExeArgs: []string{"-test.run=^$"},
		Log: testLog{t}, fastTrain: true,
	}
}

// testLog sends progress lines to the test log (shown with -v).
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(time.Now().Format("15:04:05.000"), strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestQuickRun runs every in-process section at a tiny size: the code paths
// of `make bench`, no assertion on any timing.
func TestQuickRun(t *testing.T) {
	o := testOptions(t)
	o.Only = []string{SecQuality, SecSpeed, SecPipeline, SecFreshdesk}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := Execute(ctx, o)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if len(rep.Quality) != 1 || rep.Quality[0].Dataset != "tiny" || len(rep.Quality[0].Sklearn) < 2 {
		t.Fatalf("quality rows: %+v", rep.Quality)
	}
	if len(rep.Speed) != 1 || rep.Speed[0].ModelBytes <= 0 || rep.Speed[0].OneFitUsPerTick <= 0 || rep.Speed[0].TrainPeakRSS <= 0 || rep.HoldMem == nil || rep.HoldMem.RSS <= 0 {
		t.Fatalf("speed: %+v hold %+v", rep.Speed, rep.HoldMem)
	}
	if len(rep.Explain) != 2 || !rep.Explain[1].Scale || rep.Explain[1].ExplainedP50Us <= 0 || rep.Explain[0].IndexHeapBytes <= 0 ||
		!strings.Contains(rep.Markdown(), "explanation + 3 similar tickets p50") {
		t.Fatalf("explain: %+v", rep.Explain)
	}
	if rep.Pipeline == nil || len(rep.Pipeline.Runs) != 3 || rep.Pipeline.Raw.AsyncPerSec <= 0 || rep.Pipeline.Raw.SyncPerSec <= 0 {
		t.Fatalf("pipeline: %+v", rep.Pipeline)
	}
	for _, r := range rep.Pipeline.Runs {
		if r.Done != r.Tickets {
			t.Errorf("run %s: %d of %d tickets triaged", r.Name, r.Done, r.Tickets)
		}
		if r.Arrival == "backlog" && (r.ShareOfBound <= 0 || r.CPURatio <= 0) {
			t.Errorf("run %s: no share of the upper bound (%v) or CPU ratio (%v)", r.Name, r.ShareOfBound, r.CPURatio)
		}
	}
	if c := rep.Pipeline.Ceilings; c == nil || c.HTTPPerSec <= 0 || c.InferencePerSec <= 0 || c.JSPerSec <= 0 || c.BoundPerSec <= 0 || c.BoundRatioAsync <= 0 || c.BoundCPUPerSec <= 0 ||
		c.HTTPCPUMsPerTicket <= 0 || c.InferenceCPUMsPerTicket <= 0 || c.JSCPUMsPerTicket <= 0 || c.HTTPCallsPerTicket != 2 {
		t.Fatalf("component ceilings: %+v", c)
	}
	if rep.Credits == nil || len(rep.Credits.Runs) != 5 {
		t.Fatalf("credits: %+v", rep.Credits)
	}
	for _, c := range rep.Credits.Runs {
		if c.Done != c.Tickets || c.Credits <= 0 {
			t.Errorf("credit run %s: %d of %d, %d credits", c.Name, c.Done, c.Tickets, c.Credits)
		}
	}
	t.Log("\n" + rep.Markdown())
	if err := rep.Write(o.Out); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(o.Out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## 1. Classifier quality", "## 2. Classifier speed", "## 3. Pipeline", "Component ceilings", "**upper bound**", "reachable at all", "## 4. Freshdesk", "## Targets"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	var back Report
	b, _ := os.ReadFile(filepath.Join(o.Out, "report.json"))
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("report.json: %v", err)
	}
}

// TestServiceMemory builds the three service binaries and runs them; it
// needs the go tool and a minute of building, so not under -short.
func TestServiceMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the service binaries")
	}
	o := testOptions(t)
	o.Only = []string{SecMemory}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := Execute(ctx, o)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if len(rep.Memory) != 3 {
		t.Fatalf("memory rows: %+v", rep.Memory)
	}
	for _, m := range rep.Memory {
		if m.IdleRSS <= 0 || m.HWM <= 0 {
			t.Errorf("%s: %+v", m.Service, m)
		}
	}
}

func TestParseBaselines(t *testing.T) {
	rows, err := parseBaselines(filepath.Join(tinyDatasets(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1].Model != "LogReg" || rows[1].MacroF1 != 0.905 || rows[0].PredictUsPerTick != 10 {
		t.Fatalf("rows: %+v", rows)
	}
	if d := datasetsDir(); d != "" {
		if _, err := os.Stat(filepath.Join(d, "README.md")); err == nil {
			shared, err := parseBaselines(filepath.Join(d, "README.md"))
			if err != nil || len(shared) == 0 {
				t.Fatalf("shared README: %v %+v", err, shared)
			}
		}
	}
}

func TestRunFlags(t *testing.T) {
	var out, errb strings.Builder
	if err := Run(context.Background(), []string{"--only", "nope"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "unknown section") {
		t.Fatalf("want unknown section error, got %v", err)
	}
	if err := Run(context.Background(), []string{"--help"}, &out, &errb); err == nil || !strings.Contains(out.String(), "--quick") {
		t.Fatalf("help: %v %q", err, out.String())
	}
}

func TestWebhookTicketID(t *testing.T) {
	if id := webhookTicketID([]byte(`{"freshdesk_webhook":{"triggered_event":"x","ticket_id":"4217","ticket_url":"u"}}`)); id != 4217 {
		t.Fatalf("id %d", id)
	}
}
