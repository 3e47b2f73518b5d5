package writer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// apply handles one delivery of a.pred, in phases that each may settle the
// prediction (every field has its outcome, nothing left to write) or end
// the delivery with an error:
//
//  1. readRecord: the ticket's ledger record (one KV read): an echo of
//     autotriage's own write, a prediction older than one applied or in
//     flight, another prediction's write lease;
//  2. resolveLabels: labels to the helpdesk's ids through the catalog;
//  3. check: the ticket as it stands now, every field's decision and the
//     note's plan;
//  4. recordIntent: the intent and the note's claim, by compare-and-set
//     against the record read in phase 1 (the write lease, one KV write);
//  5. writeTicket: the note, then the PUT, then the final record (one KV
//     write, which also releases the lease).
//
// A delivery that ends between 4 and the final record gives the lease back
// unless a write of its may have landed (releaseUnrecorded).
func (s *Stage) apply(ctx context.Context, a *attempt) error {
	pred := a.pred
	a.plans = initialPlans(pred)
	if t := pred.GetTicket(); t != nil && t.CreatedAt != nil {
		a.createdAt = t.CreatedAt.AsTime()
	}
	if !anyPending(a.plans) {
		return nil // shadow, abstain: nothing to do in the ticket system
	}
	a.hash = DecisionHash(pred)
	if settled, err := s.readRecord(ctx, a); settled || err != nil {
		return err
	}
	cat, err := s.resolveLabels(ctx, a)
	if err != nil || !anyPending(a.plans) {
		return err
	}
	cur, np, err := s.check(ctx, a, cat)
	if err != nil || cur == nil {
		return err
	}
	// The intent (what the PUT will set, the note's claim) is recorded
	// before the note and the PUT: it is the ticket's write lease (see
	// lease.go), and it lets a delivery after a crash tell this write from
	// a person's (decide) and never post the note twice.
	if slices.ContainsFunc(a.plans, func(p *fieldPlan) bool { return p.write }) || np.set != nil || np.post {
		if a.rec, err = s.recordIntent(ctx, a, a.rec, a.hash, &np, cur); err != nil {
			return err
		}
		defer s.releaseUnrecorded(ctx, a)
	}
	return s.writeTicket(ctx, a, cat, cur, np)
}

// releaseUnrecorded gives the lease back when the delivery ends without
// its final record, unless a write of its may still land.
func (s *Stage) releaseUnrecorded(ctx context.Context, a *attempt) {
	if a.released || a.writeUnknown {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	s.releaseLease(rctx, a, a.rec)
}

// readRecord reads the ticket's ledger record into a.rec (nil: none) and
// settles the prediction when the record says it must not be written: the
// version came from autotriage's own write (caught between the write's
// note and its record by a poll or a webhook), or a prediction from a newer
// version was applied or is in flight. A live lease of another decision is
// *leaseHeld.
func (s *Stage) readRecord(ctx context.Context, a *attempt) (settled bool, err error) {
	pred := a.pred
	r, err := s.ledger.GetApplied(ctx, pred.System, pred.Account, pred.TicketId)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read ledger: %w", err)
	}
	a.rec = &r
	src := pred.TicketUpdatedAt.AsTime()
	switch {
	case r.ProducedByWrite(src):
		skipPending(a.plans, v1.Action_ACTION_SKIPPED, ReasonOwnVersion)
		return true, nil
	case src.Before(r.NewestSource()):
		skipPending(a.plans, v1.Action_ACTION_SKIPPED, ReasonNewerApplied)
		return true, nil
	}
	if in := r.Lease(s.now()); in != nil && !in.Same(src, a.hash) {
		return false, &leaseHeld{holder: in.Holder, until: in.Until}
	}
	return false, nil
}

