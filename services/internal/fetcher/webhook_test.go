package fetcher

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

type webhookEnv struct {
	b   *bus
	s   *sim
	f   *Fetcher
	url string
	reg *prometheus.Registry // the pipeline series the fetcher reports
}

func startWebhook(t *testing.T, cfg Config, gen freshdesksim.GenerateOptions) *webhookEnv {
	t.Helper()
	b := startBus(t)
	s := startSim(t, freshdesksim.Config{}, gen)
	reg := prometheus.NewRegistry()
	f := newFetcher(t, b, cfg, fetcherOpts{src: s.adapter, catalog: s.adapter, pmetrics: pipeline.NewMetrics(reg)})
	hs := httptest.NewServer(f.WebhookHandler())
	t.Cleanup(hs.Close)
	return &webhookEnv{b: b, s: s, f: f, url: hs.URL + WebhookPath, reg: reg}
}

type webhookResp struct {
	code int
	body webhookReply
}

func post(t *testing.T, url string, body []byte, hdr map[string]string) webhookResp {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<16))
	var r webhookReply
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("response %d is not JSON: %q", res.StatusCode, raw)
	}
	return webhookResp{code: res.StatusCode, body: r}
}

var authed = map[string]string{"X-Autotriage-Token": testSecret}

func TestWebhookFixturesPublishTheFetchedTicket(t *testing.T) {
	e := startWebhook(t, testConfig(), freshdesksim.GenerateOptions{New: 12})
	fixtures := []string{
		"webhook_ticket_created.json", "webhook_ticket_created_inline_images.json",
		"webhook_status_changed.json", "webhook_status_changed_missing_triggered_event.json",
		"webhook_priority_changed.json", "webhook_private_note.json", "webhook_public_note.json",
	}
	statuses := map[string]int{}
	for _, name := range fixtures {
		r := post(t, e.url, fixture(t, name), authed)
		if r.code != http.StatusAccepted {
			t.Fatalf("%s: %d %+v, want 202", name, r.code, r.body)
		}
		statuses[r.body.Status]++
	}
	// Tickets 11 and 12 are each stored once; the other deliveries are repeats.
	if statuses[StatusPublished] != 2 || statuses[StatusDuplicate] != len(fixtures)-2 {
		t.Fatalf("statuses %v", statuses)
	}
	ts := e.b.tickets(t)
	if len(ts) != 2 {
		t.Fatalf("TICKETS holds %d, want 2", len(ts))
	}
	for _, tk := range ts {
		want, _ := e.s.Ticket(tk.Id)
		// The payload says "Test ticket subject ☃"; the API's version wins.
		if tk.Arrival != v1.Arrival_ARRIVAL_WEBHOOK || tk.Subject != want.Subject || strings.Contains(tk.Subject, "☃") {
			t.Fatalf("ticket %d: arrival %v subject %q, want the API's %q", tk.Id, tk.Arrival, tk.Subject, want.Subject)
		}
	}
	// A later poll of the same versions adds nothing.
	if err := e.f.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.b.count(t, pipeline.StreamTickets); n != 12 {
		t.Fatalf("after a poll TICKETS holds %d, want 12 (the two webhook versions not repeated)", n)
	}
}

func TestWebhookAuthentication(t *testing.T) {
	cfg := testConfig()
	cfg.WebhookUser, cfg.WebhookPassword = "freshdesk", "basic-auth-password-1"
	e := startWebhook(t, cfg, freshdesksim.GenerateOptions{New: 12})
	body := fixture(t, "webhook_ticket_created.json")
	basic := func(u, p string) map[string]string {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(u, p)
		return map[string]string{"Authorization": req.Header.Get("Authorization")}
	}
	for name, hdr := range map[string]map[string]string{
		"missing":        nil,
		"wrong secret":   {"X-Autotriage-Token": testSecret + "x"},
		"other header":   {"X-Other-Token": testSecret},
		"empty secret":   {"X-Autotriage-Token": ""},
		"wrong password": basic("freshdesk", "nope"),
		"wrong user":     basic("someone", "basic-auth-password-1"),
	} {
		if r := post(t, e.url, body, hdr); r.code != http.StatusUnauthorized {
			t.Fatalf("%s: %d, want 401", name, r.code)
		}
	}
	if n := e.b.count(t, pipeline.StreamTickets) + e.b.count(t, pipeline.StreamDLQ); n != 0 {
		t.Fatalf("unauthenticated requests stored %d messages", n)
	}
	if r := post(t, e.url, body, basic("freshdesk", "basic-auth-password-1")); r.code != http.StatusAccepted || r.body.Status != StatusPublished {
		t.Fatalf("basic auth: %d %+v", r.code, r.body)
	}
	if r := post(t, e.url, body, authed); r.code != http.StatusAccepted {
		t.Fatalf("secret header: %d %+v", r.code, r.body)
	}
}

