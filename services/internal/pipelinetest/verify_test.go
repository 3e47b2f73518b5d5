package pipelinetest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/writer"
)

// verifyOptions tune verifyTickets.
type verifyOptions struct {
	// Notes says the writer writes notes (AUTOTRIAGE_WRITER_NOTES).
	Notes bool
}

// verifyTickets checks, for every ticket of ids, what the pipeline promised:
//
//   - exactly one outcome per ticket version and model (no duplicate), and
//     one for the ticket's first version, without error or failed field;
//   - every APPLY decision whose label the helpdesk knows was applied, and
//     the simulator holds exactly what the outcomes say was applied: the
//     group, type and priority are the applied labels or else untouched,
//     the tags are the original ones plus the applied ones plus autotriage's
//     own tag, and status, subject and requester are untouched;
//   - at most one note per ticket, one exactly when a decision was suggested
//     or applied (and notes are on), and the outcome says so.
//
// It returns a summary for the log.
func verifyTickets(t *testing.T, e *env, ids []int64, d map[int64][]*v1.Outcome, o verifyOptions) string {
	t.Helper()
	var applied, suggested, notes int
	var multi []int64 // tickets with outcomes for more than one prediction
	bad := 0
	fail := func(format string, args ...any) {
		t.Helper()
		bad++
		if bad <= 25 {
			t.Errorf(format, args...)
		}
	}
	for _, id := range ids {
		outs := d[id]
		if len(outs) == 0 {
			fail("ticket %d: no outcome", id)
			continue
		}
		// One outcome per prediction (ticket version, model, batch) and
		// attempt: a redelivery must not add a second one.
		perPrediction := map[string]int{}
		for _, out := range outs {
			perPrediction[out.Key()+" attempt "+strconv.Quote(out.Attempt)]++
		}
		for k, n := range perPrediction {
			if n != 1 {
				fail("ticket %d: %d outcomes for prediction %s; outcomes: %s", id, n, k, describeOutcomes(outs))
			}
		}
		if len(outs) > 1 {
			multi = append(multi, id)
		}
		first := slices.MinFunc(outs, func(a, b *v1.Outcome) int {
			return a.TicketUpdatedAt.AsTime().Compare(b.TicketUpdatedAt.AsTime())
		})
		pred := first.GetPrediction()
		orig := pred.GetTicket()
		if orig == nil {
			fail("ticket %d: the outcome carries no prediction with its ticket version", id)
			continue
		}
		if !first.TicketUpdatedAt.AsTime().Equal(orig.CreatedAt.AsTime()) {
			fail("ticket %d: no outcome for its first version (created %s); earliest is for %s", id,
				orig.CreatedAt.AsTime(), first.TicketUpdatedAt.AsTime())
		}
		for _, out := range outs {
			if out.Error != "" {
				fail("ticket %d: outcome error %q", id, out.Error)
			}
			for _, f := range out.Fields {
				if f.Action == v1.Action_ACTION_FAILED {
					fail("ticket %d: field %s failed: %s", id, f.Field, f.Reason)
				}
			}
		}

		cur, ok := e.sim.Ticket(id)
		if !ok {
			fail("ticket %d: not in the simulator", id)
			continue
		}
		// What the outcomes say autotriage applied (later versions win).
		slices.SortFunc(outs, func(a, b *v1.Outcome) int {
			return a.TicketUpdatedAt.AsTime().Compare(b.TicketUpdatedAt.AsTime())
		})
		var group, typ, prio string
		var addTags []string
		wrote, wantNote := false, false
		for _, out := range outs {
			for _, f := range out.Fields {
				switch f.Action {
				case v1.Action_ACTION_APPLIED:
					applied++
					if f.Reason == "applied" {
						wrote, wantNote = true, true
					}
					switch f.Field {
					case "group":
						group = f.NewValue
					case "type":
						typ = f.NewValue
					case "priority":
						prio = f.NewValue
					case "tags":
						addTags = append(addTags, labelsOf(f)...)
					}
				case v1.Action_ACTION_SUGGESTED:
					suggested++
					wrote, wantNote = true, true
				}
			}
		}
		// Every APPLY decision of a label in the catalog was applied.
		for _, fp := range pred.GetFields() {
			if fp.Decision != v1.Decision_DECISION_APPLY {
				continue
			}
			fo := fieldOf(first, fp.Field)
			if fo == nil {
				fail("ticket %d: no outcome for the %s field", id, fp.Field)
				continue
			}
			inCatalog := true
			if fp.Field == "group" {
				_, inCatalog = e.sim.GroupID(fp.Label)
			}
			if fo.Action != v1.Action_ACTION_APPLIED {
				// A later version of the ticket (autotriage's own note,
				// observed before the PUT that followed it, say) may have
				// been applied first; then that outcome applied the field.
				if fo.Reason == writer.ReasonNewerApplied && laterApplied(outs, first, fp.Field) {
					continue
				}
				if inCatalog && !strings.Contains(fo.Reason, "not in catalog") {
					fail("ticket %d: APPLY of %s=%q (confidence %.2f) ended %s: %s", id, fp.Field, fp.Label, fp.Confidence, fo.Action, fo.Reason)
				}
			}
		}
		// The simulator holds exactly that.
		if group != "" {
			want, ok := e.sim.GroupID(group)
			if !ok || cur.GroupID != want {
				fail("ticket %d: group applied %q (id %d) but the ticket has group %d", id, group, want, cur.GroupID)
			}
		} else if cur.GroupID != orig.GroupId {
			fail("ticket %d: group changed from %d to %d without an applied outcome", id, orig.GroupId, cur.GroupID)
		}
		if typ != "" {
			if cur.Type != typ {
				fail("ticket %d: type applied %q but the ticket has %q", id, typ, cur.Type)
			}
		} else if cur.Type != orig.Type {
			fail("ticket %d: type changed from %q to %q without an applied outcome", id, orig.Type, cur.Type)
		}
		if prio == "" && cur.Priority != int(orig.Priority) {
			fail("ticket %d: priority changed from %d to %d without an applied outcome", id, orig.Priority, cur.Priority)
		}
		wantTags := slices.Clone(orig.Tags)
		for _, tg := range addTags {
			if !slices.Contains(wantTags, tg) {
				wantTags = append(wantTags, tg)
			}
		}
		if wrote && !slices.Contains(wantTags, tag) {
			wantTags = append(wantTags, tag)
		}
		if !sameSet(cur.Tags, wantTags) {
			fail("ticket %d: tags %v, want %v; outcomes: %s", id, cur.Tags, wantTags, describeOutcomes(outs))
		}
		if cur.Status != int(orig.Status) || cur.Subject != orig.Subject || cur.RequesterID != orig.RequesterId {
			fail("ticket %d: status/subject/requester changed: %d %q %d -> %d %q %d", id,
				orig.Status, orig.Subject, orig.RequesterId, cur.Status, cur.Subject, cur.RequesterID)
		}
		// Notes.
		n := len(e.sim.Notes(id))
		notes += n
		if !o.Notes {
			wantNote = false
		}
		switch {
		case n > 1:
			fail("ticket %d: %d notes, want at most 1", id, n)
		case wantNote && n != 1:
			fail("ticket %d: a decision was suggested or applied with notes on, but it has %d notes; outcomes: %s", id, n, describeOutcomes(outs))
		case !wantNote && n != 0:
			fail("ticket %d: %d notes, but nothing was suggested or applied; outcomes: %s", id, n, describeOutcomes(outs))
		}
		if o.Notes && wantNote && !slices.ContainsFunc(outs, func(out *v1.Outcome) bool { return out.NoteWritten }) {
			fail("ticket %d: the outcome does not say the note was written", id)
		}
	}
	if bad > 25 {
		t.Errorf("... and %d more failures", bad-25)
	}
	explainMulti(t, e, d, head(multi, 10))
	return fmt.Sprintf("%d tickets: %d fields applied, %d suggested, %d notes, %d tickets with more than one outcome %v",
		len(ids), applied, suggested, notes, len(multi), head(multi, 10))
}

