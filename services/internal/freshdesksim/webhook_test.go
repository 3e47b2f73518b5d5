package freshdesksim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type hookSink struct {
	mu       sync.Mutex
	bodies   [][]byte
	headers  []http.Header
	failLeft atomic.Int64 // answer 500 while > 0
	srv      *httptest.Server
}

func newHookSink(t *testing.T) *hookSink {
	h := &hookSink{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if h.failLeft.Add(-1) >= 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		h.mu.Lock()
		h.bodies = append(h.bodies, b)
		h.headers = append(h.headers, r.Header.Clone())
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookSink) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bodies)
}

func (h *hookSink) payload(t *testing.T, i int) map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var v struct {
		W map[string]string `json:"freshdesk_webhook"`
	}
	if err := json.Unmarshal(h.bodies[i], &v); err != nil {
		t.Fatalf("webhook body not the automation shape: %v: %s", err, h.bodies[i])
	}
	return v.W
}

func TestWebhookCreatedAndUpdated(t *testing.T) {
	sink := newHookSink(t)
	e := newEnv(t, Config{Domain: "acme", Webhook: WebhookConfig{URL: sink.srv.URL, Header: "X-Hook-Secret", Secret: "s3cret", Username: "u", Password: "p"}})
	id, err := e.sim.AddTicket(NewTicket{Subject: "Printer ☃ on fire", Description: "<div>It \"burns\"</div>", Email: "bob@example.com", Name: "Bob", Priority: 3})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "created webhook", func() bool { return sink.count() == 1 })
	got := sink.payload(t, 0)
	want := map[string]string{
		"triggered_event": "{ticket_action:created}", "ticket_id": "1",
		"ticket_url": "https://acme.freshdesk.com/helpdesk/tickets/1", "ticket_type": "",
		"ticket_subject": "Printer ☃ on fire", "ticket_description": "<div>It \"burns\"</div>",
		"ticket_status": "Open", "ticket_priority": "High", "requester_name": "Bob", "requester_email": "bob@example.com",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	sink.mu.Lock()
	hdr := sink.headers[0]
	sink.mu.Unlock()
	if hdr.Get("X-Hook-Secret") != "s3cret" || hdr.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", hdr)
	}
	if u, p, ok := (&http.Request{Header: hdr}).BasicAuth(); !ok || u != "u" || p != "p" {
		t.Error("basic auth missing")
	}
	// A status change by an agent: one event, status first.
	if err := e.sim.AgentUpdate(id, map[string]any{"status": 6, "priority": 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "status webhook", func() bool { return sink.count() == 2 })
	if p := sink.payload(t, 1); p["triggered_event"] != "{status:{from:2,to:6}}" || p["ticket_status"] != "Waiting on Customer" || p["ticket_priority"] != "Low" {
		t.Fatalf("status event %v", p)
	}
	if err := e.sim.AgentUpdate(id, map[string]any{"priority": 4}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "priority webhook", func() bool { return sink.count() == 3 })
	if p := sink.payload(t, 2); p["triggered_event"] != "{priority:{from:1,to:4}}" || p["ticket_priority"] != "Urgent" {
		t.Fatalf("priority event %v", p)
	}
	// API updates do not fire by default; tags-only agent edits fire nothing.
	e.do("PUT", "/api/v2/tickets/1", adminKey, `{"status":3}`)
	if err := e.sim.AgentUpdate(id, map[string]any{"tags": []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	// POST /tickets fires "created".
	if r := e.do("POST", "/api/v2/tickets", adminKey, `{"subject":"via api","description":"d","email":"x@example.com"}`); r.status != 201 {
		t.Fatalf("create %d %s", r.status, r.body)
	}
	eventually(t, "api-created webhook", func() bool { return sink.count() == 4 })
	if p := sink.payload(t, 3); p["ticket_id"] != "2" || p["triggered_event"] != "{ticket_action:created}" {
		t.Fatalf("4th event %v (an API update must not have fired)", p)
	}
	eventually(t, "delivered count", func() bool { return e.sim.Stats().Webhooks.Delivered == 4 })
	if st := e.sim.Stats().Webhooks; st.Queued != 4 || st.Dropped != 0 || st.Failed != 0 {
		t.Fatalf("webhook stats %+v", st)
	}
}

func TestWebhookRetriesThenDrops(t *testing.T) {
	sink := newHookSink(t)
	// 5/30/60 simulated minutes become 5/30/60 ms at this scale.
	e := newEnv(t, Config{TimeScale: 60000, Webhook: WebhookConfig{URL: sink.srv.URL}})
	sink.failLeft.Store(3) // first try and two retries fail, the third retry succeeds
	if _, err := e.sim.AddTicket(NewTicket{Subject: "a"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delivery after retries", func() bool { return e.sim.Stats().Webhooks.Delivered == 1 })
	st := e.sim.Stats().Webhooks
	if st.Attempts != 4 || st.Failed != 3 || st.Delivered != 1 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	e.sim.ResetStats()
	sink.failLeft.Store(4) // every attempt fails
	if _, err := e.sim.AddTicket(NewTicket{Subject: "b"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "drop after the last retry", func() bool { return e.sim.Stats().Webhooks.Dropped == 1 })
	if st := e.sim.Stats().Webhooks; st.Attempts != 4 || st.Delivered != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWebhookMatchesFixtureShape(t *testing.T) {
	dir := filepath.Join(sharedDir(t), "fixtures", "freshdesk")
	raw, err := os.ReadFile(filepath.Join(dir, "webhook_ticket_created.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fx map[string]map[string]any
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	b, err := renderWebhook(webhookEvent{TriggeredEvent: "{ticket_action:created}", TicketID: "11"})
	if err != nil {
		t.Fatal(err)
	}
	var ours map[string]map[string]any
	if err := json.Unmarshal(b, &ours); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]any) []string {
		var k []string
		for x, v := range m {
			if _, ok := v.(string); !ok {
				t.Errorf("%s is not a string", x)
			}
			k = append(k, x)
		}
		sort.Strings(k)
		return k
	}
	if a, b := strings.Join(keys(fx["freshdesk_webhook"]), ","), strings.Join(keys(ours["freshdesk_webhook"]), ","); a != b {
		t.Fatalf("keys differ:\nfixture %s\nours    %s", a, b)
	}
}

// FuzzRenderWebhook checks that any placeholder values render to valid JSON
// that round-trips exactly (invalid UTF-8 aside, which becomes U+FFFD).
func FuzzRenderWebhook(f *testing.F) {
	f.Add("{ticket_action:created}", "Subject ☃", "<div>a \"b\" </div>\n", "Bob")
	f.Add("{status:{from:4,to:6}}", "\x00\u2028", "</script>&", "")
	f.Fuzz(func(t *testing.T, trig, subj, desc, name string) {
		ev := webhookEvent{TriggeredEvent: trig, TicketID: "1", TicketSubject: subj, TicketDescription: desc, RequesterName: name}
		b, err := renderWebhook(ev)
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			W webhookEvent `json:"freshdesk_webhook"`
		}
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("invalid JSON %q: %v", b, err)
		}
		if strings.ToValidUTF8(subj, "\uFFFD") == subj && back.W.TicketSubject != subj {
			t.Fatalf("subject %q came back as %q", subj, back.W.TicketSubject)
		}
		if strings.ToValidUTF8(desc, "\uFFFD") == desc && back.W.TicketDescription != desc {
			t.Fatalf("description %q came back as %q", desc, back.W.TicketDescription)
		}
	})
}

func TestCloseStopsArrivals(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Generate(GenerateOptions{ArrivalRate: 1000, Arrivals: 5}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "5 arrivals", func() bool { return len(s.TicketIDs()) == 5 })
	if err := s.Generate(GenerateOptions{ArrivalRate: 1000}); err != nil { // unbounded
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	n := len(s.TicketIDs())
	time.Sleep(20 * time.Millisecond)
	if len(s.TicketIDs()) != n {
		t.Fatal("tickets still arriving after Close")
	}
	for _, id := range s.TicketIDs() {
		tk, _ := s.Ticket(id)
		l, ok := s.TrueLabels(id)
		if tk.GroupID != 0 || tk.Type != "" || len(tk.Tags) != 0 || tk.Status != 2 || !ok || l.GroupID == 0 {
			t.Fatalf("arrival %d not untriaged or without labels: %+v %+v", id, tk, l)
		}
	}
}
