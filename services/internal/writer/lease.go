package writer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// One writer per ticket at a time, across replicas.
//
// Freshdesk has no conditional update, so two writers that both decide on
// what they read and then PUT can land in either order: a prediction made
// from an older ticket version could be written after a newer one. The
// writers therefore serialise through the ticket's ledger record:
//
//   - the intent a delivery records before its note and its PUT is also the
//     ticket's write lease (ledger.Intent.Until): while it is live, no
//     other prediction for the ticket starts writing (it waits, or is
//     redelivered after a delay);
//   - the intent is recorded with a compare-and-set against the revision the
//     delivery read before deciding, and any change to the record other
//     than the fetcher's override bookkeeping (another writer's intent, its
//     final record, a released lease) makes the delivery start again from a
//     fresh read (errRecordMoved). Every write of another writer therefore
//     finished before this delivery read the record (and the ticket), or
//     starts after this delivery's lease: a delivery decides on a state no
//     write of autotriage's is changing, and a prediction older than the
//     newest one applied or in flight (ledger.Applied.NewestSource) is
//     skipped;
//   - the writes of a delivery (note, PUT) run under a deadline ahead of the
//     lease's end, so a slow delivery gives up before another can take
//     over; it releases the lease when it records its write, or when its
//     writes certainly did not happen. A writer that dies holding the lease
//     is replaced after at most AUTOTRIAGE_WRITER_LEASE.
//
// The same decision from the same ticket version (a redelivery of the
// prediction, or another model that decided the same) writes the same
// values, so it may proceed while the lease is live: a redelivery after a
// crash does not wait for the lease to run out.
//
// The lease relies on the replicas' clocks agreeing to well within the
// margin (leaseMargin) and on a writer not being paused between its last
// check of the deadline and its request reaching Freshdesk; Freshdesk offers
// no fencing token that could make it airtight.

// errRecordMoved means the ticket's ledger record changed between this
// delivery's read and its compare-and-set in a way that shows another write
// started or finished: the delivery starts again from a fresh read.
var errRecordMoved = errors.New("another writer changed the ticket's ledger record meanwhile")

// leaseHeld means another prediction for the ticket is being written.
type leaseHeld struct {
	holder string
	until  time.Time
}

func (e *leaseHeld) Error() string {
	return fmt.Sprintf("another prediction for this ticket is being written (lease held by %s until %s)",
		e.holder, e.until.UTC().Format(time.RFC3339))
}

// leaseWaitInProcess bounds how long a delivery waits, holding its message,
// for another writer's lease before it asks for a redelivery instead: a
// live writer finishes within a second or so; a dead one holds the lease
// until it runs out.
const leaseWaitInProcess = 5 * time.Second

// maxRestarts bounds the fresh starts of one delivery after errRecordMoved.
const maxRestarts = 5

// leaseMargin is how long before the lease ends a delivery's writes are
// cancelled, so they are over before another writer may take over.
func (s *Stage) leaseMargin() time.Duration {
	return min(s.cfg.Lease/5, 10*time.Second)
}

// leaseRetry is the redelivery delay of a delivery that found the lease
// held: until the lease runs out, but no longer than a back-off that grows
// with the deliveries, so a lease released early is noticed soon.
func leaseRetry(held *leaseHeld, now time.Time, deliveries uint64) time.Duration {
	backoff := time.Second << min(max(deliveries, 1)-1, 6)
	return max(min(held.until.Sub(now)+100*time.Millisecond, backoff), 100*time.Millisecond)
}

// writeContext bounds the note and the PUT of a delivery by its lease.
func (s *Stage) writeContext(ctx context.Context, a *attempt) (context.Context, context.CancelFunc) {
	if a.lease == nil {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, a.lease.Until.Add(-s.leaseMargin()))
}

