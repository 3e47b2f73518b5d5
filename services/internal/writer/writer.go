// Package writer is the writer stage: it consumes predictions from
// PREDICTIONS, applies them to the ticket system and publishes exactly one
// Outcome per prediction to OUTCOMES.
//
// For one prediction it:
//
//  1. settles shadow and abstain decisions without any API call;
//  2. skips the prediction if the ledger shows that a prediction from a newer
//     ticket version was already applied;
//  3. maps labels to the helpdesk's ids through the cached catalog (and the
//     optional label map), refusing labels the catalog does not have;
//  4. compares the predicted version with the newest version autotriage
//     observed (the ledger's seen record, no API call; with
//     AUTOTRIAGE_WRITER_REREAD, the ticket read again) and leaves alone every
//     field a person changed after the predicted version or had already set;
//  5. records in the ledger what it is about to write (ledger.Intent), so
//     that a delivery after a crash tells the values an earlier delivery of
//     the same decision wrote from a person's and reports them APPLIED, as
//     that delivery would have; in the same compare-and-set, the note it is
//     about to post is claimed (ledger.Note, see planNote);
//  6. posts the optional private note (at most once per decision), then
//     sends one PUT with every field to change, the tags merged with the
//     newest known ones and the autotriage tag;
//  7. records what it wrote in the ledger (the note as written too), with
//     the ticket's updated_at after the write, so the fetcher can skip
//     autotriage's own version;
//  8. publishes the Outcome, whose message id is derived from the
//     prediction, so a redelivery cannot add a second one.
//
// The note goes before the PUT because adding a note changes the ticket's
// updated_at: this way the PUT's answer carries the last version autotriage
// produced. A posted note is always followed by a PUT (the tags, at least),
// so no read is needed to learn that version. A prediction therefore costs
// one PUT, plus one note when notes are on, and nothing for shadow or
// abstain decisions.
package writer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// Tickets is the part of the ticket-system adapter the writer uses.
type Tickets interface {
	ticketsystem.TicketGetter
	ticketsystem.TicketUpdater
	ticketsystem.NoteAdder
	ticketsystem.ConversationLister
	ticketsystem.CatalogReader
}

// Publisher stores a message in its stream.
type Publisher interface {
	Publish(ctx context.Context, m pipeline.OutMsg) (pipeline.PubAck, error)
}

// Consumer runs a handler over a durable consumer.
type Consumer interface {
	Consume(ctx context.Context, o pipeline.ConsumeOptions, h pipeline.Handler) error
}

// Deps are the stage's collaborators.
type Deps struct {
	Tickets   Tickets
	KV        ledger.KV // the writer's bucket (pipeline.BucketWriter)
	Publisher Publisher
	Log       *slog.Logger
	// Registerer receives the stage's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// PipelineMetrics, when set, counts consume results (service.Runtime.Metrics).
	PipelineMetrics *pipeline.Metrics
	// Now replaces the clock (tests).
	Now func() time.Time
	// System and Account name the helpdesk account the writer works for
	// (catalog changes are recorded and published for it). Empty: the one
	// the first prediction names.
	System, Account string
}

// Stage is one writer replica.
type Stage struct {
	cfg      Config
	labelMap LabelMap
	log      *slog.Logger
	tickets  Tickets
	ledger   *ledger.Ledger
	kv       ledger.KV
	pub      Publisher
	catalog  *catalogCache
	metrics  *metrics
	pmetrics *pipeline.Metrics
	now      func() time.Time
	locks    keyedLocks
	// id names this replica in the ticket leases it holds; deliveries
	// makes every delivery's holder name unique.
	id         string
	deliveries atomic.Uint64
	// checked: the label map was checked against the catalog (CheckCatalog).
	checked atomic.Bool
	account account
	// reported caches the labels reported removed (labelRemoved): true when
	// the writer's catalog record had them.
	reportedMu sync.Mutex
	reported   map[string]bool
}

