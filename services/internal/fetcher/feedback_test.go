package fetcher

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// TestFeedbackFromLedgerRecords plays the writer's ledger records against
// the simulator: a confirmation is counted in autotriage_feedback_total and
// kept in the fetcher's own bucket (the writer's record is not rewritten);
// a suggested value that autotriage's own in-flight write sets is no
// acceptance; an unreadable bookkeeping record is replaced, not fatal.
func TestFeedbackFromLedgerRecords(t *testing.T) {
	b := startBus(t)
	s := startSim(t, freshdesksim.Config{}, freshdesksim.GenerateOptions{New: 3})
	cfg := testConfig()
	cfg.TriageWhen = "always"
	cfg.TriageStatuses = ""
	reg := prometheus.NewRegistry()
	f := newFetcher(t, b, cfg, fetcherOpts{src: s.adapter, catalog: s.adapter, reg: reg})
	ctx := context.Background()
	poll := func() {
		t.Helper()
		if err := f.PollOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	poll()
	cat, err := s.adapter.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g1 := cat.Groups[0]
	now := time.Now().UTC()
	put := func(id int64, a ledger.Applied) ledger.Applied {
		t.Helper()
		tk, _ := s.Ticket(id)
		a.SourceUpdatedAt, a.WrittenUpdatedAt, a.At = tk.UpdatedAt, tk.UpdatedAt, now
		if _, err := b.ledger.PutApplied(ctx, testSystem, testAccount, id, a); err != nil {
			t.Fatal(err)
		}
		got, err := b.ledger.GetApplied(ctx, testSystem, testAccount, id)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	src := func(id int64) time.Time { tk, _ := s.Ticket(id); return tk.UpdatedAt }

	// Ticket 1: priority 3 applied by model m-1, then resolved.
	if err := s.AgentUpdate(1, map[string]any{"priority": 3}); err != nil {
		t.Fatal(err)
	}
	rec1 := put(1, ledger.Applied{ModelVersion: "v1", ModelID: "m-1", Fields: ledger.Fields{Priority: 3},
		Decided: []ledger.Decided{{Field: FieldPriority, Label: "P3", Value: "High", Target: ledger.Fields{Priority: 3},
			ModelID: "m-1", ModelVersion: "v1", SourceUpdatedAt: src(1)}}})
	// Ticket 2: group g1 suggested; a later write of autotriage's sets it
	// (its intent is recorded, its record not yet).
	put(2, ledger.Applied{ModelVersion: "v1", ModelID: "m-1",
		Suggested: []ledger.Decided{{Field: FieldGroup, Label: g1.Name, Value: g1.Name, Target: ledger.Fields{GroupID: g1.ID},
			ModelID: "m-1", ModelVersion: "v1", SourceUpdatedAt: src(2)}},
		Intent: &ledger.Intent{SourceUpdatedAt: src(2), Decision: "d", Fields: ledger.Fields{GroupID: g1.ID}, At: now}})
	// Ticket 3: an unreadable bookkeeping record.
	put(3, ledger.Applied{Fields: ledger.Fields{Type: "Question"},
		Decided: []ledger.Decided{{Field: FieldType, Label: "Question", Value: "Question", Target: ledger.Fields{Type: "Question"},
			ModelID: "m-1", SourceUpdatedAt: src(3)}}})
	if err := s.AgentUpdate(3, map[string]any{"type": "Question"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.state.Put(ctx, FeedbackKey(testSystem, testAccount, 3), []byte("{not json")); err != nil {
		t.Fatal(err)
	}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.AgentUpdate(1, map[string]any{"status": 4}))
	must(s.AgentUpdate(2, map[string]any{"group_id": g1.ID}))
	must(s.AgentUpdate(3, map[string]any{"status": 5}))
	poll()
	poll()

	var fb []*v1.Outcome
	for _, o := range b.outcomes(t) {
		if o.Kind == v1.OutcomeKind_OUTCOME_KIND_FEEDBACK {
			fb = append(fb, o)
		}
	}
	if len(fb) != 2 {
		t.Fatalf("%d feedback outcomes, want 2 (tickets 1 and 3): %v", len(fb), fb)
	}
	for _, o := range fb {
		if o.TicketId == 2 {
			t.Errorf("autotriage's own write of a suggested value counted as accepted: %+v", o.Feedback)
		}
		if o.Feedback.Verdict != v1.Verdict_VERDICT_CONFIRMED || o.ModelId != "m-1" {
			t.Errorf("feedback %+v (model %q), want confirmed by m-1", o.Feedback, o.ModelId)
		}
	}
	// The poll reads tickets in updated_at order, which within one second
	// is not the order of the updates above: find ticket 1's by id.
	var fb1 *v1.Outcome
	for _, o := range fb {
		if o.TicketId == 1 {
			fb1 = o
		}
	}
	if fb1 == nil || fb1.Feedback.Label != "P3" || fb1.Feedback.FinalValue != "High" || fb1.Feedback.Decision != v1.Decision_DECISION_APPLY {
		t.Fatalf("ticket 1 feedback %+v; want P3 applied, final value High", fb1)
	}
	for _, m := range b.messages(t, pipeline.StreamOutcomes) {
		if !strings.HasPrefix(m.Subject, "outcomes.") {
			continue
		}
		want1, want3 := pipeline.OutcomeSubject(testSystem, testAccount, 1), pipeline.OutcomeSubject(testSystem, testAccount, 3)
		if m.Subject != want1 && m.Subject != want3 {
			t.Errorf("feedback on %s; want %s or %s", m.Subject, want1, want3)
		}
	}
	if v, _ := gathered(t, reg, "autotriage_feedback_total", map[string]string{"field": FieldPriority, "verdict": "confirmed"}); v != 1 {
		t.Errorf("autotriage_feedback_total{priority,confirmed} = %v, want 1", v)
	}
	if _, ok := gathered(t, reg, "autotriage_feedback_total", map[string]string{"field": FieldGroup, "verdict": "accepted"}); !ok {
		t.Error("autotriage_feedback_total{group,accepted} does not exist from the start")
	}
	// Bookkeeping is the fetcher's; the writer's record is as it was.
	e, err := b.state.Get(ctx, FeedbackKey(testSystem, testAccount, 1))
	if err != nil {
		t.Fatal(err)
	}
	var r feedbackRecord
	if err := json.Unmarshal(e.Value, &r); err != nil || len(r.Reported) != 1 || !strings.HasPrefix(r.Reported[0].Decision, "priority@") ||
		r.Reported[0].Verdict != "confirmed" {
		t.Errorf("bookkeeping %s (%v)", e.Value, err)
	}
	if after, err := b.ledger.GetApplied(ctx, testSystem, testAccount, 1); err != nil || after.Revision != rec1.Revision {
		t.Errorf("the writer's record was rewritten: revision %d -> %d (%v)", rec1.Revision, after.Revision, err)
	}
	e3, err := b.state.Get(ctx, FeedbackKey(testSystem, testAccount, 3))
	if err != nil || !json.Valid(e3.Value) {
		t.Errorf("unreadable bookkeeping not replaced: %s (%v)", e3.Value, err)
	}
}
