package writer

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

func TestApplySetsEveryFieldWithOnePUT(t *testing.T) {
	h := newHarness(t, options{})
	h.run()
	id := h.ticket(freshdesksim.NewTicket{Tags: []string{"vip"}})
	pred := h.prediction(id, apply(FieldGroup, "Billing"), apply(FieldType, "Incident"),
		apply(FieldPriority, "High"), tags(v1.Decision_DECISION_APPLY, "invoice", "vip"))
	h.publish(pred, "p1")
	o := only(t, h.settle(1), id)

	st := h.simTicket(id)
	if st.GroupID != h.groupID("Billing") || st.Type != "Incident" || st.Priority != 3 {
		t.Errorf("ticket after write: group %d type %q priority %d", st.GroupID, st.Type, st.Priority)
	}
	if want := []string{"vip", "invoice", "autotriage"}; !slices.Equal(st.Tags, want) {
		t.Errorf("tags %v, want %v (merged with the existing ones, plus the autotriage tag)", st.Tags, want)
	}
	if n := calls(h.sim, "tickets.update", 0); n != 1 {
		t.Errorf("%d PUTs, want exactly 1 for all fields", n)
	}
	if n := len(h.sim.Notes(id)); n != 1 {
		t.Errorf("%d notes, want 1", n)
	}
	g := wantAction(t, o, FieldGroup, v1.Action_ACTION_APPLIED, ReasonApplied)
	if g.PreviousValue != "" || g.NewValue != "Billing" {
		t.Errorf("group previous %q new %q", g.PreviousValue, g.NewValue)
	}
	p := wantAction(t, o, FieldPriority, v1.Action_ACTION_APPLIED, ReasonApplied)
	if p.PreviousValue != "Low" || p.NewValue != "High" {
		t.Errorf("priority previous %q new %q", p.PreviousValue, p.NewValue)
	}
	wantAction(t, o, FieldType, v1.Action_ACTION_APPLIED, ReasonApplied)
	wantAction(t, o, FieldTags, v1.Action_ACTION_APPLIED, ReasonApplied)
	if !o.NoteWritten || o.Error != "" || o.Kind != v1.OutcomeKind_OUTCOME_KIND_DECISION {
		t.Errorf("outcome note_written %v error %q kind %v", o.NoteWritten, o.Error, o.Kind)
	}
	// note + PUT, one credit each: the catalog was read (and the label map
	// checked) when the writer started, and the ticket is not read again by
	// default.
	if o.ApiCredits != 2 {
		t.Errorf("api_credits %d, want 2", o.ApiCredits)
	}
	if n := calls(h.sim, "tickets.view", 0); n != 0 {
		t.Errorf("%d GET /tickets/{id}, want none without AUTOTRIAGE_WRITER_REREAD", n)
	}
	if o.LatencySeconds < 0 || o.Prediction.GetTicketId() != id {
		t.Errorf("latency %v, prediction %v", o.LatencySeconds, o.Prediction)
	}
	// The ledger names the version the PUT produced, which the fetcher skips.
	rec, err := h.ledger.GetApplied(context.Background(), testSystem, testAccount, id)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.IsOwnVersion(st.UpdatedAt) || !rec.SourceUpdatedAt.Equal(pred.TicketUpdatedAt.AsTime()) {
		t.Errorf("ledger %+v; ticket updated_at %v", rec, st.UpdatedAt)
	}
	if rec.Fields.GroupID != h.groupID("Billing") || rec.Fields.Type != "Incident" || rec.Fields.Priority != 3 ||
		!slices.Equal(rec.Fields.Tags, []string{"invoice"}) { // vip was the person's: not autotriage's write
		t.Errorf("ledger fields %+v", rec.Fields)
	}
	if v := testutil.ToFloat64(h.stage.metrics.actions.WithLabelValues(FieldGroup, "applied")); v != 1 {
		t.Errorf("actions{group,applied} = %v", v)
	}
	if v := testutil.ToFloat64(h.stage.metrics.decisions.WithLabelValues(FieldGroup, "apply")); v != 1 {
		t.Errorf("decisions{group,apply} = %v", v)
	}
	if n := testutil.CollectAndCount(h.stage.metrics.endToEnd); n != 1 {
		t.Errorf("end-to-end histogram has %d series", n)
	}
}