// New builds a stage. cfg must be valid (Config.Validate).
func New(cfg Config, d Deps) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Tickets == nil || d.KV == nil || d.Publisher == nil {
		return nil, errors.New("writer: Tickets, KV and Publisher are required")
	}
	lm, err := ParseLabelMap(cfg.LabelMap)
	if err != nil {
		return nil, fmt.Errorf("writer: AUTOTRIAGE_LABEL_MAP: %w", err)
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	s := &Stage{
		cfg: cfg, labelMap: lm, log: d.Log, tickets: d.Tickets, ledger: ledger.New(d.KV), kv: d.KV, pub: d.Publisher,
		catalog:  &catalogCache{src: d.Tickets, ttl: cfg.CatalogTTL, minRefresh: cfg.CatalogMinRefresh, now: d.Now},
		metrics:  newMetrics(d.Registerer),
		pmetrics: d.PipelineMetrics, now: d.Now, id: replicaID(),
		reported: map[string]bool{},
	}
	if d.Account != "" {
		s.account.learn(d.System, d.Account)
	}
	return s, nil
}

// Run consumes PREDICTIONS until ctx ends. It first checks the label map
// against the helpdesk catalog (CheckCatalog) unless Build did, and keeps
// the catalog fresh meanwhile (watchCatalog).
func (s *Stage) Run(ctx context.Context, cons Consumer) error {
	if err := s.CheckCatalog(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return err
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go s.watchCatalog(wctx)
	return cons.Consume(ctx, pipeline.ConsumeOptions{
		Stage:       "writer",
		Stream:      pipeline.StreamPredictions,
		Durable:     pipeline.ConsumerWriter,
		Concurrency: s.cfg.Concurrency,
		Metrics:     s.pmetrics,
	}, s.Handle)
}

// OutcomeID names the outcome of one attempt at a prediction: the
// prediction's identity (v1.PredictionKey: ticket version, model, batch)
// and, for an operator's retry or replay, its run (the message's
// Autotriage-Attempt header). Redeliveries of one attempt publish its
// outcome once; a later attempt's outcome is stored beside the earlier
// one and supersedes it (readers keep the latest per prediction key).
func OutcomeID(p *v1.Prediction, attempt string) string {
	id := "outcome:" + v1.PredictionKey(p)
	if attempt != "" {
		id += ":" + attempt
	}
	return id
}

// Handle applies one prediction and publishes its outcome. Undecodable or
// invalid predictions go to the DLQ without an outcome (they name no
// ticket). A prediction the ticket system rejects gets a FAILED outcome and
// goes to the DLQ. Rate limits and transient failures are retried
// (pipeline.RetryAfter with the system's Retry-After, or back-off); every
// step is idempotent, so a retry repeats nothing that already happened.
func (s *Stage) Handle(ctx context.Context, m *pipeline.Msg) error {
	pred, err := decodePrediction(m.Data)
	if err != nil {
		s.metrics.invalid.Inc()
		return pipeline.Permanent(err)
	}
	use := &usage{}
	ctx = withUsage(ctx, use)
	unlock := s.locks.lock(ledger.AppliedKey(pred.System, pred.Account, pred.TicketId))
	defer unlock()

	attemptID := m.HeaderValue(pipeline.HeaderAttempt)
	a, err := s.applyLeased(ctx, pred, m.NumDelivered, s.holderOf(m))
	s.metrics.credits.Add(float64(use.credits.Load()))
	s.metrics.rateLimited.Add(float64(use.rateLimited.Load()))
	if err != nil && !pipeline.IsPermanent(err) {
		err = retryable(err)
		if !m.Final() {
			s.log.Info("prediction will be retried", "ticket", pred.TicketId, "deliveries", m.NumDelivered, "err", err)
			return err
		}
		// Final delivery: the message goes to the DLQ; report it first, so
		// every prediction gets its outcome.
		a.failUnfinished(fmt.Sprintf("gave up after %d deliveries: %v", m.NumDelivered, err))
	}
	for _, p := range a.plans {
		s.metrics.decisions.WithLabelValues(p.pred.Field, p.pred.Decision.Short()).Inc()
		s.metrics.actions.WithLabelValues(p.pred.Field, p.out.Action.Short()).Inc()
	}
	out := s.outcome(a, use)
	out.Attempt = attemptID
	data, merr := proto.Marshal(out)
	if merr != nil {
		return pipeline.Permanent(fmt.Errorf("encode outcome: %w", merr))
	}
	pctx := ctx
	if ctx.Err() != nil {
		// Cancelled on its last delivery (a shutdown past its work
		// deadline): the message goes to the DLQ, and its FAILED outcome
		// must still be stored, briefly, beside it.
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
	}
	ack, perr := s.pub.Publish(pctx, pipeline.OutMsg{
		Subject: pipeline.OutcomeSubject(pred.System, pred.Account, pred.TicketId),
		ID:      OutcomeID(pred, attemptID),
		Data:    data,
		Header:  map[string]string{pipeline.HeaderContentType: pipeline.ContentTypeProtobuf},
	})
	if perr != nil {
		// Everything before is idempotent: the redelivery publishes it.
		return fmt.Errorf("publish outcome for ticket %d: %w", pred.TicketId, perr)
	}
	if ack.Duplicate {
		// Expected when an earlier delivery of this attempt stored the
		// outcome and died before its ack. On a first delivery the stream
		// holds an outcome of the same attempt that this one did not
		// produce: this outcome is lost, so say so.
		expected := m.NumDelivered > 1
		s.metrics.outcomeDuplicates.WithLabelValues(strconv.FormatBool(expected)).Inc()
		if !expected {
			s.log.Warn("outcome dropped as a duplicate on the prediction's first delivery; OUTCOMES keeps an earlier one",
				"ticket", pred.TicketId, "outcome_id", OutcomeID(pred, attemptID))
		}
	}
	s.countOutcome(out)
	if a.putApplied && !a.createdAt.IsZero() {
		s.metrics.endToEnd.Observe(max(s.now().Sub(a.createdAt).Seconds(), 0))
	}
	if err != nil {
		s.log.Warn("prediction failed for good", "ticket", pred.TicketId, "err", err)
	}
	return err
}

// countOutcome counts a published outcome as failed, ok (something applied
// or suggested) or skipped.
func (s *Stage) countOutcome(out *v1.Outcome) {
	switch {
	case out.Error != "":
		s.metrics.outcomes.WithLabelValues("failed").Inc()
	case slices.ContainsFunc(out.Fields, func(f *v1.FieldOutcome) bool {
		return f.Action == v1.Action_ACTION_APPLIED || f.Action == v1.Action_ACTION_SUGGESTED
	}):
		s.metrics.outcomes.WithLabelValues("ok").Inc()
	default:
		s.metrics.outcomes.WithLabelValues("skipped").Inc()
	}
}

// applyLeased applies one delivery of pred, taking the ticket's write lease
// from other replicas: it starts again from a fresh read when another
// writer moved the ticket's record (up to maxRestarts), waits in process a
// little for a lease held elsewhere, and otherwise asks for a redelivery
// once the lease may be free.
func (s *Stage) applyLeased(ctx context.Context, pred *v1.Prediction, delivery uint64, holder string) (*attempt, error) {
	var a *attempt
	var err error
	waitUntil := time.Now().Add(leaseWaitInProcess)
	for restarts := 0; ; {
		a = &attempt{pred: pred, delivery: delivery, holder: holder}
		err = s.apply(ctx, a)
		var held *leaseHeld
		switch {
		case errors.Is(err, errRecordMoved) && restarts < maxRestarts:
			restarts++
			s.metrics.leaseWaits.WithLabelValues("restart").Inc()
			continue
		case errors.As(err, &held) && time.Now().Before(waitUntil) && s.now().Before(held.until):
			s.metrics.leaseWaits.WithLabelValues("wait").Inc()
			if sleepCtx(ctx, 100*time.Millisecond) {
				continue
			}
		}
		switch {
		case errors.As(err, &held):
			s.metrics.leaseWaits.WithLabelValues("redeliver").Inc()
			err = pipeline.RetryAfter(err, leaseRetry(held, s.now(), delivery))
		case errors.Is(err, errRecordMoved):
			err = pipeline.RetryAfter(err, time.Second)
		}
		return a, err
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// attempt is the state of one delivery's handling.
type attempt struct {
	pred     *v1.Prediction
	delivery uint64    // the message's delivery count (1: first)
	holder   string    // this delivery's name in the ticket's lease
	readAt   time.Time // the version read from the ticket system before writing (zero: not read)
	hash     string    // the decision's hash (DecisionHash)
	// rec is the ticket's ledger record as this delivery last read or
	// stored it (nil: none), the base of its next compare-and-set.
	rec *ledger.Applied
	// lease is the intent this delivery recorded (nil: none yet); released
	// once the lease was given back or the final record stored.
	lease        *ledger.Intent
	released     bool
	writeUnknown bool // a note or PUT failed and may still have landed
	// observed is the newest ticket version this delivery received (its
	// GET, its PUT's answer; zero: none), kept in the record it stores.
	observed    ledger.Seen
	plans       []*fieldPlan
	noting      bool // the decision owes a note
	noteWritten bool
	putApplied  bool
	// permanent is the ticket system's final refusal of the note or the
	// PUT (pipeline.Permanent): the delivery records what it did, then
	// ends with it.
	permanent error
	createdAt time.Time
	errText   string
}

// failUnfinished marks every field whose effect did not happen as FAILED.
func (a *attempt) failUnfinished(msg string) {
	a.errText = msg
	for _, p := range a.plans {
		unfinished := p.pending || (p.write && !a.putApplied) ||
			(p.out.Action == v1.Action_ACTION_SUGGESTED && !a.noteWritten)
		if unfinished {
			p.write = false
			p.finish(v1.Action_ACTION_FAILED, msg)
		}
	}
}

// current returns the ticket as the prediction is checked against.
//
// Without Reread it costs no API call: it is the newest version autotriage
// has observed, that is the newer of the fetcher's seen record (every
// version the fetcher reads) and the writer's own in the ledger record (the
// version its last PUT produced, Applied.Seen) when it is at least as new as
// the predicted version, else the predicted version itself. A field then
// counts as changed by a person when that newer version holds another value
// than the predicted one (decide). When autotriage's own last write is newer
// than both, the tags it added are merged in, so a PUT built on an older
// version does not drop them.
//
// With Reread, for a prediction that carries no ticket snapshot, or when an
// earlier delivery of this decision recorded its intent and never its write
// (it died or failed after its intent: its PUT may have landed without its
// version being recorded anywhere), the ticket is read (GET, 1 credit; read
// reports it), and apply keeps that version in the record it stores.
//
// gone reports a ticket known to be deleted or spam.
func (s *Stage) current(ctx context.Context, a *attempt) (cur *ticketsystem.Ticket, read, gone bool, err error) {
	pred, rec := a.pred, a.rec
	was := pred.GetTicket()
	if s.cfg.Reread || was == nil || unrecordedIntent(rec, pred.TicketUpdatedAt.AsTime(), a.hash) {
		cur, err := s.tickets.GetTicket(ctx, pred.TicketId)
		if isGone(err) || (err == nil && (cur.Spam || cur.Deleted)) {
			return nil, false, true, nil
		}
		if err != nil {
			return nil, false, false, fmt.Errorf("read ticket %d: %w", pred.TicketId, err)
		}
		return cur, true, false, nil
	}
	cur = &ticketsystem.Ticket{
		ID: pred.TicketId, Tags: slices.Clone(was.Tags), Type: was.Type, GroupID: was.GroupId,
		ResponderID: was.ResponderId, RequesterID: was.RequesterId, Priority: int(was.Priority),
		Status: int(was.Status), Source: int(was.Source), UpdatedAt: pred.TicketUpdatedAt.AsTime(),
	}
	if was.CreatedAt != nil {
		cur.CreatedAt = was.CreatedAt.AsTime()
	}
	fs, err := s.ledger.GetSeen(ctx, pred.System, pred.Account, pred.TicketId)
	found := err == nil
	switch {
	case err == nil, errors.Is(err, ledger.ErrNotFound):
	case errors.Is(err, ledger.ErrUnreadable):
		s.log.Warn("unreadable seen record; checking against the predicted version and autotriage's own", "ticket", pred.TicketId, "err", err)
	default:
		return nil, false, false, fmt.Errorf("read the newest observed version: %w", err)
	}
	if rs, ok := ledger.NewestSeen(fs, found, rec); ok && !rs.UpdatedAt.Before(cur.UpdatedAt) {
		cur.UpdatedAt, cur.GroupID, cur.Type = rs.UpdatedAt, rs.GroupID, rs.Type
		cur.Priority, cur.Status, cur.Tags = int(rs.Priority), int(rs.Status), slices.Clone(rs.Tags)
		cur.Spam, cur.Deleted = rs.Spam, rs.Deleted
	}
	if cur.Spam || cur.Deleted {
		return nil, false, true, nil
	}
	if rec != nil && rec.WrittenUpdatedAt.After(cur.UpdatedAt) {
		cur.Tags = mergeTags(cur.Tags, rec.Fields.Tags, []string{s.cfg.Tag})
	}
	return cur, false, false, nil
}

// unrecordedIntent reports whether the record holds the intent of the
// decision made from source that no delivery finished: not released, so
// its note and PUT may have landed.
func unrecordedIntent(rec *ledger.Applied, source time.Time, decision string) bool {
	if rec == nil {
		return false
	}
	in := rec.IntentFor(source, decision)
	return in != nil && !in.Until.IsZero()
}

// recordIntent stores, in the ticket's ledger record, the write this
// delivery is about to make (ledger.Intent: the predicted version, the
// decision, the values of every field the PUT sets, and the ticket's write
// lease) and the planned state of the decision's note (notePlan.store). It
// is a compare-and-set against the record as apply read it (rec): a change
// by another writer in between ends the delivery with errRecordMoved, to be
// started again from a fresh read (see lease.go). It returns the stored
// record, which record then updates.
func (s *Stage) recordIntent(ctx context.Context, a *attempt, rec *ledger.Applied, hash string, np *notePlan, cur *ticketsystem.Ticket) (*ledger.Applied, error) {
	pred := a.pred
	in := s.newIntent(a, hash)
	next, err := s.updateRecord(ctx, pred, rec, func(r *ledger.Applied, found bool) error {
		if found != (rec != nil) || (rec != nil && !rec.SameWrites(*r)) {
			return errRecordMoved
		}
		if err := np.store(r); err != nil {
			return err
		}
		adoptAbandoned(r, cur, s.now())
		r.Intent = in
		r.ObserveSeen(a.observed)
		return nil
	})
	switch {
	case errors.Is(err, errRecordMoved):
		return nil, err
	case errors.Is(err, errNoteRaced):
		return nil, pipeline.RetryAfter(err, time.Second)
	case err != nil:
		return nil, fmt.Errorf("record the intended write to ticket %d in the ledger: %w", pred.TicketId, err)
	}
	a.lease = in
	return next, nil
}

// record merges this write into the ticket's ledger record, with the note
// this delivery posted as written (note, nil: none), and releases the
// ticket's write lease. Only values autotriage wrote become the record's
// fields (a value a person had set, even the predicted one, stays the
// person's: changing it later is no override).
func (s *Stage) record(ctx context.Context, a *attempt, rec *ledger.Applied, cat *ticketsystem.Catalog, writtenAt time.Time, note *ledger.Note) error {
	pred := a.pred
	src := pred.TicketUpdatedAt.AsTime()
	_, err := s.updateRecord(ctx, pred, rec, func(r *ledger.Applied, _ bool) error {
		if src.After(r.SourceUpdatedAt) {
			r.SourceUpdatedAt = src
		}
		if writtenAt.After(r.WrittenUpdatedAt) {
			r.WrittenUpdatedAt, r.ReadUpdatedAt = writtenAt, a.readAt
		}
		r.ObserveSeen(a.observed)
		// Once another delivery took the lease over (this one outlived it),
		// the fields are that delivery's to record.
		ours := a.lease == nil || (r.Intent != nil && r.Intent.Holder == a.holder)
		for _, p := range a.plans {
			if !ours || p.out.Action != v1.Action_ACTION_APPLIED || p.out.Reason != ReasonApplied {
				continue
			}
			switch p.pred.Field {
			case FieldGroup:
				r.Fields.GroupID, r.Fields.GroupName = p.t.groupID, groupName(cat, p.t.groupID)
			case FieldType:
				r.Fields.Type = p.t.typ
			case FieldPriority:
				r.Fields.Priority = int32(p.t.priority)
			case FieldTags:
				r.Fields.Tags = mergeTags(r.Fields.Tags, p.addTags, p.ownTags)
			}
			// A field autotriage sets again is watched for overrides again.
			r.OverridesSeen = slices.DeleteFunc(r.OverridesSeen, func(f string) bool { return f == p.pred.Field })
		}
		if ours {
			s.recordDecided(r, a, cat)
		}
		if note != nil {
			r.SetNote(*note)
		}
		if a.lease != nil && r.Intent != nil && r.Intent.Holder == a.holder && !r.Intent.Until.IsZero() {
			released := *r.Intent
			released.Until = time.Time{}
			r.Intent = &released
		}
		r.ModelVersion = modelVersion(pred)
		r.ModelID = pred.ModelId
		r.At = s.now().UTC()
		return nil
	})
	if err != nil {
		return fmt.Errorf("record ledger of ticket %d: %w", pred.TicketId, err)
	}
	a.released = true
	return nil
}

// recordNote records a note this delivery posted as written when the
// delivery ends before its record (note, nil: none). A failure is only
// logged: the next delivery finds the state pending and the marker.
func (s *Stage) recordNote(ctx context.Context, a *attempt, rec *ledger.Applied, note *ledger.Note) {
	if note == nil {
		return
	}
	if _, err := s.updateRecord(ctx, a.pred, rec, func(r *ledger.Applied, _ bool) error {
		r.SetNote(*note)
		return nil
	}); err != nil {
		s.log.Warn("note written but not recorded", "ticket", a.pred.TicketId, "err", err)
	}
}

// updateRecord stores merge's change to the ticket's ledger record. rec is
// the record as this delivery last read or stored it (nil: there was none),
// so the common case is one compare-and-set without a read
// (ledger.UpdateAppliedFrom); a conflict (another replica; fetchers before
// the fetcher kept its override bookkeeping apart) applies merge to the
// current record.
func (s *Stage) updateRecord(ctx context.Context, pred *v1.Prediction, rec *ledger.Applied, merge func(*ledger.Applied, bool) error) (*ledger.Applied, error) {
	var cur ledger.Applied
	if rec != nil {
		cur = *rec
	}
	next, err := s.ledger.UpdateAppliedFrom(ctx, pred.System, pred.Account, pred.TicketId, cur, rec != nil, merge)
	if err != nil {
		return nil, err
	}
	return &next, nil
}

// gone settles the prediction for a ticket that is deleted or spam.
func (a *attempt) gone() {
	for _, p := range a.plans {
		if p.pending || p.write || (p.out.Action == v1.Action_ACTION_SUGGESTED && !a.noteWritten) {
			p.write = false
			p.out.NewValue = ""
			p.finish(v1.Action_ACTION_SKIPPED, ReasonGone)
		}
	}
}

func (s *Stage) outcome(a *attempt, use *usage) *v1.Outcome {
	pred := a.pred
	now := s.now()
	out := &v1.Outcome{
		System: pred.System, Account: pred.Account, TicketId: pred.TicketId,
		TicketUpdatedAt: pred.TicketUpdatedAt, ModelId: pred.ModelId, ModelVersion: pred.ModelVersion,
		Kind: v1.OutcomeKind_OUTCOME_KIND_DECISION, NoteWritten: a.noteWritten,
		ApiCredits: int32(min(use.credits.Load(), 1<<31-1)), Error: a.errText,
		At: timestamppb.New(now), Prediction: pred, PredictionKey: v1.PredictionKey(pred),
	}
	for _, p := range a.plans {
		out.Fields = append(out.Fields, p.out)
	}
	if !a.createdAt.IsZero() {
		out.LatencySeconds = max(now.Sub(a.createdAt).Seconds(), 0)
	}
	return out
}

// isGone reports a ticket that is deleted, spam or unknown.
func isGone(err error) bool {
	return errors.Is(err, ticketsystem.ErrNotFound) || errors.Is(err, ticketsystem.ErrGone)
}

// retryable turns a ticket-system failure into the consume loop's retry
// instruction: the system's Retry-After for rate limits, a minute for
// credentials an operator has to fix, back-off for the rest.
func retryable(err error) error {
	if _, ok := pipeline.RetryDelay(err); ok {
		return err
	}
	if d, ok := ticketsystem.RetryAfter(err); ok {
		return pipeline.RetryAfter(err, max(d, time.Second))
	}
	if errors.Is(err, ticketsystem.ErrAuth) || errors.Is(err, ticketsystem.ErrPermission) {
		return pipeline.RetryAfter(err, time.Minute)
	}
	return err
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// decodePrediction reads a prediction message from the stream; an error
// means the message can never be applied.
func decodePrediction(data []byte) (*v1.Prediction, error) {
	var p v1.Prediction
	if err := proto.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("prediction message is not a valid autotriage.v1.Prediction: %w", err)
	}
	if err := validate(&p); err != nil {
		return nil, err
	}
	return &p, nil
}

func validate(p *v1.Prediction) error {
	switch {
	case p.TicketId <= 0:
		return fmt.Errorf("invalid prediction: ticket id %d", p.TicketId)
	case p.System == "" || p.Account == "":
		return fmt.Errorf("invalid prediction for ticket %d: system and account are required", p.TicketId)
	case p.TicketUpdatedAt == nil:
		return fmt.Errorf("invalid prediction for ticket %d: ticket_updated_at is required", p.TicketId)
	}
	return nil
}

// keyedLocks serialises the handling of predictions for the same ticket in
// this process, so two of them cannot interleave their read-check-write.
// (Replicas rely on the compare-and-sets of the ledger record.)
type keyedLocks struct {
	mu sync.Mutex
	m  map[string]*keyedLock
}

type keyedLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedLocks) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyedLock{}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