// resolveLabels maps the predicted labels to the helpdesk's ids through the
// cached catalog, refreshing it once when a label is missing; a label the
// catalog still lacks settles its field (notInCatalog).
func (s *Stage) resolveLabels(ctx context.Context, a *attempt) (*ticketsystem.Catalog, error) {
	s.account.learn(a.pred.System, a.pred.Account)
	cat, fetched, err := s.catalog.get(ctx)
	if err != nil {
		return nil, err
	}
	if fetched {
		s.catalogFetched(ctx, cat)
	}
	if missing := resolvePlans(a.plans, cat, s.labelMap); len(missing) > 0 {
		fresh, refreshed, err := s.catalog.refresh(ctx)
		if err != nil {
			return nil, err
		}
		if refreshed {
			cat = fresh
			s.catalogFetched(ctx, cat)
			missing = resolvePlans(a.plans, cat, s.labelMap)
		}
		s.notInCatalog(ctx, missing)
	}
	return cat, nil
}

// check compares the prediction with the ticket as it stands now (current),
// decides every field (decide) and, when the decision owes a note, what
// this delivery does about it (planNote). cur is nil when the prediction is
// settled without a write (the ticket is deleted or spam).
func (s *Stage) check(ctx context.Context, a *attempt, cat *ticketsystem.Catalog) (cur *ticketsystem.Ticket, np notePlan, err error) {
	pred := a.pred
	cur, read, gone, err := s.current(ctx, a)
	if err != nil {
		return nil, np, err
	}
	if gone {
		skipPending(a.plans, v1.Action_ACTION_SKIPPED, ReasonGone)
		return nil, np, nil
	}
	if !cur.CreatedAt.IsZero() {
		a.createdAt = cur.CreatedAt
	}
	if read {
		a.readAt = cur.UpdatedAt // read from the ticket system just now
		a.observed = ledger.SeenOf(cur, s.now())
	}
	var intent *ledger.Intent
	if a.rec != nil {
		intent = a.rec.IntentFor(pred.TicketUpdatedAt.AsTime(), a.hash)
	}
	decide(a.plans, pred, cur, a.rec, intent, cat, s.cfg.Notes)

	a.noting = s.cfg.Notes && slices.ContainsFunc(a.plans, func(p *fieldPlan) bool { return p.noted })
	if !a.noting {
		return cur, np, nil
	}
	if np, err = s.planNote(ctx, a, a.rec, a.hash); err != nil {
		if isGone(err) {
			a.gone()
			return nil, np, nil
		}
		return nil, np, err
	}
	return cur, np, nil
}

// writeTicket posts the note this delivery claimed, sends the PUT and
// stores the final record. A note or PUT the ticket system rejects for
// good still gets its record; the delivery then ends with that rejection
// (pipeline.Permanent).
func (s *Stage) writeTicket(ctx context.Context, a *attempt, cat *ticketsystem.Catalog, cur *ticketsystem.Ticket, np notePlan) error {
	wctx, cancel := s.writeContext(ctx, a)
	defer cancel()
	note, gone, err := s.writeNote(ctx, wctx, a, np)
	if gone || err != nil {
		return err
	}
	written := s.writtenState(a.hash, note)

	// A note posted now is always followed by the PUT (with at least the
	// tag), whose answer names the version autotriage's writes produced.
	upd := buildUpdate(a.plans, cur, s.cfg.Tag, a.noteWritten, note.posted)
	var writtenAt time.Time
	if !upd.IsZero() {
		var stop bool
		if writtenAt, stop, err = s.putTicket(ctx, wctx, a, upd, written); stop {
			return err
		}
	}
	applied := slices.ContainsFunc(a.plans, func(p *fieldPlan) bool { return p.out.Action == v1.Action_ACTION_APPLIED })
	if applied || note.posted || a.putApplied {
		// One compare-and-set stores the PUT's version (Applied.Seen), the
		// fields, the note as written and the released lease: a crash
		// before it leaves the intent live, and the next delivery of the
		// decision reads the ticket to learn what landed (current).
		if err := s.record(ctx, a, a.rec, cat, writtenAt, written); err != nil {
			return err
		}
	}
	return a.permanent
}