func TestShadowAndAbstainWriteNothing(t *testing.T) {
	h := newHarness(t, options{})
	h.runRecorded() // the catalog read at start is done before the count
	a := h.ticket(freshdesksim.NewTicket{})
	b := h.ticket(freshdesksim.NewTicket{})
	h.sim.ResetStats()
	h.publish(h.prediction(a, field(FieldGroup, v1.Decision_DECISION_SHADOW, "Billing", 0.99),
		field(FieldType, v1.Decision_DECISION_ABSTAIN, "", 0)), "a")
	// A backfill version is shadow-only whatever the policy decided.
	pb := h.prediction(b, apply(FieldGroup, "Billing"))
	pb.Ticket.ShadowOnly = true
	h.publish(pb, "b")
	outs := h.settle(2)

	if st := h.sim.Stats(); st.Total.Calls != 0 {
		t.Errorf("shadow mode made %d API calls: %v", st.Total.Calls, st.Endpoints)
	}
	oa := only(t, outs, a)
	wantAction(t, oa, FieldGroup, v1.Action_ACTION_SHADOWED, ReasonShadow)
	wantAction(t, oa, FieldType, v1.Action_ACTION_ABSTAINED, "")
	wantAction(t, only(t, outs, b), FieldGroup, v1.Action_ACTION_SHADOWED, ReasonShadowOnly)
	if oa.NoteWritten || oa.ApiCredits != 0 {
		t.Errorf("shadow outcome note %v credits %d", oa.NoteWritten, oa.ApiCredits)
	}
	if _, err := h.ledger.GetApplied(context.Background(), testSystem, testAccount, a); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("shadow prediction left a ledger record: %v", err)
	}
}

func TestSuggestWritesExactlyOneNote(t *testing.T) {
	h := newHarness(t, options{})
	h.run()
	id := h.ticket(freshdesksim.NewTicket{})
	// This one already carries the tag: the note is still followed by a PUT
	// (of the unchanged tags), whose answer names the version autotriage
	// produced; nothing reads the ticket.
	tagged := h.ticket(freshdesksim.NewTicket{Tags: []string{"autotriage"}})
	h.publish(h.prediction(id, suggest(FieldGroup, "Billing"), suggest(FieldType, "Refund")), "s1")
	h.publish(h.prediction(tagged, suggest(FieldGroup, "Shipping")), "s2")
	outs := h.settle(2)

	notes := h.sim.Notes(id)
	if len(notes) != 1 {
		t.Fatalf("%d notes, want 1", len(notes))
	}
	n := notes[0]
	for _, want := range []string{"Billing", "Refund", "70%", "suggested", "Runner Up", "2025-03-01 test", "autotriage decision "} {
		if !strings.Contains(n.Body, want) {
			t.Errorf("note lacks %q: %s", want, n.Body)
		}
	}
	if !n.Private {
		t.Error("note is public")
	}
	st := h.simTicket(id)
	if st.GroupID != 0 || st.Type != "" {
		t.Errorf("suggest changed the ticket: group %d type %q", st.GroupID, st.Type)
	}
	if !slices.Contains(st.Tags, "autotriage") {
		t.Errorf("tags %v lack the autotriage tag", st.Tags)
	}
	o := only(t, outs, id)
	wantAction(t, o, FieldGroup, v1.Action_ACTION_SUGGESTED, ReasonSuggested)
	wantAction(t, o, FieldType, v1.Action_ACTION_SUGGESTED, ReasonSuggested)
	if !o.NoteWritten {
		t.Error("note_written false")
	}
	for _, tid := range []int64{id, tagged} {
		rec, err := h.ledger.GetApplied(context.Background(), testSystem, testAccount, tid)
		if err != nil {
			t.Fatal(err)
		}
		if st := h.simTicket(tid); !rec.IsOwnVersion(st.UpdatedAt) {
			t.Errorf("ticket %d: ledger written version %v, ticket at %v", tid, rec.WrittenUpdatedAt, st.UpdatedAt)
		}
		if f := rec.Fields; f.GroupID != 0 || f.Type != "" || f.Priority != 0 || len(f.Tags) != 0 {
			t.Errorf("suggestions recorded as set fields: %+v", rec.Fields)
		}
	}
	if st := h.simTicket(tagged); !slices.Equal(st.Tags, []string{"autotriage"}) {
		t.Errorf("tagged ticket's tags %v, want [autotriage]", st.Tags)
	}
	// Exactly note + PUT per ticket, and no read.
	if n, p, v := calls(h.sim, "tickets.notes", 0), calls(h.sim, "tickets.update", 0), calls(h.sim, "tickets.view", 0); n != 2 || p != 2 || v != 0 {
		t.Errorf("%d notes, %d PUTs, %d reads for two suggestions; want 2, 2, 0", n, p, v)
	}
	for _, tid := range []int64{id, tagged} {
		// catalog (2, only for the first) + note + PUT
		if c := only(t, outs, tid).ApiCredits; c != 2 && c != 4 {
			t.Errorf("ticket %d: api_credits %d", tid, c)
		}
	}
}

