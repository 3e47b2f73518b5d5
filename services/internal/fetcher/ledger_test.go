package fetcher

import (
	"context"
	"slices"
	"testing"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// TestOwnWritesAreSkippedAndOverridesReportedOnce plays the writer against
// the simulator: autotriage sets group and priority on ticket 1 and adds a
// note, then a person changes the group.
func TestOwnWritesAreSkippedAndOverridesReportedOnce(t *testing.T) {
	b := startBus(t)
	s := startSim(t, freshdesksim.Config{}, freshdesksim.GenerateOptions{New: 3})
	cfg := testConfig()
	cfg.TriageWhen = "always" // only the ledger may keep a version out
	cfg.TriageStatuses = ""
	f := newFetcher(t, b, cfg, fetcherOpts{src: s.adapter, catalog: s.adapter})
	ctx := context.Background()
	poll := func() {
		t.Helper()
		if err := f.PollOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	poll()
	if n := b.count(t, pipeline.StreamTickets); n != 3 {
		t.Fatalf("TICKETS holds %d, want 3", n)
	}

	cat, err := s.adapter.Catalog(ctx)
	if err != nil || len(cat.Groups) < 2 {
		t.Fatalf("catalog: %v (%d groups)", err, len(cat.Groups))
	}
	g1, g2 := cat.Groups[0], cat.Groups[1]
	src, _ := s.Ticket(1)

	// The writer applies group and priority with its tag and records it.
	prio := 3
	w, err := s.adapter.UpdateTicket(ctx, 1, ticketsystem.Update{GroupID: &g1.ID, Priority: &prio, AddTags: []string{"autotriage"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ledger.PutApplied(ctx, testSystem, testAccount, 1, ledger.Applied{
		SourceUpdatedAt: src.UpdatedAt, WrittenUpdatedAt: w.UpdatedAt, ModelVersion: "m-1", At: time.Now(),
		Fields: ledger.Fields{GroupID: g1.ID, GroupName: g1.Name, Priority: int32(prio), Tags: []string{"autotriage"}},
	}); err != nil {
		t.Fatal(err)
	}
	poll()
	if n := b.count(t, pipeline.StreamTickets); n != 3 {
		t.Fatalf("autotriage's own version was published: TICKETS holds %d, want 3", n)
	}

	// Its note bumps updated_at again without changing anything else.
	if _, err := s.adapter.AddNote(ctx, 1, ticketsystem.Note{BodyHTML: "<p>autotriage: group " + g1.Name + "</p>"}); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Ticket(1); !after.UpdatedAt.After(w.UpdatedAt) {
		t.Fatalf("the note did not bump updated_at (%s, written %s)", after.UpdatedAt, w.UpdatedAt)
	}
	poll()
	if n := b.count(t, pipeline.StreamTickets); n != 3 {
		t.Fatalf("a version differing only by autotriage's note was published: TICKETS holds %d, want 3", n)
	}

	// A person moves the ticket to another group: one override outcome.
	if err := s.AgentUpdate(1, map[string]any{"group_id": g2.ID}); err != nil {
		t.Fatal(err)
	}
	poll()
	outs := b.outcomes(t)
	if len(outs) != 1 {
		t.Fatalf("OUTCOMES holds %d, want 1 override", len(outs))
	}
	o := outs[0]
	if o.Kind != v1.OutcomeKind_OUTCOME_KIND_OVERRIDE || o.TicketId != 1 || o.Override == nil ||
		o.Override.Field != FieldGroup || o.Override.AutotriageValue != g1.Name || o.Override.HumanValue != g2.Name ||
		o.Override.ModelVersion != "m-1" || o.Override.ObservedAt == nil {
		t.Fatalf("override outcome %+v", o)
	}
	msgs := b.messages(t, pipeline.StreamOutcomes)
	if msgs[0].Subject != pipeline.OutcomeSubject(testSystem, testAccount, 1) {
		t.Fatalf("override on %s", msgs[0].Subject)
	}
	a, err := b.ledger.GetApplied(ctx, testSystem, testAccount, 1)
	if err != nil || !slices.Equal(a.OverridesSeen, []string{FieldGroup}) {
		t.Fatalf("ledger OverridesSeen %v (%v), want [group]", a.OverridesSeen, err)
	}
	if n := b.count(t, pipeline.StreamTickets); n != 3 {
		t.Fatalf("the overridden version was sent to classification: TICKETS holds %d", n)
	}

	// Later changes do not report the same override again.
	if err := s.AgentUpdate(1, map[string]any{"status": 3}); err != nil {
		t.Fatal(err)
	}
	poll()
	if n := b.count(t, pipeline.StreamOutcomes); n != 1 {
		t.Fatalf("OUTCOMES holds %d after a further change, want still 1", n)
	}

	// Control: the same kind of change on a ticket autotriage never wrote is published.
	if err := s.AgentUpdate(2, map[string]any{"status": 3}); err != nil {
		t.Fatal(err)
	}
	poll()
	if n := b.count(t, pipeline.StreamTickets); n != 4 {
		t.Fatalf("TICKETS holds %d after a person changed ticket 2, want 4", n)
	}
}

func TestFilterSkipsTicketsThatDoNotNeedTriage(t *testing.T) {
	b := startBus(t)
	now := time.Now().UTC().Truncate(time.Second)
	mk := func(id int64, mod func(*ticketsystem.Ticket)) ticketsystem.Ticket {
		tk := ticketsystem.Ticket{ID: id, Subject: "s", Status: 2, Priority: 1, Tags: []string{},
			CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Duration(100-id) * time.Second)}
		mod(&tk)
		return tk
	}
	src := &fakeSource{pages: [][]ticketsystem.Ticket{{
		mk(1, func(*ticketsystem.Ticket) {}),                                                   // open, no group, untagged: triage
		mk(2, func(t *ticketsystem.Ticket) { t.GroupID = 9; t.Tags = []string{"autotriage"} }), // done
		mk(3, func(t *ticketsystem.Ticket) { t.GroupID = 9 }),                                  // untagged: triage
		mk(4, func(t *ticketsystem.Ticket) { t.Status = 5 }),                                   // closed
		mk(5, func(t *ticketsystem.Ticket) { t.Spam = true }),                                  // spam
		mk(6, func(t *ticketsystem.Ticket) { t.Status = 3; t.Tags = []string{"autotriage"} }),  // pending, no group: triage
	}}}
	f := newFetcher(t, b, testConfig(), fetcherOpts{src: src})
	if err := f.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := sortedIDs(b.tickets(t))
	if !slices.Equal(ids, []int64{1, 3, 6}) {
		t.Fatalf("published %v, want [1 3 6]", ids)
	}
}