// writeNote posts the decision note when this delivery claimed it
// (np.post) and settles the fields the note alone delivers. gone: the
// ticket is deleted or spam (every field settled); err ends the delivery.
func (s *Stage) writeNote(ctx, wctx context.Context, a *attempt, np notePlan) (note noteResult, gone bool, err error) {
	pred := a.pred
	note = noteResult{written: np.written, convID: np.convID}
	var noteErr error
	if np.post {
		note, noteErr = s.postNote(wctx, pred, a.hash, renderNote(pred, a.plans, a.hash, s.cfg.TicketURL))
		if note.refused {
			a.rec = s.releaseNote(ctx, a, a.rec, np)
		} else if noteErr != nil && mayHaveLanded(noteErr) {
			a.writeUnknown = true
		}
	}
	if !a.noting {
		return note, false, nil
	}
	switch {
	case noteErr == nil:
		a.noteWritten = note.written
		if !note.posted {
			s.metrics.notes.WithLabelValues("already_written").Inc()
		}
	case isGone(noteErr):
		a.gone()
		return note, true, nil
	case errors.Is(noteErr, ticketsystem.ErrValidation):
		// The note was refused; the fields to apply still are.
		a.errText = "note rejected: " + noteErr.Error()
		for _, p := range a.plans {
			if p.out.Action == v1.Action_ACTION_SUGGESTED {
				p.finish(v1.Action_ACTION_FAILED, ReasonRejected)
			}
		}
		a.permanent = pipeline.Permanent(fmt.Errorf("note for ticket %d: %w", pred.TicketId, noteErr))
	default:
		return note, false, noteErr
	}
	return note, false, nil
}

// putTicket sends the PUT and settles the fields it sets. writtenAt is the
// version the PUT produced (zero: unknown). stop ends the delivery with err
// (nil: settled) before its final record; the note this delivery posted
// (written, nil: none) is recorded first, so a retry need not search the
// conversations for it.
func (s *Stage) putTicket(ctx, wctx context.Context, a *attempt, upd ticketsystem.Update, written *ledger.Note) (writtenAt time.Time, stop bool, err error) {
	pred := a.pred
	after, err := s.tickets.UpdateTicket(wctx, pred.TicketId, upd)
	switch {
	case err == nil:
		s.metrics.writes.WithLabelValues("ok").Inc()
		a.putApplied = true
		if !after.UpdatedAt.IsZero() {
			a.observed = ledger.SeenOf(after, s.now())
		}
		return after.UpdatedAt, false, nil
	case isGone(err):
		s.metrics.writes.WithLabelValues("gone").Inc()
		s.recordNote(ctx, a, a.rec, written)
		a.gone()
		return time.Time{}, true, a.permanent
	case errors.Is(err, ticketsystem.ErrValidation):
		s.metrics.writes.WithLabelValues("rejected").Inc()
		if gone := s.writtenLabelsGone(ctx, a.plans); len(gone) > 0 {
			// The cached catalog was stale: a value written was removed
			// from the helpdesk. The next delivery resolves the labels
			// against the fresh catalog and skips that field.
			s.recordNote(ctx, a, a.rec, written)
			return time.Time{}, true, pipeline.RetryAfter(fmt.Errorf("update of ticket %d rejected: %s no longer in the helpdesk: %w",
				pred.TicketId, strings.Join(gone, ", "), err), time.Second)
		}
		a.errText = joinErr(a.errText, "update rejected: "+err.Error())
		for _, p := range a.plans {
			if p.write {
				p.write = false
				p.out.NewValue = ""
				p.finish(v1.Action_ACTION_FAILED, ReasonRejected)
			}
		}
		a.permanent = pipeline.Permanent(fmt.Errorf("update of ticket %d: %w", pred.TicketId, err))
		return time.Time{}, false, nil
	default:
		s.metrics.writes.WithLabelValues("error").Inc()
		if mayHaveLanded(err) {
			a.writeUnknown = true
		}
		s.recordNote(ctx, a, a.rec, written)
		return time.Time{}, true, fmt.Errorf("update ticket %d: %w", pred.TicketId, err)
	}
}
