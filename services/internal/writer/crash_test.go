package writer

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// errCrashed stands for the process dying: nothing after it happens.
var errCrashed = errors.New("simulated crash")

// crashKV is the writer's bucket of a process that dies once crashed is
// set: every write to the ticket's ledger record (applied.*) fails from
// then on, the other keys (seen) still work.
type crashKV struct {
	ledger.KV
	crashed atomic.Bool
	// spare is how many record writes still succeed after the crash was
	// armed (the crash point lies after them).
	spare atomic.Int32
}

func (k *crashKV) dead(key string) bool {
	return k.crashed.Load() && strings.HasPrefix(key, "applied.") && k.spare.Add(-1) < 0
}

func (k *crashKV) Create(ctx context.Context, key string, val []byte) (uint64, error) {
	if k.dead(key) {
		return 0, errCrashed
	}
	return k.KV.Create(ctx, key, val)
}

func (k *crashKV) Update(ctx context.Context, key string, val []byte, rev uint64) (uint64, error) {
	if k.dead(key) {
		return 0, errCrashed
	}
	return k.KV.Update(ctx, key, val, rev)
}

func (k *crashKV) Put(ctx context.Context, key string, val []byte) (uint64, error) {
	if k.dead(key) {
		return 0, errCrashed
	}
	return k.KV.Put(ctx, key, val)
}

// hookedTickets runs afterPut once the ticket system has taken a PUT.
type hookedTickets struct {
	Tickets
	afterPut func()
}

func (t *hookedTickets) UpdateTicket(ctx context.Context, id int64, u ticketsystem.Update) (*ticketsystem.Ticket, error) {
	after, err := t.Tickets.UpdateTicket(ctx, id, u)
	if err == nil && t.afterPut != nil {
		t.afterPut()
	}
	return after, err
}

// deadPublisher is a process that dies before its outcome is stored.
type deadPublisher struct{}

func (deadPublisher) Publish(context.Context, pipeline.OutMsg) (pipeline.PubAck, error) {
	return pipeline.PubAck{}, errCrashed
}

