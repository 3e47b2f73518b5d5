package writer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// claimNote stores a decision note's state (and, when in is set, an intent)
// in the ticket's record, as a writer that got that far left it.
func (h *harness) claimNote(id int64, n ledger.Note, in *ledger.Intent) {
	h.t.Helper()
	if _, err := h.ledger.UpdateApplied(context.Background(), testSystem, testAccount, id, func(a *ledger.Applied, _ bool) error {
		a.SetNote(n)
		if in != nil {
			a.Intent = in
		}
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
}

// noteState is the state the ticket's record holds for a decision's note.
func (h *harness) noteState(id int64, hash string) ledger.Note {
	h.t.Helper()
	a, err := h.ledger.GetApplied(context.Background(), testSystem, testAccount, id)
	if err != nil {
		h.t.Fatalf("record of ticket %d: %v", id, err)
	}
	n, ok := a.Note(hash)
	if !ok {
		h.t.Fatalf("record of ticket %d has no note state for %s: %+v", id, hash, a.Notes)
	}
	return n
}

// putLegacyNote stores a note record as writers before ledger.Applied.Notes
// did, under its own key.
func (h *harness) putLegacyNote(id int64, hash string, r ledger.NoteRecord) {
	h.t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.kv.Put(context.Background(), ledger.NoteKey(testSystem, testAccount, id, hash), b); err != nil {
		h.t.Fatal(err)
	}
}

// countingKV counts the writer's KV operations by operation and key kind
// (the key's first segment: applied, seen, note).
type countingKV struct {
	ledger.KV
	mu sync.Mutex
	n  map[string]int
}

func (k *countingKV) add(op, key string) {
	kind, _, _ := strings.Cut(key, ".")
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.n == nil {
		k.n = map[string]int{}
	}
	k.n[op+" "+kind]++
}

func (k *countingKV) Get(ctx context.Context, key string) (pipeline.Entry, error) {
	k.add("get", key)
	return k.KV.Get(ctx, key)
}

func (k *countingKV) Create(ctx context.Context, key string, val []byte) (uint64, error) {
	k.add("create", key)
	return k.KV.Create(ctx, key, val)
}

func (k *countingKV) Update(ctx context.Context, key string, val []byte, rev uint64) (uint64, error) {
	k.add("update", key)
	return k.KV.Update(ctx, key, val, rev)
}

func (k *countingKV) Put(ctx context.Context, key string, val []byte) (uint64, error) {
	k.add("put", key)
	return k.KV.Put(ctx, key, val)
}

// take returns the counts so far and starts again.
func (k *countingKV) take() (total int, by map[string]int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	by, k.n = k.n, nil
	for _, n := range by {
		total += n
	}
	return total, by
}

// TestKVOperationsPerFreshTicket pins the writer's KV round trips for a
// ticket's first prediction. By default (Reread): read the ticket's record,
// store the intent with the note's claim (the write lease), store the
// record with the PUT's version, the fields and the note written: 3. The
// credit-saving opt-in (Reread off) reads the fetcher's seen record too: 4.
// Before the note's state moved into the record, a noted ticket cost two
// more (the note key's create and update); until issue 16 the PUT's
// version had a compare-and-set of its own right after the PUT (first in
// the seen record, then in the writer's record), one more in both modes.
func TestKVOperationsPerFreshTicket(t *testing.T) {
	reread := map[string]int{"get applied": 1, "create applied": 1, "update applied": 1}
	observed := map[string]int{"get applied": 1, "create applied": 1, "update applied": 1, "get seen": 1}
	applyNoted := func(h *harness) []*v1.FieldPrediction {
		return []*v1.FieldPrediction{apply(FieldGroup, "Billing"), apply(FieldType, "Incident"), tags(v1.Decision_DECISION_APPLY, "invoice")}
	}
	suggestOnly := func(h *harness) []*v1.FieldPrediction {
		return []*v1.FieldPrediction{suggest(FieldGroup, "Billing")}
	}
	applyOne := func(h *harness) []*v1.FieldPrediction {
		return []*v1.FieldPrediction{apply(FieldGroup, "Billing")}
	}
	for _, c := range []struct {
		name          string
		notes, reread bool
		fields        func(h *harness) []*v1.FieldPrediction
		want          map[string]int
	}{
		{"apply with a note", true, true, applyNoted, reread},
		{"suggest only", true, true, suggestOnly, reread},
		{"apply without notes", false, true, applyOne, reread},
		{"observed: apply with a note", true, false, applyNoted, observed},
		{"observed: suggest only", true, false, suggestOnly, observed},
		{"observed: apply without notes", false, false, applyOne, observed},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, options{})
			obs := h.observer()
			kv := &countingKV{KV: h.kv}
			s := h.crashedStage(kv, freshdeskAdapter(h), h.conn, func(cfg *Config) { cfg.Notes, cfg.Reread = c.notes, c.reread })
			// As in production: the writer read the catalog at start (a
			// cost per CatalogTTL, not per ticket), and the fetcher recorded
			// the version it published.
			if err := s.CheckCatalog(context.Background()); err != nil {
				t.Fatal(err)
			}
			id := h.ticket(freshdesksim.NewTicket{})
			obs.poll()
			pred := predictionFrom(h.published()[id][0], c.fields(h)...)
			if err := h.handleWith(s, pred, 1); err != nil {
				t.Fatal(err)
			}
			total, by := kv.take()
			t.Logf("%d KV operations: %v", total, by)
			if !mapsEqual(by, c.want) {
				t.Errorf("KV operations %v, want %v", by, c.want)
			}
			o := only(t, h.outcomes(), id)
			if o.NoteWritten != c.notes || len(h.sim.Notes(id)) != map[bool]int{false: 0, true: 1}[c.notes] {
				t.Errorf("note_written %v, %d notes", o.NoteWritten, len(h.sim.Notes(id)))
			}
			if c.notes {
				if n := h.noteState(id, DecisionHash(pred)); n.State != ledger.NoteWritten || n.ConversationID == 0 {
					t.Errorf("note state %+v, want written with its conversation id", n)
				}
			}
			// A redelivery finds the note's state in the record: no other
			// key is read, nothing is posted again.
			if err := h.handleWith(s, pred, 2); err != nil {
				t.Fatal(err)
			}
			total, by = kv.take()
			t.Logf("redelivery: %d KV operations: %v", total, by)
			if by["get note"] != 0 || by["create applied"] != 0 || total > 3 {
				t.Errorf("KV operations of the redelivery %v, want the two reads and at most the record's update", by)
			}
			if n := calls(h.sim, "tickets.notes", 0); n > 1 {
				t.Errorf("%d note POSTs", n)
			}
		})
	}
}