func TestNotesDisabledSuggestionIsNotDelivered(t *testing.T) {
	h := newHarness(t, options{writer: func(c *Config) { c.Notes = false }})
	h.run()
	id := h.ticket(freshdesksim.NewTicket{})
	h.publish(h.prediction(id, suggest(FieldGroup, "Billing"), apply(FieldType, "Question")), "n1")
	o := only(t, h.settle(1), id)
	wantAction(t, o, FieldGroup, v1.Action_ACTION_SKIPPED, ReasonNotesDisabled)
	wantAction(t, o, FieldType, v1.Action_ACTION_APPLIED, ReasonApplied)
	if len(h.sim.Notes(id)) != 0 || o.NoteWritten {
		t.Error("a note was written with notes disabled")
	}
	// An apply without notes is one PUT (after the catalog, cached later).
	if p, v, total := calls(h.sim, "tickets.update", 0), calls(h.sim, "tickets.view", 0), h.sim.Stats().Total.Calls; p != 1 || v != 0 || total != 3 {
		t.Errorf("%d PUTs, %d reads, %d calls in all; want 1, 0, 3 (ticket_fields, groups, PUT)", p, v, total)
	}
}

func TestLabelNotInCatalogIsNeverWritten(t *testing.T) {
	h := newHarness(t, options{writer: func(c *Config) { c.LabelMap = "group:Billing Dept=Billing" }})
	h.run()
	id := h.ticket(freshdesksim.NewTicket{})
	renamed := h.ticket(freshdesksim.NewTicket{})
	h.publish(h.prediction(id, apply(FieldGroup, "Space Travel"), apply(FieldType, "Teleport"), apply(FieldPriority, "Low-ish"),
		apply(FieldTags, "orbit")), "c1")
	h.publish(h.prediction(renamed, apply(FieldGroup, "Billing Dept"), apply(FieldPriority, "4")), "c2")
	outs := h.settle(2)

	o := only(t, outs, id)
	wantAction(t, o, FieldGroup, v1.Action_ACTION_SKIPPED, `label "Space Travel" not in catalog`)
	wantAction(t, o, FieldType, v1.Action_ACTION_SKIPPED, `label "Teleport" not in catalog`)
	wantAction(t, o, FieldPriority, v1.Action_ACTION_SKIPPED, `label "Low-ish" not in catalog`)
	wantAction(t, o, FieldTags, v1.Action_ACTION_APPLIED, ReasonApplied) // tags are free-form
	st := h.simTicket(id)
	if st.GroupID != 0 || st.Type != "" || st.Priority != 1 {
		t.Errorf("unknown labels reached the ticket: %+v", st)
	}
	if !slices.Equal(st.Tags, []string{"orbit", "autotriage"}) {
		t.Errorf("tags %v", st.Tags)
	}
	o2 := only(t, outs, renamed)
	wantAction(t, o2, FieldGroup, v1.Action_ACTION_APPLIED, ReasonApplied)
	wantAction(t, o2, FieldPriority, v1.Action_ACTION_APPLIED, ReasonApplied)
	if st := h.simTicket(renamed); st.GroupID != h.groupID("Billing") || st.Priority != 4 {
		t.Errorf("mapped label / numeric priority not applied: group %d priority %d", st.GroupID, st.Priority)
	}
}

func TestRedeliveryWritesNoteOnceAndDoesNotRepeatThePUT(t *testing.T) {
	h := newHarness(t, options{})
	h.run()
	id := h.ticket(freshdesksim.NewTicket{})
	pred := h.prediction(id, apply(FieldGroup, "Billing"), suggest(FieldType, "Question"))
	h.publish(pred, "first")
	h.settle(1)
	// The same prediction again (a replayed or re-published message).
	h.publish(pred, "second")
	waitFor(t, "the second delivery to be handled", func() bool {
		st, err := h.conn.ConsumerStats(context.Background(), pipeline.StreamPredictions, pipeline.ConsumerWriter)
		return err == nil && st.AckFloor == 2 && st.AckPending == 0
	})
	// And once more straight through the handler.
	if err := h.handle(pred, 1); err != nil {
		t.Fatal(err)
	}
	if n := len(h.sim.Notes(id)); n != 1 {
		t.Errorf("%d notes after redeliveries, want 1", n)
	}
	if n := calls(h.sim, "tickets.update", 0); n != 1 {
		t.Errorf("%d PUTs after redeliveries, want 1", n)
	}
	o := only(t, h.outcomes(), id)
	wantAction(t, o, FieldGroup, v1.Action_ACTION_APPLIED, ReasonApplied)
}

