package fetcher

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// simUpdatedAts returns the updated_at of every sim ticket, ascending.
func simUpdatedAts(t *testing.T, s *sim) []time.Time {
	t.Helper()
	var out []time.Time
	for _, id := range s.TicketIDs() {
		tk, _ := s.Ticket(id)
		out = append(out, tk.UpdatedAt)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

func TestPollPublishesEachVersionOnceAndAdvancesCursor(t *testing.T) {
	b := startBus(t)
	s := startSim(t, freshdesksim.Config{}, freshdesksim.GenerateOptions{New: 250})
	f := newFetcher(t, b, testConfig(), fetcherOpts{src: s.adapter, catalog: s.adapter})
	ctx := context.Background()

	if err := f.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	ts := b.tickets(t)
	ids := sortedIDs(ts)
	if len(ts) != 250 || !uniqueIDs(ids) {
		t.Fatalf("published %d versions (unique ids %v), want 250 distinct", len(ts), uniqueIDs(ids))
	}
	for _, tk := range ts {
		if tk.Arrival != v1.Arrival_ARRIVAL_POLL || tk.System != testSystem || tk.Account != testAccount || tk.ShadowOnly {
			t.Fatalf("ticket %d: arrival %v system %q account %q shadow %v", tk.Id, tk.Arrival, tk.System, tk.Account, tk.ShadowOnly)
		}
	}
	ups := simUpdatedAts(t, s)
	cur, err := f.ReadCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !cur.UpdatedAt.Equal(ups[len(ups)-1]) {
		t.Fatalf("cursor %s, want the newest updated_at %s", cur.UpdatedAt, ups[len(ups)-1])
	}

	// A second poll re-reads the overlap window: nothing new is stored.
	f.cfg.Overlap = 2 * time.Hour
	if err := f.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := b.count(t, pipeline.StreamTickets); n != 250 {
		t.Fatalf("after an overlapping re-read TICKETS holds %d, want 250", n)
	}

	// A person changes one ticket: exactly that new version is published.
	if err := s.AgentUpdate(7, map[string]any{"status": 3}); err != nil {
		t.Fatal(err)
	}
	if err := f.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	ts = b.tickets(t)
	if len(ts) != 251 {
		t.Fatalf("after one change TICKETS holds %d, want 251", len(ts))
	}
	last := ts[len(ts)-1]
	sv, _ := s.Ticket(7)
	if last.Id != 7 || last.Status != 3 || !last.UpdatedAt.AsTime().Equal(sv.UpdatedAt) {
		t.Fatalf("new version: id %d status %d updated %s; want 7, 3, %s", last.Id, last.Status, last.UpdatedAt.AsTime(), sv.UpdatedAt)
	}
}

// killingBus stops the NATS server just before the at-th publish.
type killingBus struct {
	*pipeline.Conn
	at     int64
	n      atomic.Int64
	kill   func()
	killed chan struct{}
	once   sync.Once
}

func (k *killingBus) Publish(ctx context.Context, m pipeline.OutMsg) (pipeline.PubAck, error) {
	if k.n.Add(1) == k.at {
		k.once.Do(func() { k.kill(); close(k.killed) })
	}
	return k.Conn.Publish(ctx, m)
}

func TestCursorNotAdvancedPastUnpublishedWhenNATSDies(t *testing.T) {
	b := startBus(t)
	s := startSim(t, freshdesksim.Config{}, freshdesksim.GenerateOptions{New: 250})
	cfg := testConfig()
	cfg.Concurrency = 1 // publishes in feed order, so "the 150th" is well defined
	kb := &killingBus{Conn: b.conn, at: 150, kill: b.srv.Stop, killed: make(chan struct{})}
	f := newFetcher(t, b, cfg, fetcherOpts{src: s.adapter, bus: kb})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.PollOnce(ctx) }()
	select {
	case <-kb.killed:
	case err := <-done:
		t.Fatalf("poll ended before the server was stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the 150th publish never came")
	}
	cancel() // the publish is stuck retrying against a dead server
	if err := <-done; err == nil {
		t.Fatal("poll reported success although publishes failed")
	}
	if err := b.srv.Restart(); err != nil {
		t.Fatal(err)
	}

	ups := simUpdatedAts(t, s)
	var cur Cursor
	waitFor(t, "the cursor to be readable after the restart", func() bool {
		var err error
		cur, err = f.ReadCursor(context.Background())
		return err == nil
	})
	// Page 1 (100 tickets) was acknowledged; page 2 was not.
	if !cur.UpdatedAt.Equal(ups[99]) {
		t.Fatalf("cursor %s, want the end of page 1 %s (ticket 150 is at %s)", cur.UpdatedAt, ups[99], ups[149])
	}
	if n := b.count(t, pipeline.StreamTickets); n != 149 {
		t.Fatalf("TICKETS holds %d before the resume, want 149", n)
	}

	// A fresh replica resumes from the cursor: every version exactly once.
	f2 := newFetcher(t, b, testConfig(), fetcherOpts{src: s.adapter})
	if err := f2.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := sortedIDs(b.tickets(t))
	if len(ids) != 250 || !uniqueIDs(ids) {
		t.Fatalf("after the resume: %d versions, unique %v; want 250 distinct", len(ids), uniqueIDs(ids))
	}
	cur, err := f2.ReadCursor(context.Background())
	if err != nil || !cur.UpdatedAt.Equal(ups[249]) {
		t.Fatalf("cursor after resume %s (%v), want %s", cur.UpdatedAt, err, ups[249])
	}
}

// pagedFreshdesk is a minimal GET /api/v2/tickets that serves one ticket per
// page and refuses pages beyond 300, as Freshdesk does: enough to drive the
// real client into its re-anchoring with a few hundred tickets.
type pagedFreshdesk struct {
	tickets     []freshdesk.Ticket // ascending updated_at, id
	mu          sync.Mutex
	beyondCap   int
	anchors     map[string]bool
	requestsLog int
}

func (p *pagedFreshdesk) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v2/tickets" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	page := 1
	if v := q.Get("page"); v != "" {
		page, _ = strconv.Atoi(v)
	}
	p.mu.Lock()
	p.requestsLog++
	if page > 300 {
		p.beyondCap++
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"description":"Validation failed","errors":[{"field":"page","message":"You cannot access tickets beyond the 300th page. Please provide a smaller page number.","code":"invalid_value"}]}`))
		return
	}
	if page == 1 {
		p.anchors[q.Get("updated_since")] = true
	}
	p.mu.Unlock()
	since, _ := time.Parse(time.RFC3339, q.Get("updated_since"))
	var match []freshdesk.Ticket
	for _, t := range p.tickets {
		if !t.UpdatedAt.Before(since) {
			match = append(match, t)
		}
	}
	var out []freshdesk.Ticket
	if page-1 < len(match) {
		out = match[page-1 : page]
	}
	if page < len(match) {
		q.Set("page", strconv.Itoa(page+1))
		w.Header().Set("Link", fmt.Sprintf(`<http://%s%s?%s>; rel="next"`, r.Host, r.URL.Path, q.Encode()))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func TestPollReanchorsBeforeThe300PageCap(t *testing.T) {
	b := startBus(t)
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	fd := &pagedFreshdesk{anchors: map[string]bool{}}
	const n = 310
	for i := range n {
		at := base.Add(time.Duration(i) * time.Second)
		if i >= 298 && i <= 302 {
			at = base.Add(298 * time.Second) // five versions share the second at the cap
		}
		fd.tickets = append(fd.tickets, freshdesk.Ticket{ID: int64(i + 1), Subject: fmt.Sprintf("t%d", i+1),
			Status: 2, Priority: 1, Source: 1, Tags: []string{}, CreatedAt: at, UpdatedAt: at})
	}
	hs := httptest.NewServer(fd)
	t.Cleanup(hs.Close)
	c, err := freshdesk.New(freshdesk.Config{BaseURL: hs.URL, APIKey: "k", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Start = base.Add(-time.Minute).Format(time.RFC3339)
	f := newFetcher(t, b, cfg, fetcherOpts{src: freshdesk.NewAdapter(c)})
	if err := f.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := sortedIDs(b.tickets(t))
	if len(ids) != n || !uniqueIDs(ids) || ids[0] != 1 || ids[n-1] != n {
		t.Fatalf("published %d versions (unique %v), want %d distinct", len(ids), uniqueIDs(ids), n)
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if fd.beyondCap != 0 {
		t.Fatalf("%d requests beyond page 300", fd.beyondCap)
	}
	if len(fd.anchors) < 2 {
		t.Fatalf("the feed was anchored %d time(s); the 300-page cap needs a re-anchor", len(fd.anchors))
	}
	cur, err := f.ReadCursor(context.Background())
	if err != nil || !cur.UpdatedAt.Equal(fd.tickets[n-1].UpdatedAt) {
		t.Fatalf("cursor %s (%v), want %s", cur.UpdatedAt, err, fd.tickets[n-1].UpdatedAt)
	}
}

func TestMalformedAPITicketIsDeadLetteredNotFatal(t *testing.T) {
	b := startBus(t)
	now := time.Now().UTC().Truncate(time.Second)
	good := ticketsystem.Ticket{ID: 5, Subject: "ok", Status: 2, Priority: 1, Tags: []string{}, CreatedAt: now.Add(-time.Minute), UpdatedAt: now.Add(-time.Minute)}
	bad := ticketsystem.Ticket{ID: 0, Subject: "no id", Status: 2, UpdatedAt: now.Add(-30 * time.Second)}
	src := &fakeSource{pages: [][]ticketsystem.Ticket{{good, bad}}}
	f := newFetcher(t, b, testConfig(), fetcherOpts{src: src})
	if err := f.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := b.tickets(t)
	if len(ts) != 1 || ts[0].Id != 5 {
		t.Fatalf("published %d tickets, want only ticket 5", len(ts))
	}
	dlq := b.messages(t, pipeline.StreamDLQ)
	if len(dlq) != 1 || dlq[0].Subject != pipeline.DLQSubject(Stage, testAccount) {
		t.Fatalf("DLQ holds %d messages, want 1 on %s", len(dlq), pipeline.DLQSubject(Stage, testAccount))
	}
	var got ticketsystem.Ticket
	if err := json.Unmarshal(dlq[0].Data, &got); err != nil || got.Subject != "no id" {
		t.Fatalf("DLQ body %q (%v) is not the malformed ticket", dlq[0].Data, err)
	}
	cur, err := f.ReadCursor(context.Background())
	// The dead-lettered version counts as handled: the cursor moves past it.
	if err != nil || !cur.UpdatedAt.Equal(bad.UpdatedAt) {
		t.Fatalf("cursor %s (%v), want %s", cur.UpdatedAt, err, bad.UpdatedAt)
	}
}