func mapsEqual(a, b map[string]int) bool {
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

// The note's state is per decision, not per prediction: a prediction from a
// later ticket version, or from a retrained model, that reaches the same
// decision finds the note written and does not post another.
func TestSameDecisionFromALaterVersionOrModelWritesNoSecondNote(t *testing.T) {
	h := newHarness(t, options{})
	id := h.ticket(freshdesksim.NewTicket{})
	first := h.prediction(id, suggest(FieldGroup, "Billing"), apply(FieldPriority, "High"))
	if err := h.handle(first, 1); err != nil {
		t.Fatal(err)
	}
	if n := len(h.sim.Notes(id)); n != 1 {
		t.Fatalf("%d notes after the first prediction", n)
	}
	// A person replies (a new version); a retrained model predicts the
	// same decision from it, and then the old model does too.
	if err := h.sim.AgentUpdate(id, map[string]any{"status": 3}); err != nil {
		t.Fatal(err)
	}
	later := h.prediction(id, suggest(FieldGroup, "Billing"), apply(FieldPriority, "High"))
	later.ModelId, later.ModelVersion = "model-retrained-000000000000", "2025-04-01 retrained"
	later.Fields[0].Confidence = 0.75
	sameModel := h.prediction(id, suggest(FieldGroup, "Billing"), apply(FieldPriority, "High"))
	sameModel.TicketUpdatedAt = timestamppb.New(later.TicketUpdatedAt.AsTime().Add(time.Second))
	sameModel.Ticket.UpdatedAt = sameModel.TicketUpdatedAt
	if DecisionHash(later) != DecisionHash(first) || DecisionHash(sameModel) != DecisionHash(first) {
		t.Fatal("test setup: the decision hash differs")
	}
	for _, p := range []*v1.Prediction{later, sameModel} {
		if err := h.handle(p, 1); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(h.sim.Notes(id)); n != 1 {
		t.Errorf("%d notes, want 1 for one decision", n)
	}
	if n := calls(h.sim, "tickets.conversations", 0); n != 0 {
		t.Errorf("%d conversation reads: a written note needs none", n)
	}
	outs := h.outcomes()[id]
	if len(outs) != 3 {
		t.Fatalf("%d outcomes, want 3", len(outs))
	}
	for _, o := range outs {
		wantAction(t, o, FieldGroup, v1.Action_ACTION_SUGGESTED, ReasonSuggested)
		if !o.NoteWritten {
			t.Errorf("outcome of version %v: note_written false", o.TicketUpdatedAt.AsTime())
		}
	}
	// Another decision on the same ticket gets its own note.
	other := h.prediction(id, suggest(FieldGroup, "Shipping"))
	other.TicketUpdatedAt = timestamppb.New(sameModel.TicketUpdatedAt.AsTime().Add(time.Second))
	other.Ticket.UpdatedAt = other.TicketUpdatedAt
	if err := h.handle(other, 1); err != nil {
		t.Fatal(err)
	}
	if n := len(h.sim.Notes(id)); n != 2 {
		t.Errorf("%d notes, want a second one for another decision", n)
	}
	h.noteState(id, DecisionHash(first))
	h.noteState(id, DecisionHash(other))
}

// Note records stored under their own key by writers before the note state
// moved into the ticket's record are still honoured, and folded into it.
func TestLegacyNoteRecordIsHonoured(t *testing.T) {
	t.Run("written, on a ticket with a record", func(t *testing.T) {
		h := newHarness(t, options{})
		id := h.ticket(freshdesksim.NewTicket{})
		pred := h.prediction(id, suggest(FieldGroup, "Billing"))
		hash := DecisionHash(pred)
		// An older writer's record of the ticket (no note state in it) and
		// its note record.
		if _, err := h.ledger.PutApplied(context.Background(), testSystem, testAccount, id, ledger.Applied{
			SourceUpdatedAt: pred.TicketUpdatedAt.AsTime().Add(-time.Hour), At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		h.putLegacyNote(id, hash, ledger.NoteRecord{State: ledger.NoteWritten, At: time.Now(), ConversationID: 77})
		if err := h.handle(pred, 1); err != nil {
			t.Fatal(err)
		}
		if n := calls(h.sim, "tickets.notes", 0); n != 0 {
			t.Errorf("%d note POSTs, want none: an older writer wrote it", n)
		}
		if !only(t, h.outcomes(), id).NoteWritten {
			t.Error("outcome note_written false")
		}
		if n := h.noteState(id, hash); n.State != ledger.NoteWritten || n.ConversationID != 77 {
			t.Errorf("note state %+v, want the older record folded in", n)
		}
	})
	t.Run("pending with the marker, redelivered", func(t *testing.T) {
		h := newHarness(t, options{writer: func(c *Config) { c.NoteLease = time.Hour }})
		ctx := context.Background()
		id := h.ticket(freshdesksim.NewTicket{})
		pred := h.prediction(id, apply(FieldGroup, "Billing"))
		hash := DecisionHash(pred)
		// An older writer claimed the note under its own key, posted it and
		// died before any record of the ticket.
		h.putLegacyNote(id, hash, ledger.NoteRecord{State: ledger.NotePending, At: time.Now()})
		if _, err := freshdeskAdapter(h).AddNote(ctx, id, ticketsystem.Note{BodyHTML: "<p>" + Marker(hash) + "</p>"}); err != nil {
			t.Fatal(err)
		}
		if err := h.handle(pred, 2); err != nil {
			t.Fatal(err)
		}
		if n := len(h.sim.Notes(id)); n != 1 {
			t.Errorf("%d notes, want the older writer's one only", n)
		}
		if n := h.noteState(id, hash); n.State != ledger.NoteWritten || n.ConversationID == 0 {
			t.Errorf("note state %+v, want written", n)
		}
		if o := only(t, h.outcomes(), id); !o.NoteWritten {
			t.Error("outcome note_written false")
		}
	})
}

// Two replicas handle the same decision at once (each with its own
// in-process lock): the record's compare-and-set lets one post the note;
// the other waits, and its retry finds the note written.
func TestConcurrentReplicasPostOneNote(t *testing.T) {
	h := newHarness(t, options{writer: func(c *Config) { c.NoteLease = time.Hour }})
	for i := range 5 {
		id := h.ticket(freshdesksim.NewTicket{})
		pred := h.prediction(id, suggest(FieldGroup, "Billing"), apply(FieldType, "Incident"))
		a := h.crashedStage(h.kv, freshdeskAdapter(h), h.conn, func(c *Config) { c.NoteLease = time.Hour })
		b := h.crashedStage(h.kv, freshdeskAdapter(h), h.conn, func(c *Config) { c.NoteLease = time.Hour })
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, s := range []*Stage{a, b} {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, errs[j] = s.applyLeased(ctx, pred, 1, fmt.Sprintf("replica-%d/%d", j, i))
			})
		}
		wg.Wait()
		for _, err := range errs {
			if _, retry := pipeline.RetryDelay(err); err != nil && !retry {
				t.Errorf("ticket %d: %v, want success or a retry", id, err)
			}
		}
		if n := len(h.sim.Notes(id)); n != 1 {
			t.Errorf("round %d: ticket %d has %d notes, want 1 (errors %v)", i, id, n, errs)
		}
	}
}

// The fetcher's override bookkeeping changes the record between the
// writer's read and its compare-and-sets: the writer's merges keep it.
func TestRecordMergesKeepTheFetchersChanges(t *testing.T) {
	h := newHarness(t, options{})
	id := h.ticket(freshdesksim.NewTicket{})
	if err := h.handle(h.prediction(id, apply(FieldGroup, "Billing")), 1); err != nil {
		t.Fatal(err)
	}
	st := h.simTicket(id)
	pred := h.prediction(id, suggest(FieldType, "Refund"), apply(FieldPriority, "High"))
	pred.TicketUpdatedAt = timestamppb.New(st.UpdatedAt.Add(time.Second))
	pred.Ticket.UpdatedAt = pred.TicketUpdatedAt
	kv := &interferingKV{KV: h.kv, l: h.ledger, id: id}
	s := h.crashedStage(kv, freshdeskAdapter(h), h.conn, nil)
	if err := h.handleWith(s, pred, 1); err != nil {
		t.Fatal(err)
	}
	if kv.interfered != 2 {
		t.Fatalf("interfered %d times, want with the intent's and the record's write", kv.interfered)
	}
	a, err := h.ledger.GetApplied(context.Background(), testSystem, testAccount, id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(a.OverridesSeen, "x0") || !slices.Contains(a.OverridesSeen, "x1") {
		t.Errorf("overrides_seen %v: the fetcher's change was lost", a.OverridesSeen)
	}
	if a.Fields.GroupID != h.groupID("Billing") || a.Fields.Priority != 3 {
		t.Errorf("fields %+v", a.Fields)
	}
	if n, ok := a.Note(DecisionHash(pred)); !ok || n.State != ledger.NoteWritten {
		t.Errorf("note state %+v %v, want written", n, ok)
	}
	if len(a.Notes) != 2 || len(h.sim.Notes(id)) != 2 {
		t.Errorf("%d note states, %d notes; want one per decision", len(a.Notes), len(h.sim.Notes(id)))
	}
}

// interferingKV changes the ticket's record, as the fetcher does, right
// before the first try of each of the writer's own updates of it (the
// intent's, the record's); the retry after the conflict goes through.
type interferingKV struct {
	ledger.KV
	l          *ledger.Ledger
	id         int64
	updates    int
	interfered int
}

func (k *interferingKV) Update(ctx context.Context, key string, val []byte, rev uint64) (uint64, error) {
	if key == ledger.AppliedKey(testSystem, testAccount, k.id) {
		k.updates++
	}
	if key == ledger.AppliedKey(testSystem, testAccount, k.id) && k.updates%2 == 1 && k.interfered < 2 {
		field := fmt.Sprintf("x%d", k.interfered)
		k.interfered++
		if _, err := k.l.UpdateApplied(ctx, testSystem, testAccount, k.id, func(a *ledger.Applied, found bool) error {
			if !found {
				return errors.New("the fetcher only changes existing records")
			}
			a.OverridesSeen = append(a.OverridesSeen, field)
			return nil
		}); err != nil {
			return 0, err
		}
	}
	return k.KV.Update(ctx, key, val, rev)
}

// A note the ticket system certainly refused (rate limited past the client's
// retries) leaves no lease to wait for: the retry looks for the marker and
// posts, though the lease is an hour.
func TestRefusedNoteClearsTheLease(t *testing.T) {
	h := newHarness(t, options{writer: func(c *Config) { c.NoteLease = time.Hour }})
	h.sim.SetFault("tickets.notes", freshdesksim.Fault{Status: 429, Burst: 6})
	id := h.ticket(freshdesksim.NewTicket{})
	pred := h.prediction(id, suggest(FieldGroup, "Billing"))
	err := h.handle(pred, 1)
	if d, ok := pipeline.RetryDelay(err); !ok || d >= time.Hour {
		t.Fatalf("handle = %v (delay %v), want the rate limit's retry", err, d)
	}
	if n := h.noteState(id, DecisionHash(pred)); n.State != ledger.NotePending || !n.At.IsZero() {
		t.Fatalf("note state %+v, want pending without a lease", n)
	}
	h.sim.SetFault("tickets.notes", freshdesksim.Fault{})
	if err := h.handle(pred, 2); err != nil {
		t.Fatal(err)
	}
	if n := len(h.sim.Notes(id)); n != 1 {
		t.Errorf("%d notes, want 1", n)
	}
	if !only(t, h.outcomes(), id).NoteWritten {
		t.Error("outcome note_written false")
	}
}

// TestNoteForIsTheNoteTheWriterPosts: NoteFor (what the bench sends as
// the writer's note) is byte for byte the note the writer posts.
func TestNoteForIsTheNoteTheWriterPosts(t *testing.T) {
	h := newHarness(t, options{})
	obs := h.observer()
	id := h.ticket(freshdesksim.NewTicket{Subject: "Invoice 42 is wrong", Description: "I was charged twice."})
	obs.poll()
	h.run()
	pred := predictionFrom(h.published()[id][0], apply(FieldGroup, "Billing"), apply(FieldType, "Incident"),
		suggest(FieldPriority, "High"), tags(v1.Decision_DECISION_SUGGEST, "invoice"))
	h.publish(pred, "note-for")
	h.settle(1)
	notes := h.sim.Notes(id)
	if len(notes) != 1 {
		t.Fatalf("%d notes, want 1", len(notes))
	}
	if got, want := notes[0].Body, NoteFor(pred); got != want {
		t.Errorf("posted note:\n%s\nNoteFor:\n%s", got, want)
	}
}