// A writer claimed the note in the ticket's record (with its intent), posted
// it and died before its PUT and its record. The next delivery finds the
// marker, within the lease or after it, and does not post again.
func TestCrashBetweenNoteAndLedgerDoesNotWriteASecondNote(t *testing.T) {
	for _, c := range []struct {
		name string
		age  time.Duration
	}{{"within the lease", 0}, {"past the lease", 2 * time.Hour}} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, options{writer: func(cfg *Config) { cfg.NoteLease = time.Hour }})
			ctx := context.Background()
			id := h.ticket(freshdesksim.NewTicket{})
			pred := h.prediction(id, apply(FieldGroup, "Billing"))
			hash := DecisionHash(pred)
			h.claimNote(id, ledger.Note{Decision: hash, State: ledger.NotePending, At: time.Now().Add(-c.age)}, &ledger.Intent{
				SourceUpdatedAt: pred.TicketUpdatedAt.AsTime(), Decision: hash,
				Fields: ledger.Fields{GroupID: h.groupID("Billing"), GroupName: "Billing"}, At: time.Now()})
			if _, err := freshdeskAdapter(h).AddNote(ctx, id, ticketsystem.Note{BodyHTML: "<div>earlier note</div><p>" + Marker(hash) + "</p>"}); err != nil {
				t.Fatal(err)
			}
			if err := h.handle(pred, 2); err != nil {
				t.Fatal(err)
			}
			if n := len(h.sim.Notes(id)); n != 1 || calls(h.sim, "tickets.notes", 0) != 1 {
				t.Errorf("%d notes, %d note POSTs; want the crashed writer's one only", n, calls(h.sim, "tickets.notes", 0))
			}
			if st := h.simTicket(id); st.GroupID != h.groupID("Billing") {
				t.Errorf("group %d not applied after recovery", st.GroupID)
			}
			if n := h.noteState(id, hash); n.State != ledger.NoteWritten || n.ConversationID == 0 {
				t.Errorf("note state %+v, want written with the conversation id", n)
			}
			o := only(t, h.outcomes(), id)
			wantAction(t, o, FieldGroup, v1.Action_ACTION_APPLIED, ReasonApplied)
			if !o.NoteWritten {
				t.Error("outcome note_written false")
			}
		})
	}
}

func TestPendingNoteWithoutMarkerWaitsForTheLeaseThenPosts(t *testing.T) {
	h := newHarness(t, options{writer: func(c *Config) { c.NoteLease = time.Hour }})
	id := h.ticket(freshdesksim.NewTicket{})
	pred := h.prediction(id, suggest(FieldGroup, "Billing"))
	hash := DecisionHash(pred)
	h.claimNote(id, ledger.Note{Decision: hash, State: ledger.NotePending, At: time.Now()}, nil)
	// Another writer may be posting it right now: wait, do not race it.
	err := h.handle(pred, 1)
	if d, ok := pipeline.RetryDelay(err); !ok || d <= 0 || d > time.Hour {
		t.Fatalf("handle = %v, want a retry after the lease", err)
	}
	if n := len(h.sim.Notes(id)); n != 0 || h.count(pipeline.StreamOutcomes) != 0 {
		t.Fatalf("%d notes / outcomes published while the lease holds", n)
	}
	// The lease has run out (the pending writer is gone) and no note arrived.
	h.claimNote(id, ledger.Note{Decision: hash, State: ledger.NotePending, At: time.Now().Add(-2 * time.Hour)}, nil)
	if err := h.handle(pred, 2); err != nil {
		t.Fatal(err)
	}
	if n := len(h.sim.Notes(id)); n != 1 {
		t.Errorf("%d notes, want 1", n)
	}
	if n := h.noteState(id, hash); n.State != ledger.NoteWritten || n.ConversationID == 0 {
		t.Errorf("note state %+v, want written", n)
	}
	wantAction(t, only(t, h.outcomes(), id), FieldGroup, v1.Action_ACTION_SUGGESTED, ReasonSuggested)
}

