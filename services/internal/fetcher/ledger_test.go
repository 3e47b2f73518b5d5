package fetcher

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
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
	wrev, err := b.ledger.PutApplied(ctx, testSystem, testAccount, 1, ledger.Applied{
		SourceUpdatedAt: src.UpdatedAt, WrittenUpdatedAt: w.UpdatedAt, ModelVersion: "m-1", At: time.Now(),
		Fields: ledger.Fields{GroupID: g1.ID, GroupName: g1.Name, Priority: int32(prio), Tags: []string{"autotriage"}},
	})
	if err != nil {
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
	// The fetcher keeps its bookkeeping in its own bucket: the writer's
	// record is left as the writer wrote it.
	a, err := b.ledger.GetApplied(ctx, testSystem, testAccount, 1)
	if err != nil || len(a.OverridesSeen) != 0 || a.Revision != wrev {
		t.Fatalf("the fetcher wrote the writer's record: OverridesSeen %v revision %d (%v)", a.OverridesSeen, a.Revision, err)
	}
	if rec := reportedIn(t, b, 1); !rec.has(overrideDecision(a, FieldGroup)) {
		t.Fatalf("the fetcher's record %+v does not hold the group override", rec)
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

// reportedIn reads the fetcher's record of what it reported for ticket id.
func reportedIn(t *testing.T, b *bus, id int64) feedbackRecord {
	t.Helper()
	e, err := b.state.Get(context.Background(), FeedbackKey(testSystem, testAccount, id))
	if err != nil {
		t.Fatalf("the fetcher's record of ticket %d: %v", id, err)
	}
	var rec feedbackRecord
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestOverridesOfOldAndNewRecordFormatsSideBySide runs a writer record of
// the format fetchers before the fetcher's own override record wrote
// (OverridesSeen set in the writer's record, nothing in the fetcher's
// bucket) beside one of the new format (the writer's record untouched by
// the fetcher), across a rolling upgrade: the override an old fetcher
// reported is not reported again; the new one is reported once; neither
// writer record is written by the new fetcher; a field the writer sets
// again (clearing OverridesSeen, as writers do) is watched again.
func TestOverridesOfOldAndNewRecordFormatsSideBySide(t *testing.T) {
	b := startBus(t)
	s := startSim(t, freshdesksim.Config{}, freshdesksim.GenerateOptions{New: 2})
	cfg := testConfig()
	cfg.TriageWhen = "always"
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
	cat, err := s.adapter.Catalog(ctx)
	if err != nil || len(cat.Groups) < 3 {
		t.Fatalf("catalog: %v (%d groups)", err, len(cat.Groups))
	}
	g1, g2 := cat.Groups[0], cat.Groups[1]
	for _, id := range []int64{1, 2} {
		src, _ := s.Ticket(id)
		w, err := s.adapter.UpdateTicket(ctx, id, ticketsystem.Update{GroupID: &g1.ID, AddTags: []string{"autotriage"}})
		if err != nil {
			t.Fatal(err)
		}
		d := ledger.Decided{Field: FieldGroup, Label: g1.Name, Value: g1.Name, Target: ledger.Fields{GroupID: g1.ID},
			ModelVersion: "m-1", SourceUpdatedAt: src.UpdatedAt, At: time.Now()}
		if _, err := b.ledger.PutApplied(ctx, testSystem, testAccount, id, ledger.Applied{
			SourceUpdatedAt: src.UpdatedAt, WrittenUpdatedAt: w.UpdatedAt, ModelVersion: "m-1", At: time.Now(),
			Fields:  ledger.Fields{GroupID: g1.ID, GroupName: g1.Name, Tags: []string{"autotriage"}},
			Decided: []ledger.Decided{d},
		}); err != nil {
			t.Fatal(err)
		}
	}
	poll()

	// A person moves both tickets; an old fetcher reported ticket 1's
	// override (OverridesSeen in the writer's record), then was replaced.
	for _, id := range []int64{1, 2} {
		if err := s.AgentUpdate(id, map[string]any{"group_id": g2.ID}); err != nil {
			t.Fatal(err)
		}
	}
	old, err := b.ledger.GetApplied(ctx, testSystem, testAccount, 1)
	if err != nil {
		t.Fatal(err)
	}
	old.OverridesSeen = []string{FieldGroup}
	if _, err := b.ledger.PutApplied(ctx, testSystem, testAccount, 1, old); err != nil {
		t.Fatal(err)
	}
	revs := map[int64]uint64{}
	for _, id := range []int64{1, 2} {
		a, err := b.ledger.GetApplied(ctx, testSystem, testAccount, id)
		if err != nil {
			t.Fatal(err)
		}
		revs[id] = a.Revision
	}
	poll()
	outs := b.outcomes(t)
	if len(outs) != 1 || outs[0].TicketId != 2 || outs[0].Override.GetField() != FieldGroup {
		t.Fatalf("OUTCOMES %v, want one group override of ticket 2 (ticket 1's was reported by the old fetcher)", outs)
	}
	// Later versions of both report nothing more.
	for _, id := range []int64{1, 2} {
		if err := s.AgentUpdate(id, map[string]any{"status": 3}); err != nil {
			t.Fatal(err)
		}
	}
	poll()
	if n := b.count(t, pipeline.StreamOutcomes); n != 1 {
		t.Fatalf("OUTCOMES holds %d after further changes, want still 1", n)
	}
	for _, id := range []int64{1, 2} {
		a, err := b.ledger.GetApplied(ctx, testSystem, testAccount, id)
		if err != nil || a.Revision != revs[id] {
			t.Fatalf("the fetcher wrote ticket %d's writer record (revision %d, was %d; %v)", id, a.Revision, revs[id], err)
		}
	}

	// A writer sets ticket 1's group again from a later version (clearing
	// OverridesSeen) and a person overrides it again: reported again, once.
	cur, _ := s.Ticket(1)
	g3 := cat.Groups[2]
	w, err := s.adapter.UpdateTicket(ctx, 1, ticketsystem.Update{GroupID: &g3.ID})
	if err != nil {
		t.Fatal(err)
	}
	a, err := b.ledger.GetApplied(ctx, testSystem, testAccount, 1)
	if err != nil {
		t.Fatal(err)
	}
	a.OverridesSeen = nil
	a.SourceUpdatedAt, a.WrittenUpdatedAt = cur.UpdatedAt, w.UpdatedAt
	a.Fields.GroupID, a.Fields.GroupName = g3.ID, g3.Name
	a.Decided = ledger.PutDecided(a.Decided, ledger.Decided{Field: FieldGroup, Label: g3.Name, Value: g3.Name,
		Target: ledger.Fields{GroupID: g3.ID}, ModelVersion: "m-1", SourceUpdatedAt: cur.UpdatedAt, At: time.Now()})
	if _, err := b.ledger.PutApplied(ctx, testSystem, testAccount, 1, a); err != nil {
		t.Fatal(err)
	}
	poll()
	if err := s.AgentUpdate(1, map[string]any{"group_id": g2.ID}); err != nil {
		t.Fatal(err)
	}
	poll()
	if err := s.AgentUpdate(1, map[string]any{"status": 2}); err != nil {
		t.Fatal(err)
	}
	poll()
	outs = b.outcomes(t)
	if len(outs) != 2 || outs[1].TicketId != 1 || outs[1].Override.GetAutotriageValue() != g3.Name {
		t.Fatalf("OUTCOMES %v, want ticket 1's second override (of %s) once", outs, g3.Name)
	}
}

// countingState counts the fetcher's operations on its own bucket's
// reported records (FeedbackKey).
type countingState struct {
	StateKV
	mu sync.Mutex
	by map[string]int
}

func (k *countingState) add(op, key string) {
	if !strings.HasPrefix(key, "feedback.") {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.by[op]++
}

func (k *countingState) take() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := k.by
	k.by = map[string]int{}
	return out
}

func (k *countingState) Get(ctx context.Context, key string) (pipeline.Entry, error) {
	k.add("get", key)
	return k.StateKV.Get(ctx, key)
}

func (k *countingState) Create(ctx context.Context, key string, val []byte) (uint64, error) {
	k.add("create", key)
	return k.StateKV.Create(ctx, key, val)
}

func (k *countingState) Update(ctx context.Context, key string, val []byte, rev uint64) (uint64, error) {
	k.add("update", key)
	return k.StateKV.Update(ctx, key, val, rev)
}

// TestKVOperationsOfOverrideBookkeeping pins what keeping the override
// bookkeeping in the fetcher's own record costs: reporting an override
// reads and creates the record (it updated the writer's record before: one
// compare-and-set on the record in hand); each later version of the
// overridden ticket reads it once (nothing before: OverridesSeen was in the
// writer's record, read anyway); a version that changes no field
// autotriage set costs nothing.
func TestKVOperationsOfOverrideBookkeeping(t *testing.T) {
	b := startBus(t)
	s := startSim(t, freshdesksim.Config{}, freshdesksim.GenerateOptions{New: 1})
	cfg := testConfig()
	cfg.TriageWhen = "always"
	cfg.TriageStatuses = ""
	st := &countingState{StateKV: b.state, by: map[string]int{}}
	f := newFetcher(t, b, cfg, fetcherOpts{src: s.adapter, catalog: s.adapter, state: st})
	ctx := context.Background()
	poll := func() map[string]int {
		t.Helper()
		if err := f.PollOnce(ctx); err != nil {
			t.Fatal(err)
		}
		return st.take()
	}
	poll()
	cat, err := s.adapter.Catalog(ctx)
	if err != nil || len(cat.Groups) < 2 {
		t.Fatalf("catalog: %v", err)
	}
	src, _ := s.Ticket(1)
	w, err := s.adapter.UpdateTicket(ctx, 1, ticketsystem.Update{GroupID: &cat.Groups[0].ID, AddTags: []string{"autotriage"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ledger.PutApplied(ctx, testSystem, testAccount, 1, ledger.Applied{
		SourceUpdatedAt: src.UpdatedAt, WrittenUpdatedAt: w.UpdatedAt, At: time.Now(),
		Fields: ledger.Fields{GroupID: cat.Groups[0].ID, Tags: []string{"autotriage"}},
	}); err != nil {
		t.Fatal(err)
	}
	if got := poll(); len(got) != 0 {
		t.Errorf("autotriage's own version: %v, want none", got)
	}
	if err := s.AgentUpdate(1, map[string]any{"group_id": cat.Groups[1].ID}); err != nil {
		t.Fatal(err)
	}
	if got := poll(); !mapsEqualInt(got, map[string]int{"get": 1, "create": 1}) {
		t.Errorf("reporting the override: %v, want a get and a create", got)
	}
	if err := s.AgentUpdate(1, map[string]any{"status": 3}); err != nil {
		t.Fatal(err)
	}
	if got := poll(); !mapsEqualInt(got, map[string]int{"get": 1}) {
		t.Errorf("a later version of the overridden ticket: %v, want one get", got)
	}
	if n := b.count(t, pipeline.StreamOutcomes); n != 1 {
		t.Errorf("OUTCOMES holds %d, want 1", n)
	}
}

func mapsEqualInt(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