func TestWebhookRejectsBadBodies(t *testing.T) {
	cfg := testConfig()
	cfg.WebhookMaxBytes = 4096
	e := startWebhook(t, cfg, freshdesksim.GenerateOptions{New: 12})

	big := append([]byte(`{"freshdesk_webhook":{"ticket_id":"11","pad":"`), bytes.Repeat([]byte("x"), 5000)...)
	big = append(big, `"}}`...)
	if r := post(t, e.url, big, authed); r.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("large body: %d, want 413", r.code)
	}

	bad := map[string][]byte{
		"malformed JSON":    []byte(`{"freshdesk_webhook": {"ticket_id": "11",`),
		"not an object":     []byte(`[1,2,3]`),
		"missing ticket id": []byte(`{"freshdesk_webhook":{"triggered_event":"{ticket_action:created}"}}`),
		"ticket id zero":    []byte(`{"freshdesk_webhook":{"ticket_id":"0"}}`),
		"unknown event":     fixture(t, "webhook_unknown_event.json"),
	}
	var sent [][]byte
	for name, body := range bad {
		r := post(t, e.url, body, authed)
		if r.code != http.StatusBadRequest || r.body.Error == "" {
			t.Fatalf("%s: %d %+v, want 400 with an error", name, r.code, r.body)
		}
		sent = append(sent, body)
	}
	if n := e.b.count(t, pipeline.StreamTickets); n != 0 {
		t.Fatalf("bad bodies published %d tickets", n)
	}
	dlq := e.b.messages(t, pipeline.StreamDLQ)
	if len(dlq) != len(bad) {
		t.Fatalf("DLQ holds %d, want %d (the 413 body is not kept)", len(dlq), len(bad))
	}
	// Counted with every stage's dead letters, beside the fetcher's own
	// invalid counter.
	if n, _ := gathered(t, e.reg, "autotriage_dead_letters_total", map[string]string{"stage": Stage, "cause": pipeline.CauseInvalidWebhook}); n != float64(len(bad)) {
		t.Errorf("autotriage_dead_letters_total{stage=fetcher,cause=invalid_webhook} = %v, want %d", n, len(bad))
	}
	if n, ok := gathered(t, e.reg, "autotriage_dead_letters_total", map[string]string{"stage": Stage, "cause": pipeline.CauseInvalidTicket}); !ok || n != 0 {
		t.Errorf("autotriage_dead_letters_total{stage=fetcher,cause=invalid_ticket} = %v (exists %v), want 0 from the start", n, ok)
	}
	for _, body := range sent {
		found := false
		for _, m := range dlq {
			if bytes.Equal(m.Data, body) {
				found = true
				if st := m.Header[pipeline.HeaderStage]; len(st) != 1 || st[0] != Stage {
					t.Fatalf("DLQ stage header %v", st)
				}
			}
		}
		if !found {
			t.Fatalf("DLQ lacks the body %q", body)
		}
	}
	// Still serving after all that.
	if r := post(t, e.url, fixture(t, "webhook_ticket_created.json"), authed); r.code != http.StatusAccepted {
		t.Fatalf("good webhook after bad ones: %d", r.code)
	}
	// Only POST.
	req, _ := http.NewRequest(http.MethodGet, e.url, nil)
	req.Header.Set("X-Autotriage-Token", testSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d, want 405", res.StatusCode)
	}
}

func TestWebhookMissingTicketAndTransientErrors(t *testing.T) {
	e := startWebhook(t, testConfig(), freshdesksim.GenerateOptions{New: 3})
	// Ticket 11 does not exist: acknowledged as ignored, nothing stored.
	r := post(t, e.url, fixture(t, "webhook_ticket_created.json"), authed)
	if r.code != http.StatusOK || r.body.Status != "ignored" {
		t.Fatalf("deleted ticket: %d %+v, want 200 ignored", r.code, r.body)
	}
	e.s.SetFault("tickets.view", freshdesksim.Fault{ErrorRate: 1, Status: http.StatusServiceUnavailable})
	r = post(t, e.url, []byte(`{"freshdesk_webhook":{"ticket_id":"2","triggered_event":"{ticket_action:created}"}}`), authed)
	if r.code != http.StatusServiceUnavailable {
		t.Fatalf("API down: %d %+v, want 503", r.code, r.body)
	}
	if n := e.b.count(t, pipeline.StreamTickets) + e.b.count(t, pipeline.StreamDLQ); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
	e.s.SetFault("tickets.view", freshdesksim.Fault{})
	r = post(t, e.url, []byte(`{"freshdesk_webhook":{"ticket_id":"2","triggered_event":"{ticket_action:created}"}}`), authed)
	if r.code != http.StatusAccepted || r.body.Status != StatusPublished {
		t.Fatalf("after recovery (Freshdesk's retry): %d %+v", r.code, r.body)
	}
}

// TestSimulatorWebhookEndToEnd lets the simulator's automation rule deliver
// the webhook for a new ticket.
func TestSimulatorWebhookEndToEnd(t *testing.T) {
	b := startBus(t)
	var h atomic.Pointer[http.Handler]
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) }))
	t.Cleanup(hs.Close)
	s := startSim(t, freshdesksim.Config{Webhook: freshdesksim.WebhookConfig{
		URL: hs.URL + WebhookPath, Header: "X-Autotriage-Token", Secret: testSecret}}, freshdesksim.GenerateOptions{})
	f := newFetcher(t, b, testConfig(), fetcherOpts{src: s.adapter})
	wh := f.WebhookHandler()
	h.Store(&wh)
	id, err := s.AddTicket(freshdesksim.NewTicket{Subject: "printer on fire", Description: "send help"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the webhook's ticket", func() bool { return b.count(t, pipeline.StreamTickets) == 1 })
	tk := b.tickets(t)[0]
	if tk.Id != id || tk.Subject != "printer on fire" || tk.Arrival != v1.Arrival_ARRIVAL_WEBHOOK {
		t.Fatalf("published %+v", tk)
	}
}