// TestPersonChangesGroupBetweenFetchAndWrite: the fetcher publishes a new
// ticket, then a person sets its group before the writer handles the
// prediction made from the published version. By default the writer knows
// of the change only through the fetcher's observation of the newer version
// (its next poll, or a webhook on the update); with AUTOTRIAGE_WRITER_REREAD
// its own GET finds it even when the fetcher saw nothing.
func TestPersonChangesGroupBetweenFetchAndWrite(t *testing.T) {
	for _, c := range []struct {
		name             string
		reread, observed bool
		reads            int64
	}{
		{"fetcher observed the change", false, true, 0},
		{"reread finds an unobserved change", true, false, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, options{writer: func(cfg *Config) { cfg.Reread = c.reread }})
			obs := h.observer()
			id := h.ticket(freshdesksim.NewTicket{})
			// A second ticket whose group and priority a person had set before
			// the fetcher read it.
			set := h.ticket(freshdesksim.NewTicket{})
			shipping := h.groupID("Shipping")
			if err := h.sim.AgentUpdate(set, map[string]any{"group_id": shipping, "priority": 2}); err != nil {
				t.Fatal(err)
			}
			obs.poll()
			pub := h.published()
			pred := predictionFrom(pub[id][0], apply(FieldGroup, "Billing"), apply(FieldPriority, "High"))
			predSet := predictionFrom(pub[set][0], apply(FieldGroup, "Billing"), apply(FieldPriority, "Urgent"))

			if err := h.sim.AgentUpdate(id, map[string]any{"group_id": shipping}); err != nil {
				t.Fatal(err)
			}
			if c.observed {
				obs.poll()
				if sv := h.seen(id); sv.GroupID != shipping || !sv.UpdatedAt.After(pred.TicketUpdatedAt.AsTime()) {
					t.Fatalf("the fetcher did not record the person's version: %+v", sv)
				}
			} else if sv := h.seen(id); sv.GroupID != 0 {
				t.Fatalf("seen record %+v: the change must be unobserved here", sv)
			}
			h.sim.ResetStats()
			h.run()
			h.publish(pred, "p1")
			h.publish(predSet, "p2")
			outs := h.settle(2)

			o := only(t, outs, id)
			g := wantAction(t, o, FieldGroup, v1.Action_ACTION_SKIPPED, ReasonPersonChanged)
			if g.PreviousValue != "Shipping" {
				t.Errorf("previous value %q", g.PreviousValue)
			}
			wantAction(t, o, FieldPriority, v1.Action_ACTION_APPLIED, ReasonApplied)
			if st := h.simTicket(id); st.GroupID != shipping || st.Priority != 3 {
				t.Errorf("group %d priority %d: the person's group must stay, the priority be set", st.GroupID, st.Priority)
			}
			o2 := only(t, outs, set)
			wantAction(t, o2, FieldGroup, v1.Action_ACTION_SKIPPED, ReasonPersonSet)
			wantAction(t, o2, FieldPriority, v1.Action_ACTION_SKIPPED, ReasonPersonSet)
			if st := h.simTicket(set); st.GroupID != shipping || st.Priority != 2 || slices.Contains(st.Tags, "autotriage") {
				t.Errorf("a person's values were overwritten: %+v", st)
			}
			if n := calls(h.sim, "tickets.view", 0); n != c.reads {
				t.Errorf("%d ticket reads by the writer, want %d", n, c.reads)
			}
			// The writer recorded the version its PUT produced as seen.
			if sv, st := h.seen(id), h.simTicket(id); !sv.UpdatedAt.Equal(st.UpdatedAt) || sv.Priority != 3 {
				t.Errorf("seen %+v after the write, ticket at %v", sv, st.UpdatedAt)
			}
		})
	}
}

// TestUnobservedChangeIsTheDocumentedWindow pins down the trade the default
// makes: a change no observation reached before the PUT (no webhook, no poll
// in between) is not known to the writer, which writes over it. This is
// the window AUTOTRIAGE_WRITER_REREAD narrows (README, "No-clobber model").
func TestUnobservedChangeIsTheDocumentedWindow(t *testing.T) {
	h := newHarness(t, options{})
	obs := h.observer()
	id := h.ticket(freshdesksim.NewTicket{})
	obs.poll()
	pred := predictionFrom(h.published()[id][0], apply(FieldGroup, "Billing"))
	if err := h.sim.AgentUpdate(id, map[string]any{"group_id": h.groupID("Shipping")}); err != nil {
		t.Fatal(err)
	}
	if err := h.handle(pred, 1); err != nil {
		t.Fatal(err)
	}
	wantAction(t, only(t, h.outcomes(), id), FieldGroup, v1.Action_ACTION_APPLIED, ReasonApplied)
	if calls(h.sim, "tickets.view", 0) != 0 {
		t.Error("the writer read the ticket without AUTOTRIAGE_WRITER_REREAD")
	}
	// A webhook on the update closes the window: the same scenario, observed.
	id2 := h.ticket(freshdesksim.NewTicket{})
	obs.poll()
	pred2 := predictionFrom(h.published()[id2][0], apply(FieldGroup, "Billing"))
	if err := h.sim.AgentUpdate(id2, map[string]any{"group_id": h.groupID("Shipping")}); err != nil {
		t.Fatal(err)
	}
	obs.webhook(id2)
	if err := h.handle(pred2, 1); err != nil {
		t.Fatal(err)
	}
	wantAction(t, only(t, h.outcomes(), id2), FieldGroup, v1.Action_ACTION_SKIPPED, ReasonPersonChanged)
	if st := h.simTicket(id2); st.GroupID != h.groupID("Shipping") {
		t.Errorf("group %d: the observed change was overwritten", st.GroupID)
	}
}