// crashedStage is a second writer process over the harness's simulator and
// bucket, whose KV, ticket system and publisher the test chooses.
func (h *harness) crashedStage(kv ledger.KV, tickets Tickets, pub Publisher, cfg func(*Config)) *Stage {
	h.t.Helper()
	c := testConfig()
	if cfg != nil {
		cfg(&c)
	}
	s, err := New(c, Deps{Tickets: tickets, KV: kv, Publisher: pub})
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// wantSameOutcomeAfterCrash checks the single outcome a ticket got after an
// earlier delivery wrote the note and the PUT and died: the outcome says
// what that delivery did (every apply field APPLIED "applied", the note
// written), the ticket holds it, and nothing was written twice.
func wantSameOutcomeAfterCrash(t *testing.T, h *harness, id int64, notes bool) {
	t.Helper()
	o := only(t, h.outcomes(), id)
	for _, f := range o.Fields {
		t.Logf("field %s: %s %q previous %q new %q", f.Field, f.Action.Short(), f.Reason, f.PreviousValue, f.NewValue)
	}
	g := wantAction(t, o, FieldGroup, v1.Action_ACTION_APPLIED, ReasonApplied)
	if g.NewValue != "Billing" || g.PreviousValue != "" {
		t.Errorf("group previous %q new %q, want \"\" -> Billing", g.PreviousValue, g.NewValue)
	}
	wantAction(t, o, FieldType, v1.Action_ACTION_APPLIED, ReasonApplied)
	wantAction(t, o, FieldTags, v1.Action_ACTION_APPLIED, ReasonApplied)
	if notes && slices.ContainsFunc(o.Fields, func(f *v1.FieldOutcome) bool { return f.Field == FieldPriority }) {
		wantAction(t, o, FieldPriority, v1.Action_ACTION_SUGGESTED, ReasonSuggested)
	}
	if o.NoteWritten != notes || o.Error != "" {
		t.Errorf("outcome note_written %v error %q, want note_written %v and no error", o.NoteWritten, o.Error, notes)
	}
	st := h.simTicket(id)
	if st.GroupID != h.groupID("Billing") || st.Type != "Incident" {
		t.Errorf("ticket group %d type %q, want Billing/Incident", st.GroupID, st.Type)
	}
	if want := []string{"vip", "invoice", "autotriage"}; !slices.Equal(st.Tags, want) {
		t.Errorf("tags %v, want %v", st.Tags, want)
	}
	wantNotes := 0
	if notes {
		wantNotes = 1
	}
	if n := len(h.sim.Notes(id)); n != wantNotes {
		t.Errorf("%d notes, want %d", n, wantNotes)
	}
	if n := calls(h.sim, "tickets.update", 0); n != 1 {
		t.Errorf("%d PUTs, want the crashed delivery's one only", n)
	}
	rec, err := h.ledger.GetApplied(context.Background(), testSystem, testAccount, id)
	if err != nil {
		t.Fatalf("ledger record after recovery: %v", err)
	}
	if rec.Fields.GroupID != h.groupID("Billing") || rec.Fields.Type != "Incident" || !slices.Contains(rec.Fields.Tags, "invoice") {
		t.Errorf("ledger fields %+v, want what the crashed delivery wrote", rec.Fields)
	}
}

// crashPrediction is a new ticket and a prediction applying three fields,
// with a suggestion too when withSuggestion (without one, only the applied
// fields make the note owed).
func crashPrediction(h *harness, withSuggestion bool) (int64, *v1.Prediction) {
	id := h.ticket(freshdesksim.NewTicket{Tags: []string{"vip"}})
	fields := []*v1.FieldPrediction{apply(FieldGroup, "Billing"), apply(FieldType, "Incident"), tags(v1.Decision_DECISION_APPLY, "invoice")}
	if withSuggestion {
		fields = append(fields, suggest(FieldPriority, "High"))
	}
	return id, h.prediction(id, fields...)
}

// A writer dies right after its note and its PUT, before its ledger record
// and its outcome: the record holds its intent, still live, and nothing of
// the PUT. The redelivery reads the ticket (without Reread too: an intent
// of the same decision that no delivery finished says the PUT may have
// landed), finds the values it wrote and must report them as applied by
// autotriage, with the note, not as values found already set, and write
// nothing again.
func TestCrashBetweenPUTAndLedgerReportsWhatWasWritten(t *testing.T) {
	for _, notes := range []bool{true, false} {
		for _, reread := range []bool{true, false} {
			name := map[bool]string{true: "notes", false: "no notes"}[notes] + map[bool]string{true: ", reread", false: ", observed"}[reread]
			t.Run(name, func(t *testing.T) {
				h := newHarness(t, options{})
				id, pred := crashPrediction(h, false)
				kv := &crashKV{KV: h.kv}
				tk := &hookedTickets{Tickets: freshdeskAdapter(h), afterPut: func() { kv.crashed.Store(true) }}
				setMode := func(c *Config) { c.Notes, c.Reread = notes, reread }
				first := h.crashedStage(kv, tk, h.conn, setMode)
				if err := h.handleWith(first, pred, 1); !errors.Is(err, errCrashed) {
					t.Fatalf("crashed delivery returned %v, want the crash", err)
				}
				if n := h.count(pipeline.StreamOutcomes); n != 0 {
					t.Fatalf("%d outcomes from the crashed delivery", n)
				}
				rec, err := h.ledger.GetApplied(context.Background(), testSystem, testAccount, id)
				if err != nil || !unrecordedIntent(&rec, pred.TicketUpdatedAt.AsTime(), DecisionHash(pred)) ||
					(rec.Seen != nil && rec.Seen.GroupID != 0) {
					t.Fatalf("record %+v seen %+v (%v), want the live intent and no version of the PUT", rec, rec.Seen, err)
				}
				views := calls(h.sim, "tickets.view", 0)
				// The restarted process gets the prediction again.
				again := h.crashedStage(h.kv, freshdeskAdapter(h), h.conn, setMode)
				if err := h.handleWith(again, pred, 2); err != nil {
					t.Fatal(err)
				}
				wantSameOutcomeAfterCrash(t, h, id, notes)
				if n := calls(h.sim, "tickets.view", 0) - views; n != 1 {
					t.Errorf("the redelivery read the ticket %d times, want once", n)
				}
				if s := h.seen(id); s.GroupID != h.groupID("Billing") {
					t.Errorf("newest observed version %+v, want the crashed PUT's values", s)
				}
			})
		}
	}
}

// A writer dies after its ledger record, before its outcome is stored.
func TestCrashBeforeOutcomePublishReportsWhatWasWritten(t *testing.T) {
	h := newHarness(t, options{})
	id, pred := crashPrediction(h, true)
	first := h.crashedStage(h.kv, freshdeskAdapter(h), deadPublisher{}, nil)
	if err := h.handleWith(first, pred, 1); !errors.Is(err, errCrashed) {
		t.Fatalf("crashed delivery returned %v, want the crash", err)
	}
	if err := h.handle(pred, 2); err != nil {
		t.Fatal(err)
	}
	wantSameOutcomeAfterCrash(t, h, id, true)
}

// A person who sets the predicted value by hand (no write of autotriage's
// intended it) is still reported as such: nothing is sent, no note.
func TestValueSetByAPersonIsNotMistakenForAutotriagesWrite(t *testing.T) {
	h := newHarness(t, options{})
	ctx := context.Background()
	id := h.ticket(freshdesksim.NewTicket{})
	pred := h.prediction(id, apply(FieldGroup, "Billing"))
	if err := h.sim.AgentUpdate(id, map[string]any{"group_id": h.groupID("Billing")}); err != nil {
		t.Fatal(err)
	}
	st := h.simTicket(id)
	if _, err := h.ledger.ObserveSeen(ctx, testSystem, testAccount, id, ledger.Seen{UpdatedAt: st.UpdatedAt, GroupID: st.GroupID, Priority: 1, Status: 2}); err != nil {
		t.Fatal(err)
	}
	if err := h.handle(pred, 1); err != nil {
		t.Fatal(err)
	}
	o := only(t, h.outcomes(), id)
	wantAction(t, o, FieldGroup, v1.Action_ACTION_APPLIED, ReasonAlreadySet)
	if o.NoteWritten || len(h.sim.Notes(id)) != 0 || calls(h.sim, "tickets.update", 0) != 0 {
		t.Errorf("note_written %v, %d notes, %d PUTs: want nothing written", o.NoteWritten, len(h.sim.Notes(id)), calls(h.sim, "tickets.update", 0))
	}
}