// explainMulti logs, for tickets with outcomes for more than one
// prediction, each version that entered TICKETS (and how), the notes with
// their times, the ledger's record of autotriage's last write and the
// outcomes, to tell a second version of the ticket (a person's change, or
// autotriage's own write observed before the ledger recorded it) from a
// duplicate.
func explainMulti(t *testing.T, e *env, d map[int64][]*v1.Outcome, ids []int64) {
	t.Helper()
	if len(ids) == 0 {
		return
	}
	versions := map[int64][]string{}
	for _, tk := range e.readTickets() {
		if slices.Contains(ids, tk.Id) {
			versions[tk.Id] = append(versions[tk.Id], fmt.Sprintf("%s by %s", tk.UpdatedAt.AsTime().Format("15:04:05"), tk.Arrival))
		}
	}
	for _, id := range ids {
		var notes []string
		for _, n := range e.sim.Notes(id) {
			notes = append(notes, n.CreatedAt.Format("15:04:05"))
		}
		cur, _ := e.sim.Ticket(id)
		applied := "none"
		if a, ok := e.applied(id); ok {
			applied = fmt.Sprintf("source %s written %s", a.SourceUpdatedAt.Format("15:04:05"), a.WrittenUpdatedAt.Format("15:04:05"))
		}
		t.Logf("ticket %d has %d outcomes: created %s, now updated %s; TICKETS versions %v; notes at %v; ledger %s; webhook statuses %v; outcomes: %s",
			id, len(d[id]), cur.CreatedAt.Format("15:04:05"), cur.UpdatedAt.Format("15:04:05"), versions[id], notes, applied,
			e.hook.statusesOf(id), describeOutcomes(d[id]))
	}
}