// TestTagsMergeWithTheNewestKnownVersion: Freshdesk replaces the whole tag
// set on a PUT, so the writer sends the union with the newest tags it knows
// of: a person's tag observed after the predicted version stays, and so do
// the tags of autotriage's own earlier write when a later prediction was
// made from a version older than that write.
func TestTagsMergeWithTheNewestKnownVersion(t *testing.T) {
	h := newHarness(t, options{writer: func(c *Config) { c.Notes = false }})
	obs := h.observer()
	id := h.ticket(freshdesksim.NewTicket{Tags: []string{"vip"}})
	obs.poll()
	pred := predictionFrom(h.published()[id][0], tags(v1.Decision_DECISION_APPLY, "invoice"))
	if err := h.sim.AgentUpdate(id, map[string]any{"tags": []any{"vip", "escalated"}}); err != nil {
		t.Fatal(err)
	}
	obs.poll()
	if err := h.handle(pred, 1); err != nil {
		t.Fatal(err)
	}
	if st := h.simTicket(id); !slices.Equal(st.Tags, []string{"vip", "escalated", "invoice", "autotriage"}) {
		t.Errorf("tags %v: the person's observed tag must stay", st.Tags)
	}

	// Two versions, two predictions; the later one (made from V2, before
	// autotriage's write of the first) must not drop the first one's tags.
	id2 := h.ticket(freshdesksim.NewTicket{})
	p1 := h.prediction(id2, tags(v1.Decision_DECISION_APPLY, "billing"))
	if err := h.sim.AgentUpdate(id2, map[string]any{"status": 3}); err != nil {
		t.Fatal(err)
	}
	p2 := h.prediction(id2, tags(v1.Decision_DECISION_APPLY, "refund"), apply(FieldPriority, "High"))
	if err := h.handle(p1, 1); err != nil {
		t.Fatal(err)
	}
	if err := h.handle(p2, 1); err != nil {
		t.Fatal(err)
	}
	st := h.simTicket(id2)
	if !slices.Equal(st.Tags, []string{"billing", "autotriage", "refund"}) || st.Priority != 3 {
		t.Errorf("tags %v priority %d: the first write's tags were dropped", st.Tags, st.Priority)
	}
	if n := calls(h.sim, "tickets.view", 0); n != 0 {
		t.Errorf("%d ticket reads", n)
	}
}

func TestOlderPredictionNeverOverwritesANewerOne(t *testing.T) {
	h := newHarness(t, options{})
	h.run()
	id := h.ticket(freshdesksim.NewTicket{})
	older := h.prediction(id, apply(FieldGroup, "Sales"))
	newer := h.prediction(id, apply(FieldGroup, "Billing"))
	newer.TicketUpdatedAt = timeAfter(older, time.Minute) // a later version of the ticket
	newer.Ticket.UpdatedAt = newer.TicketUpdatedAt
	h.publish(newer, "newer")
	h.settle(1)
	h.publish(older, "older")
	outs := h.settle(2)
	if len(outs[id]) != 2 {
		t.Fatalf("%d outcomes, want one per prediction", len(outs[id]))
	}
	for _, o := range outs[id] {
		if o.TicketUpdatedAt.AsTime().Equal(older.TicketUpdatedAt.AsTime()) {
			wantAction(t, o, FieldGroup, v1.Action_ACTION_SKIPPED, ReasonNewerApplied)
		} else {
			wantAction(t, o, FieldGroup, v1.Action_ACTION_APPLIED, ReasonApplied)
		}
	}
	if st := h.simTicket(id); st.GroupID != h.groupID("Billing") {
		t.Errorf("group %d, want the newer prediction's", st.GroupID)
	}
}