// newIntent is the intent (and lease) a delivery records: the values its
// PUT sets, held by this delivery until the lease's end.
func (s *Stage) newIntent(a *attempt, hash string) *ledger.Intent {
	now := s.now().UTC()
	in := &ledger.Intent{SourceUpdatedAt: a.pred.TicketUpdatedAt.AsTime().UTC(), Decision: hash, At: now,
		Holder: a.holder, Until: now.Add(s.cfg.Lease)}
	for _, p := range a.plans {
		if !p.write {
			continue
		}
		switch p.pred.Field {
		case FieldGroup:
			in.Fields.GroupID, in.Fields.GroupName = p.t.groupID, p.t.name
		case FieldType:
			in.Fields.Type = p.t.typ
		case FieldPriority:
			in.Fields.Priority = int32(p.t.priority)
		case FieldTags:
			in.Fields.Tags = mergeTags(in.Fields.Tags, p.addTags)
		}
	}
	return in
}

// adoptAbandoned moves into the record's fields the values of an intent
// whose writer is gone (its lease ran out unreleased) and that the ticket
// now holds: its PUT landed, so they are autotriage's, and a person's later
// change of them is an override. Called before the intent is replaced.
func adoptAbandoned(r *ledger.Applied, cur *ticketsystem.Ticket, now time.Time) {
	in := r.Intent
	if in == nil || in.Until.IsZero() || now.Before(in.Until) || cur == nil {
		return
	}
	if in.Fields.GroupID != 0 && cur.GroupID == in.Fields.GroupID {
		r.Fields.GroupID, r.Fields.GroupName = in.Fields.GroupID, in.Fields.GroupName
	}
	if in.Fields.Type != "" && cur.Type == in.Fields.Type {
		r.Fields.Type = in.Fields.Type
	}
	if in.Fields.Priority != 0 && cur.Priority == int(in.Fields.Priority) {
		r.Fields.Priority = in.Fields.Priority
	}
	for _, t := range in.Fields.Tags {
		if cur.HasTag(t) {
			r.Fields.Tags = mergeTags(r.Fields.Tags, []string{t})
		}
	}
	if in.SourceUpdatedAt.After(r.SourceUpdatedAt) {
		r.SourceUpdatedAt = in.SourceUpdatedAt
	}
}

// releaseLease gives the lease back when the delivery ends without its
// final record: its writes certainly did not happen (refused, rate
// limited, nothing sent), so another prediction need not wait for the
// lease to run out. A failure is only logged: the lease then runs out.
func (s *Stage) releaseLease(ctx context.Context, a *attempt, rec *ledger.Applied) {
	if a.lease == nil || a.released {
		return
	}
	_, err := s.updateRecord(ctx, a.pred, rec, func(r *ledger.Applied, _ bool) error {
		if r.Intent == nil || r.Intent.Holder != a.holder || r.Intent.Until.IsZero() {
			return errNotHolder
		}
		released := *r.Intent
		released.Until = time.Time{}
		r.Intent = &released
		return nil
	})
	if err != nil && !errors.Is(err, errNotHolder) {
		s.log.Warn("cannot release the ticket's write lease; it runs out by itself", "ticket", a.pred.TicketId, "err", err)
		return
	}
	a.released = true
}

// errNotHolder: the record's lease is not this delivery's any more.
var errNotHolder = errors.New("the lease is not this delivery's")

// mayHaveLanded reports whether a failed write may still have reached the
// ticket system: only errors that prove the request was refused or never
// sent say it did not.
func mayHaveLanded(err error) bool {
	for _, refused := range []error{ticketsystem.ErrValidation, ticketsystem.ErrNotFound, ticketsystem.ErrGone,
		ticketsystem.ErrRateLimited, ticketsystem.ErrAuth, ticketsystem.ErrPermission, ticketsystem.ErrConflict,
		ticketsystem.ErrUnsupported} {
		if errors.Is(err, refused) {
			return false
		}
	}
	return true
}

// replicaID names this writer process in the leases it holds.
func replicaID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "writer"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// holderOf names one delivery of a message in a lease.
func (s *Stage) holderOf(m *pipeline.Msg) string {
	return fmt.Sprintf("%s/%d/%d/%d", s.id, m.StreamSeq, m.NumDelivered, s.deliveries.Add(1))
}