// describeOutcomes summarises outcomes for a failure message: per outcome,
// the version, whether a note was written, and each field's action and
// reason.
func describeOutcomes(outs []*v1.Outcome) string {
	var b strings.Builder
	for i, out := range outs {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "[version %s at %s note_written=%v", out.TicketUpdatedAt.AsTime().Format("15:04:05.000"), out.At.AsTime().Format("15:04:05.000"), out.NoteWritten)
		if out.Error != "" {
			fmt.Fprintf(&b, " error=%q", out.Error)
		}
		for _, f := range out.Fields {
			fmt.Fprintf(&b, " %s=%s(%s) %s %q", f.Field, f.Action.Short(), f.Decision.Short(), f.Label, f.Reason)
		}
		b.WriteString("]")
	}
	return b.String()
}

func labelsOf(f *v1.FieldOutcome) []string {
	if f.Label == "" {
		return nil
	}
	return strings.Split(f.Label, ",")
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// predictionsWithNotes counts the tickets whose first prediction suggests or
// applies something, i.e. the notes the writer owes.
func firstPredictions(e *env) map[int64]*v1.Prediction {
	m := map[int64]*v1.Prediction{}
	for _, p := range e.readPredictions() {
		if prev, ok := m[p.TicketId]; !ok || p.TicketUpdatedAt.AsTime().Before(prev.TicketUpdatedAt.AsTime()) {
			m[p.TicketId] = p
		}
	}
	return m
}

func hasSuggestOrApply(p *v1.Prediction) bool {
	return slices.ContainsFunc(p.GetFields(), func(f *v1.FieldPrediction) bool {
		return f.Decision == v1.Decision_DECISION_SUGGEST || f.Decision == v1.Decision_DECISION_APPLY
	})
}

// laterApplied reports whether an outcome for a later version than first
// applied field.
func laterApplied(outs []*v1.Outcome, first *v1.Outcome, field string) bool {
	return slices.ContainsFunc(outs, func(o *v1.Outcome) bool {
		f := fieldOf(o, field)
		return o.TicketUpdatedAt.AsTime().After(first.TicketUpdatedAt.AsTime()) && f != nil && f.Action == v1.Action_ACTION_APPLIED
	})
}