func TestServerErrorsAndUnknownNoteOutcomesStillLandOnce(t *testing.T) {
	h := newHarness(t, options{})
	// Five PUT failures exhaust the client's retries once; the note's 5xx
	// leaves its outcome unknown, which the writer resolves by the marker.
	h.sim.SetFault("tickets.update", freshdesksim.Fault{Status: 503, Burst: 7})
	h.sim.SetFault("tickets.notes", freshdesksim.Fault{Status: 500, Burst: 1})
	h.run()
	var ids []int64
	for i := range 3 {
		id := h.ticket(freshdesksim.NewTicket{})
		ids = append(ids, id)
		h.publish(h.prediction(id, apply(FieldGroup, "Billing"), apply(FieldType, "Problem")), "e"+string(rune('a'+i)))
	}
	outs := h.settle(3)
	for _, id := range ids {
		o := only(t, outs, id)
		wantAction(t, o, FieldGroup, v1.Action_ACTION_APPLIED, ReasonApplied)
		if st := h.simTicket(id); st.GroupID != h.groupID("Billing") || st.Type != "Problem" {
			t.Errorf("ticket %d not updated: %+v", id, st)
		}
		if n := len(h.sim.Notes(id)); n != 1 {
			t.Errorf("ticket %d has %d notes, want 1", id, n)
		}
	}
	// Every failed PUT was answered once; each ticket then took exactly one
	// successful PUT (nothing repeated after success).
	if ok, bad := calls(h.sim, "tickets.update", 200), calls(h.sim, "tickets.update", 503); ok != 3 || bad != 7 {
		t.Errorf("PUTs: %d ok, %d failed; want 3 and 7", ok, bad)
	}
	if h.count(pipeline.StreamDLQ) != 0 {
		t.Error("a transient failure reached the DLQ")
	}
}

func TestRateLimitedWritesRetryAfterAndLand(t *testing.T) {
	h := newHarness(t, options{})
	// More 429s than the client retries: the prediction is parked with
	// RetryAfter and redelivered.
	h.sim.SetFault("tickets.update", freshdesksim.Fault{Status: 429, Burst: 6})
	h.run()
	id := h.ticket(freshdesksim.NewTicket{})
	h.publish(h.prediction(id, apply(FieldGroup, "Accounts")), "r1")
	o := only(t, h.settle(1), id)
	wantAction(t, o, FieldGroup, v1.Action_ACTION_APPLIED, ReasonApplied)
	if ok, limited := calls(h.sim, "tickets.update", 200), calls(h.sim, "tickets.update", 429); ok != 1 || limited != 6 {
		t.Errorf("PUTs: %d ok, %d rate limited; want 1 and 6", ok, limited)
	}
	if v := testutil.ToFloat64(h.stage.metrics.rateLimited); v != 6 {
		t.Errorf("rate-limited metric %v, want 6", v)
	}
	if n := len(h.sim.Notes(id)); n != 1 {
		t.Errorf("%d notes", n)
	}
}

func TestGrowthPlanRateLimitsArePacedAndEverythingLands(t *testing.T) {
	if testing.Short() {
		t.Skip("paces through several simulated minutes")
	}
	// Growth: 200 credits and 80 updates per minute, and a simulated minute
	// lasts a second here. 160 tickets need 320+ credits and 160 PUTs:
	// at least two windows, and more PUTs per full window than the update
	// sub-limit allows, which the client's pacer does not know about.
	h := newHarness(t, options{sim: freshdesksim.Config{Plan: "growth", TimeScale: 60}, sleepCap: time.Second,
		writer: func(c *Config) { c.Concurrency = 8; c.Notes = false; c.Reread = true }})
	h.run()
	const n = 160
	var ids []int64
	for i := range n {
		id := h.ticket(freshdesksim.NewTicket{})
		ids = append(ids, id)
		h.publish(h.prediction(id, apply(FieldGroup, "Sales"), apply(FieldPriority, "Medium")), "g"+itoa(i))
	}
	outs := h.settle(n)
	for _, id := range ids {
		wantAction(t, only(t, outs, id), FieldGroup, v1.Action_ACTION_APPLIED, ReasonApplied)
		if st := h.simTicket(id); st.GroupID != h.groupID("Sales") || st.Priority != 2 {
			t.Fatalf("ticket %d not updated", id)
		}
	}
	st := h.sim.Stats()
	ok := calls(h.sim, "tickets.update", 200)
	t.Logf("calls %d, 429s %d, PUTs ok %d", st.Total.Calls, st.RateLimited, ok)
	if ok != n {
		t.Errorf("%d successful PUTs for %d tickets", ok, n)
	}
	// Bounded: the pacer waits for the window instead of spending into 429s,
	// and 429s are followed by Retry-After, not by a hammering retry loop.
	if st.RateLimited > n/2 || st.Total.Calls > 3*n {
		t.Errorf("%d calls with %d 429s for %d tickets: not backing off", st.Total.Calls, st.RateLimited, n)
	}
}

