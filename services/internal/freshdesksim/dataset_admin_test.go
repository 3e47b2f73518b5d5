package freshdesksim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadDataset(t *testing.T) {
	dir := filepath.Join(sharedDir(t), "datasets", "it-service-tickets")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("dataset absent")
	}
	e := newEnv(t, Config{})
	if err := e.sim.LoadDataset(dir, DatasetOptions{HistoryLimit: 300, NewLimit: 50}); err != nil {
		t.Fatal(err)
	}
	ids := e.sim.TicketIDs()
	if len(ids) != 350 {
		t.Fatalf("%d tickets", len(ids))
	}
	hist, _ := e.sim.Ticket(ids[0])
	hl, _ := e.sim.TrueLabels(ids[0])
	if hist.Status < 4 || hist.GroupID == 0 || hist.GroupID != hl.GroupID || hist.DescriptionText == "" {
		t.Fatalf("history ticket %+v labels %+v", hist, hl)
	}
	nw, _ := e.sim.Ticket(ids[349])
	nl, ok := e.sim.TrueLabels(ids[349])
	if nw.Status != 2 || nw.GroupID != 0 || nw.Type != "" || !ok || nl.Group == "" || nl.GroupID == 0 {
		t.Fatalf("new ticket %+v labels %+v", nw, nl)
	}
	var groups []map[string]any
	_ = json.Unmarshal(e.get("/api/v2/groups").body, &groups)
	if len(groups) != 8 {
		t.Fatalf("%d groups from the dataset labels, want 8", len(groups))
	}
	if err := e.sim.LoadDataset(filepath.Join(t.TempDir(), "missing"), DatasetOptions{}); err == nil {
		t.Fatal("missing dataset accepted")
	}
}

func TestLoadDatasetAtRate(t *testing.T) {
	dir := t.TempDir()
	train := `{"id":"1","subject":"","body":"card lost","group":"cards","language":"en","priority":"High","type":"Incident"}` + "\n"
	test := `{"id":"2","subject":"s","body":"where is my card","group":"cards","language":"en"}` + "\n" +
		`{"id":"3","subject":"s","body":"fee?","group":"fees","language":"en"}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "train.jsonl"), []byte(train), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.jsonl"), []byte(test), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Config{})
	if err := e.sim.LoadDataset(dir, DatasetOptions{Rate: 500}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "arrivals", func() bool { return len(e.sim.TicketIDs()) == 3 })
	h, _ := e.sim.Ticket(1)
	if h.Priority != 3 || h.Type != "Incident" || h.Subject != "" {
		t.Fatalf("history %+v", h)
	}
	if l, _ := e.sim.TrueLabels(3); l.Group != "fees" {
		t.Fatalf("labels %+v", l)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.jsonl"), []byte("{not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.LoadDataset(dir, DatasetOptions{}); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("bad JSONL: %v", err)
	}
}

func TestAdminAPI(t *testing.T) {
	e := newEnv(t, Config{})
	steps := []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"GET", "/_sim/healthz", "", 200, `"ok"`},
		{"POST", "/_sim/generate", `{"history":10,"new":2}`, 200, `"tickets":12`},
		{"POST", "/_sim/generate", `{"history":-1}`, 400, "negative"},
		{"POST", "/_sim/generate", `{"bogus":1}`, 400, "unknown field"},
		{"POST", "/_sim/tickets", `{"subject":"hi","description":"help","email":"a@b.example"}`, 201, `"id":13`},
		{"GET", "/_sim/tickets/13", "", 200, `"subject":"hi"`},
		{"GET", "/_sim/tickets/999", "", 404, "no such ticket"},
		{"POST", "/_sim/tickets/13/agent_update", `{"status":3}`, 200, `"id":13`},
		{"POST", "/_sim/tickets/13/agent_update", `{"status":"3"}`, 400, "datatype_mismatch"},
		{"POST", "/_sim/tickets/13/spam", `{"spam":true}`, 204, ""},
		{"PUT", "/_sim/faults/tickets.list", `{"burst":1,"status":503,"latency":"1ms"}`, 204, ""},
		{"GET", "/_sim/faults", "", 200, `"tickets.list":{"error_rate":0,"status":503,"latency":"1ms"`},
		{"PUT", "/_sim/faults/x", `{"error_rate":2}`, 400, ""},
		{"DELETE", "/_sim/faults/tickets.list", "", 204, ""},
		{"GET", "/_sim/stats", "", 200, `"endpoints"`},
		{"POST", "/_sim/stats/reset", "", 204, ""},
	}
	for _, s := range steps {
		r := e.do(s.method, s.path, "", s.body)
		if r.status != s.status || !strings.Contains(string(r.body), s.contains) {
			t.Fatalf("%s %s: %d %s", s.method, s.path, r.status, r.body)
		}
	}
	tk, _ := e.sim.Ticket(13)
	if tk.Status != 3 || !tk.Spam {
		t.Fatalf("ticket %+v", tk)
	}
	// The admin API needs no auth and is not rate limited or counted.
	e.get("/api/v2/tickets")
	if st := e.sim.Stats(); st.Total.Calls != 1 {
		t.Fatalf("stats count admin calls: %+v", st.Total)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	for _, cfg := range []Config{{Plan: "gold"}, {TimeScale: 0.5}, {APIKey: "a", AgentKey: "a"}, {IndexDelay: -1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// TestAdminGenerateEmailShare: /_sim/generate takes email_share; with 1
// every generated ticket is an HTML e-mail with a quoted thread, served
// through the API with include=description.
func TestAdminGenerateEmailShare(t *testing.T) {
	e := newEnv(t, Config{Seed: 3})
	if r := e.do("POST", "/_sim/generate", "", `{"email_share":1.5}`); r.status != 400 || !strings.Contains(string(r.body), "email share") {
		t.Fatalf("share 1.5: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/_sim/generate", "", `{"history":5,"new":5,"email_share":1}`); r.status != 200 {
		t.Fatalf("generate: %d %s", r.status, r.body)
	}
	r := e.get("/api/v2/tickets?updated_since=2000-01-01T00:00:00Z&include=description&per_page=100")
	var list []struct {
		ID          int64  `json:"id"`
		Description string `json:"description"`
		Source      int    `json:"source"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil || len(list) != 10 {
		t.Fatalf("list: %v, %d tickets: %.300s", err, len(list), r.body)
	}
	for _, tk := range list {
		if !strings.Contains(tk.Description, "<blockquote") || tk.Source != 1 {
			t.Errorf("ticket %d is not an e-mail (source %d): %.200s", tk.ID, tk.Source, tk.Description)
		}
	}
}
