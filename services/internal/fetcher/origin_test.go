package fetcher

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/platform"
)

// defaultConfig is the fetcher configuration an empty environment gives
// (plus the webhook secret the tests use), so the defaults are what is tested.
func defaultConfig(t *testing.T, env map[string]string) Config {
	t.Helper()
	all := map[string]string{"AUTOTRIAGE_WEBHOOK_SECRET": testSecret}
	for k, v := range env {
		all[k] = v
	}
	var c Config
	if err := platform.LoadConfigFrom(&c, nil, "fetcher", "", io.Discard, all); err != nil {
		t.Fatal(err)
	}
	return c
}

func newFetcherReg(t *testing.T, b *bus, s *sim, cfg Config) (*Fetcher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	f, err := New(cfg, Deps{System: testSystem, Account: testAccount, Source: s.adapter, Catalog: s.adapter,
		Bus: b.conn, State: b.state, Ledger: b.ledger, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return f, reg
}

func publishedIDs(t *testing.T, b *bus) map[int64]int {
	t.Helper()
	out := map[int64]int{}
	for _, tk := range b.tickets(t) {
		out[tk.Id]++
	}
	return out
}

// The first start against an account triages only tickets created from then
// on: tickets waiting in the helpdesk are left alone however they arrive
// (poll or webhook) and whenever they change later, also after a restart;
// a ticket created after the start is triaged.
func TestFirstStartTriagesOnlyTicketsCreatedAfterIt(t *testing.T) {
	ctx := context.Background()
	b := startBus(t)
	// 30 open, untriaged tickets created in the last hour (and updated
	// then, so the first poll, reading updates from the start on, does
	// not even list them).
	s := startSim(t, freshdesksim.Config{}, freshdesksim.GenerateOptions{New: 30})
	old := s.TicketIDs()
	cfg := defaultConfig(t, nil)
	if cfg.Start != "now" {
		t.Fatalf("AUTOTRIAGE_FETCHER_START defaults to %q, want now", cfg.Start)
	}
	f, reg := newFetcherReg(t, b, s, cfg)
	if err := f.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := publishedIDs(t, b); len(got) != 0 {
		t.Fatalf("the first poll published %d of the tickets that existed before the start: %v", len(got), got)
	}
	origin, err := f.Origin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if origin.At.IsZero() || time.Since(origin.At) > time.Minute || origin.Setting != "now" {
		t.Fatalf("origin %+v, want about now", origin)
	}

	// A webhook for an old ticket is answered but not triaged.
	hs := httptest.NewServer(f.WebhookHandler())
	t.Cleanup(hs.Close)
	body := []byte(`{"freshdesk_webhook":{"ticket_id":"` + strconv.FormatInt(old[0], 10) + `","triggered_event":"{priority:{from:1,to:3}}"}}`)
	if r := post(t, hs.URL+WebhookPath, body, authed); r.body.Status != StatusSkipped || r.body.Reason != ReasonBeforeStart {
		t.Fatalf("webhook for a ticket created before the start: %d %+v, want skipped/%s", r.code, r.body, ReasonBeforeStart)
	}

	// A person updates an old ticket; a new ticket arrives.
	if err := s.AgentUpdate(old[1], map[string]any{"priority": 3}); err != nil {
		t.Fatal(err)
	}
	fresh, err := s.AddTicket(freshdesksim.NewTicket{Subject: "printer on fire", Description: "the printer in room 4 is on fire"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := publishedIDs(t, b); len(got) != 1 || got[fresh] != 1 {
		t.Fatalf("published %v, want only the new ticket %d", got, fresh)
	}
	// The webhook and the updated old ticket were counted.
	if n, _ := gathered(t, reg, "autotriage_fetcher_tickets_filtered_total", map[string]string{"reason": ReasonBeforeStart}); n != 2 {
		t.Fatalf("filtered{reason=before_start} = %v, want 2", n)
	}

	// A restarted fetcher (another replica, a later start) keeps the
	// recorded start instead of taking "now" again.
	// Its clock is an hour on, so a fresh "now" would differ.
	f2, err := New(cfg, Deps{System: testSystem, Account: testAccount, Source: s.adapter, Catalog: s.adapter,
		Bus: b.conn, State: b.state, Ledger: b.ledger, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	o2, err := f2.Origin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !o2.At.Equal(origin.At) {
		t.Fatalf("after a restart the start is %s, want the recorded %s", o2.At, origin.At)
	}
	if err := s.AgentUpdate(old[2], map[string]any{"priority": 4}); err != nil {
		t.Fatal(err)
	}
	if err := f2.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := publishedIDs(t, b); len(got) != 1 || got[fresh] != 1 {
		t.Fatalf("after a restart published %v, want only the new ticket %d", got, fresh)
	}
}

// AUTOTRIAGE_FETCHER_START reaching back triages the tickets created since.
func TestFetcherStartReachesBack(t *testing.T) {
	b := startBus(t)
	s := startSim(t, freshdesksim.Config{}, freshdesksim.GenerateOptions{New: 30})
	f, reg := newFetcherReg(t, b, s, defaultConfig(t, map[string]string{"AUTOTRIAGE_FETCHER_START": "24h"}))
	if err := f.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := publishedIDs(t, b); len(got) != 30 {
		t.Fatalf("published %d tickets, want the 30 created in the last hour", len(got))
	}
	if n, _ := gathered(t, reg, "autotriage_fetcher_tickets_filtered_total", map[string]string{"reason": ReasonBeforeStart}); n != 0 {
		t.Fatalf("filtered{reason=before_start} = %v, want 0", n)
	}
}

// An account polled before starts were recorded (a cursor, no start) keeps
// triaging as before: no cut-off appears on upgrade.
func TestStoredCursorWithoutStartMeansNoLimit(t *testing.T) {
	ctx := context.Background()
	b := startBus(t)
	s := startSim(t, freshdesksim.Config{}, freshdesksim.GenerateOptions{New: 10})
	cur, _ := json.Marshal(Cursor{UpdatedAt: time.Now().Add(-2 * time.Hour).UTC(), SavedAt: time.Now().UTC(), Holder: "old"})
	if _, err := b.state.Create(ctx, CursorKey(testSystem, testAccount), cur); err != nil {
		t.Fatal(err)
	}
	f, _ := newFetcherReg(t, b, s, defaultConfig(t, nil))
	if err := f.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := publishedIDs(t, b); len(got) != 10 {
		t.Fatalf("published %d tickets, want all 10 (no start recorded before the upgrade)", len(got))
	}
	e, err := b.state.Get(ctx, StartKey(testSystem, testAccount))
	if err != nil {
		t.Fatalf("start not recorded: %v", err)
	}
	var o Origin
	if err := json.Unmarshal(e.Value, &o); err != nil || !o.At.IsZero() {
		t.Fatalf("recorded start %s (%v), want no limit", e.Value, err)
	}
}