func TestValidationErrorPublishesFailedOutcomeAndDeadLetters(t *testing.T) {
	h := newHarness(t, options{})
	h.run()
	id := h.ticket(freshdesksim.NewTicket{})
	long := strings.Repeat("x", 300) // Freshdesk tags hold at most 255 characters
	h.publish(h.prediction(id, apply(FieldGroup, "Billing"), tags(v1.Decision_DECISION_APPLY, long)), "v1")
	waitFor(t, "a dead letter", func() bool { return h.count(pipeline.StreamDLQ) == 1 })
	o := only(t, h.settle(1), id)
	wantAction(t, o, FieldTags, v1.Action_ACTION_FAILED, ReasonRejected)
	wantAction(t, o, FieldGroup, v1.Action_ACTION_FAILED, ReasonRejected) // same PUT
	if !strings.Contains(o.Error, "tags") {
		t.Errorf("outcome error %q does not name the field", o.Error)
	}
	raw, err := h.conn.GetMsg(context.Background(), pipeline.StreamDLQ, 1)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Subject != "dlq.writer.sim" || raw.Header[pipeline.HeaderStage][0] != "writer" {
		t.Errorf("dead letter %q %v", raw.Subject, raw.Header)
	}
	if st := h.simTicket(id); st.GroupID != 0 {
		t.Error("ticket changed despite the rejected PUT")
	}
}

func TestDeletedOrUnknownTicketIsSkipped(t *testing.T) {
	for _, reread := range []bool{false, true} {
		t.Run("reread="+strconv.FormatBool(reread), func(t *testing.T) {
			h := newHarness(t, options{writer: func(c *Config) { c.Reread = reread }})
			obs := h.observer()
			h.run()
			del := h.ticket(freshdesksim.NewTicket{})
			spam := h.ticket(freshdesksim.NewTicket{})
			pd := h.prediction(del, apply(FieldGroup, "Billing"))
			ps := h.prediction(spam, suggest(FieldGroup, "Billing"))
			if err := h.sim.SetSpam(del, false, true); err != nil {
				t.Fatal(err)
			}
			if err := h.sim.SetSpam(spam, true, false); err != nil {
				t.Fatal(err)
			}
			if !reread {
				// Without the re-read the writer knows a ticket is spam from
				// the fetcher: here a webhook on the update (the change feed
				// leaves spam and deleted tickets out).
				obs.webhook(spam)
				if !h.seen(spam).Spam {
					t.Fatal("the fetcher did not record the spam version")
				}
			}
			unknown := h.prediction(del, apply(FieldGroup, "Billing"))
			unknown.TicketId, unknown.Ticket.Id = 999999, 999999
			h.publish(pd, "d")
			h.publish(ps, "s")
			h.publish(unknown, "u")
			outs := h.settle(3)
			for _, id := range []int64{del, spam, 999999} {
				wantAction(t, only(t, outs, id), FieldGroup, v1.Action_ACTION_SKIPPED, ReasonGone)
			}
			// The simulator's view omits "deleted" (Freshdesk shows it only in
			// some views), so the deleted ticket is recognised by the PUT's 405.
			if h.count(pipeline.StreamDLQ) != 0 || len(h.sim.Notes(spam)) != 0 || calls(h.sim, "tickets.update", 200) != 0 {
				t.Errorf("a deleted or spam ticket was written to or dead-lettered: DLQ %d, notes %d, PUTs %d",
					h.count(pipeline.StreamDLQ), len(h.sim.Notes(spam)), calls(h.sim, "tickets.update", 200))
			}
		})
	}
}

func TestUndecodablePredictionGoesToDLQ(t *testing.T) {
	h := newHarness(t, options{})
	h.run()
	h.publishRaw(pipeline.PredictionSubject(testSystem, testAccount, 1), "junk", []byte("\xff\xffnot protobuf"))
	waitFor(t, "a dead letter", func() bool { return h.count(pipeline.StreamDLQ) == 1 })
	h.settle(0)
	if h.count(pipeline.StreamOutcomes) != 0 {
		t.Error("an undecodable message produced an outcome")
	}
	if v := testutil.ToFloat64(h.stage.metrics.invalid); v != 1 {
		t.Errorf("invalid metric %v", v)
	}
}

func TestLastDeliveryPublishesFailedOutcome(t *testing.T) {
	h := newHarness(t, options{maxDeliver: 2, client: func(c *freshdesk.Config) { c.MaxRetries = -1 }})
	h.sim.SetFault("tickets.update", freshdesksim.Fault{Status: 503, Burst: 100})
	id := h.ticket(freshdesksim.NewTicket{})
	pred := h.prediction(id, apply(FieldGroup, "Billing"))
	if err := h.handle(pred, 1); err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("first delivery: %v, want a retryable error", err)
	}
	if h.count(pipeline.StreamOutcomes) != 0 {
		t.Fatal("outcome published before the last delivery")
	}
	if err := h.handle(pred, 2); err == nil {
		t.Fatal("last delivery succeeded against a failing ticket system")
	}
	o := only(t, h.outcomes(), id)
	wantAction(t, o, FieldGroup, v1.Action_ACTION_FAILED, "")
	if !strings.Contains(o.Error, "gave up after 2 deliveries") {
		t.Errorf("error %q", o.Error)
	}
}
