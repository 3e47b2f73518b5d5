package fetcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// Feedback: what people made of the values autotriage applied or suggested,
// read from every observed ticket version against the writer's ledger
// record (ledger.Applied.Decided and .Suggested), published to OUTCOMES as
// OUTCOME_KIND_FEEDBACK outcomes (live precision per field and class is
// counted from them, package quality):
//
//   - an applied value a person changes: VERDICT_OVERRIDDEN, on the
//     override outcome itself (detectOverrides); for tags, an added tag a
//     person removed;
//   - an applied value still in place when the ticket is resolved or
//     closed: VERDICT_CONFIRMED;
//   - a suggested value a person then sets (the field holds something else
//     than when the suggestion was written): VERDICT_ACCEPTED when it is
//     the suggested value, VERDICT_REJECTED otherwise. A suggested tag is
//     accepted when it is added, rejected when the ticket is resolved or
//     closed without it. A single-valued field left as it was at
//     resolution is no evidence either way (agents resolve tickets without
//     triaging them) and counts nothing.
//
// Each verdict is published once per ticket, field (tag) and decision (the
// predicted version): the first verdict on a decision is final. What was
// reported is kept in the fetcher's own bucket (feedbackKey), never in the
// writer's record. The outcome is published before it is recorded, so a
// crash in between publishes it again under the same message id (the
// stream drops it within its duplicate window) rather than never.

// Freshdesk statuses that end a ticket's handling.
const (
	statusResolved = 4
	statusClosed   = 5
)

// FieldTags is the tags field's name in feedback.
const FieldTags = "tags"

// verdictLabels are the verdict label values of autotriage_feedback_total.
var verdictLabels = []string{"confirmed", "overridden", "accepted", "rejected"}

// VerdictLabel is a verdict's name in metrics and message ids.
func VerdictLabel(v v1.Verdict) string {
	switch v {
	case v1.Verdict_VERDICT_CONFIRMED:
		return "confirmed"
	case v1.Verdict_VERDICT_OVERRIDDEN:
		return "overridden"
	case v1.Verdict_VERDICT_ACCEPTED:
		return "accepted"
	case v1.Verdict_VERDICT_REJECTED:
		return "rejected"
	}
	return "unspecified"
}

// FeedbackID is the message id of a feedback outcome: one per ticket, field
// (key: the field or "tags:<tag>"), verdict and decision (the version the
// prediction was made from).
func FeedbackID(system, account string, id int64, key string, v v1.Verdict, decidedFrom time.Time) string {
	return fmt.Sprintf("feedback:%s:%s:%d:%s:%s:%s", system, account, id, key, VerdictLabel(v),
		decidedFrom.UTC().Format(time.RFC3339))
}

// FeedbackKey is the fetcher-bucket key of what the fetcher reported for a
// ticket: feedback verdicts and overrides (entries "override:<field>@<version>").
func FeedbackKey(system, account string, id int64) string {
	return "feedback." + pipeline.Token(system) + "." + pipeline.Token(account) + "." + strconv.FormatInt(id, 10)
}

// feedbackRecord is what was reported for one ticket: decision (key@version)
// to verdict. Bounded by maxFeedbackEntries, oldest first out.
type feedbackRecord struct {
	Reported []reportedVerdict `json:"reported"`
}

type reportedVerdict struct {
	Decision string    `json:"decision"` // key@version
	Verdict  string    `json:"verdict"`
	At       time.Time `json:"at"`
}

const maxFeedbackEntries = 64

func (r feedbackRecord) has(decision string) bool {
	return slices.ContainsFunc(r.Reported, func(v reportedVerdict) bool { return v.Decision == decision })
}

// verdict is one feedback to publish.
type verdict struct {
	d          ledger.Decided
	v          v1.Verdict
	decision   v1.Decision
	finalValue string
}

func (v verdict) decisionName() string {
	return v.d.Key() + "@" + v.d.SourceUpdatedAt.UTC().Format(time.RFC3339)
}

// detectFeedback publishes the verdicts version t gives on the values
// recorded in a (overrides of single-valued fields excepted: see
// detectOverrides). An error means the version must be handled again.
func (f *Fetcher) detectFeedback(ctx context.Context, t *ticketsystem.Ticket, a ledger.Applied, rr *reportedRead) error {
	if (len(a.Decided) == 0 && len(a.Suggested) == 0) || a.ProducedByWrite(t.UpdatedAt) {
		return nil
	}
	cands := f.feedbackCandidates(ctx, t, a)
	if len(cands) == 0 {
		return nil
	}
	rec, err := rr.get(ctx)
	if err != nil {
		return err
	}
	var fresh []verdict
	for _, c := range cands {
		// A field reported overridden is not confirmed later, even if a
		// person sets the value back.
		if rec.has(c.decisionName()) || (c.v == v1.Verdict_VERDICT_CONFIRMED && rec.has(overrideDecision(a, c.d.Field))) {
			continue
		}
		fresh = append(fresh, c)
	}
	if len(fresh) == 0 {
		return nil
	}
	now := f.now().UTC()
	done := make([]reportedVerdict, 0, len(fresh))
	for _, c := range fresh {
		if err := f.publishFeedback(ctx, t, c); err != nil {
			return err
		}
		done = append(done, reportedVerdict{Decision: c.decisionName(), Verdict: VerdictLabel(c.v), At: now})
	}
	if err := rr.record(ctx, done); err != nil {
		// Published already: the next version repeats the publish under the
		// same message id, which the stream drops.
		f.metrics.feedbackErrors.Inc()
		f.log.Warn("feedback published but not recorded as reported", "ticket", t.ID, "err", err)
	}
	return nil
}

// feedbackCandidates lists every verdict t gives, reported before or not.
func (f *Fetcher) feedbackCandidates(ctx context.Context, t *ticketsystem.Ticket, a ledger.Applied) []verdict {
	ended := t.Status == statusResolved || t.Status == statusClosed
	var out []verdict
	for _, d := range a.Decided {
		if d.Field == FieldTags {
			if len(d.Target.Tags) == 0 {
				continue
			}
			has := slices.Contains(t.Tags, d.Target.Tags[0])
			switch {
			case !has:
				out = append(out, verdict{d: d, v: v1.Verdict_VERDICT_OVERRIDDEN, decision: v1.Decision_DECISION_APPLY, finalValue: strings.Join(t.Tags, ",")})
			case ended:
				out = append(out, verdict{d: d, v: v1.Verdict_VERDICT_CONFIRMED, decision: v1.Decision_DECISION_APPLY, finalValue: d.Target.Tags[0]})
			}
			continue
		}
		// Overrides of single-valued fields are reported by detectOverrides;
		// a field reported overridden (by a fetcher before the fetcher's own
		// record of overrides: OverridesSeen; else see detectFeedback) is
		// not confirmed later, even if a person sets the value back.
		if !ended || slices.Contains(a.OverridesSeen, d.Field) || !f.stillApplied(t, a.Fields, d) {
			continue
		}
		out = append(out, verdict{d: d, v: v1.Verdict_VERDICT_CONFIRMED, decision: v1.Decision_DECISION_APPLY, finalValue: d.Value})
	}
	for _, d := range a.Suggested {
		if v, ok := f.suggestionVerdict(ctx, t, a, d, ended); ok {
			out = append(out, v)
		}
	}
	return out
}

// stillApplied reports whether t holds the value d applied, and the ledger's
// fields still name it (a later write of another value replaces d anyway).
func (f *Fetcher) stillApplied(t *ticketsystem.Ticket, fl ledger.Fields, d ledger.Decided) bool {
	switch d.Field {
	case FieldGroup:
		return d.Target.GroupID != 0 && t.GroupID == d.Target.GroupID && fl.GroupID == d.Target.GroupID
	case FieldType:
		return d.Target.Type != "" && t.Type == d.Target.Type && fl.Type == d.Target.Type
	case FieldPriority:
		return d.Target.Priority != 0 && t.Priority == int(d.Target.Priority) && fl.Priority == d.Target.Priority
	}
	return false
}

// suggestionVerdict is the verdict t gives on suggestion d, if any.
func (f *Fetcher) suggestionVerdict(ctx context.Context, t *ticketsystem.Ticket, a ledger.Applied, d ledger.Decided, ended bool) (verdict, bool) {
	in := a.Intent
	mk := func(v v1.Verdict, final string) (verdict, bool) {
		return verdict{d: d, v: v, decision: v1.Decision_DECISION_SUGGEST, finalValue: final}, true
	}
	switch d.Field {
	case FieldTags:
		if len(d.Target.Tags) == 0 {
			return verdict{}, false
		}
		tag := d.Target.Tags[0]
		has := slices.Contains(t.Tags, tag)
		switch {
		case has && slices.Contains(d.From.Tags, tag):
			return verdict{}, false
		case has && in != nil && slices.Contains(in.Fields.Tags, tag):
			return verdict{}, false // autotriage's own write adds it
		case has:
			return mk(v1.Verdict_VERDICT_ACCEPTED, tag)
		case ended:
			return mk(v1.Verdict_VERDICT_REJECTED, strings.Join(t.Tags, ","))
		}
	case FieldGroup:
		if t.GroupID == d.From.GroupID || (in != nil && in.Fields.GroupID != 0 && in.Fields.GroupID == t.GroupID) {
			return verdict{}, false
		}
		final := f.catalog.groupName(ctx, t.GroupID)
		if final == "" && t.GroupID != 0 {
			final = strconv.FormatInt(t.GroupID, 10)
		}
		if t.GroupID == d.Target.GroupID {
			return mk(v1.Verdict_VERDICT_ACCEPTED, d.Value)
		}
		return mk(v1.Verdict_VERDICT_REJECTED, final)
	case FieldType:
		if t.Type == d.From.Type || (in != nil && in.Fields.Type != "" && in.Fields.Type == t.Type) {
			return verdict{}, false
		}
		if t.Type == d.Target.Type {
			return mk(v1.Verdict_VERDICT_ACCEPTED, d.Value)
		}
		return mk(v1.Verdict_VERDICT_REJECTED, t.Type)
	case FieldPriority:
		if t.Priority == int(d.From.Priority) || (in != nil && in.Fields.Priority != 0 && int(in.Fields.Priority) == t.Priority) {
			return verdict{}, false
		}
		if t.Priority == int(d.Target.Priority) {
			return mk(v1.Verdict_VERDICT_ACCEPTED, d.Value)
		}
		return mk(v1.Verdict_VERDICT_REJECTED, strconv.Itoa(t.Priority))
	}
	return verdict{}, false
}

// publishFeedback publishes one verdict as a FEEDBACK outcome.
func (f *Fetcher) publishFeedback(ctx context.Context, t *ticketsystem.Ticket, c verdict) error {
	now := f.now().UTC()
	out := &v1.Outcome{
		System: f.system, Account: f.account, TicketId: t.ID,
		TicketUpdatedAt: timestamppb.New(t.UpdatedAt.UTC()),
		ModelId:         c.d.ModelID, ModelVersion: c.d.ModelVersion,
		Kind:     v1.OutcomeKind_OUTCOME_KIND_FEEDBACK,
		At:       timestamppb.New(now),
		Feedback: feedbackOf(c.d, c.v, c.decision, c.finalValue, now),
	}
	data, err := proto.Marshal(out)
	if err != nil {
		return fmt.Errorf("encode feedback outcome: %w", err)
	}
	ack, err := f.bus.Publish(ctx, pipeline.OutMsg{
		Subject: pipeline.OutcomeSubject(f.system, f.account, t.ID),
		ID:      FeedbackID(f.system, f.account, t.ID, c.d.Key(), c.v, c.d.SourceUpdatedAt),
		Data:    data,
		Header:  map[string]string{pipeline.HeaderContentType: pipeline.ContentTypeProtobuf},
	})
	if err != nil {
		return fmt.Errorf("publish feedback on ticket %d %s: %w", t.ID, c.d.Key(), err)
	}
	if !ack.Duplicate {
		f.metrics.feedback.WithLabelValues(c.d.Field, VerdictLabel(c.v)).Inc()
		f.log.Info("feedback observed", "ticket", t.ID, "field", c.d.Field, "label", c.d.Label,
			"verdict", VerdictLabel(c.v), "final_value", c.finalValue, "model_version", c.d.ModelVersion)
	}
	return nil
}

func feedbackOf(d ledger.Decided, v v1.Verdict, dec v1.Decision, final string, at time.Time) *v1.Feedback {
	return &v1.Feedback{
		Field: d.Field, Label: d.Label, FinalValue: final, Verdict: v, Decision: dec,
		ModelId: d.ModelID, ModelVersion: d.ModelVersion, ObservedAt: timestamppb.New(at.UTC()),
	}
}

// overrideFeedback is the feedback an override outcome of field carries:
// the model label from the ledger's Decided (records of writers before it
// have none: the value autotriage set stands in for the label).
func overrideFeedback(a ledger.Applied, c overrideCheck, at time.Time) *v1.Feedback {
	d, ok := ledger.FindDecided(a.Decided, c.field)
	if !ok {
		d = ledger.Decided{Field: c.field, Label: c.autotriage, Value: c.autotriage, ModelVersion: a.ModelVersion, ModelID: a.ModelID}
	}
	return feedbackOf(d, v1.Verdict_VERDICT_OVERRIDDEN, v1.Decision_DECISION_APPLY, c.human, at)
}

// reportedRead is the fetcher's record of what was reported for one
// ticket (FeedbackKey: feedback verdicts and overrides), read at most once
// per observed version, on first need, and kept current by record.
type reportedRead struct {
	f    *Fetcher
	key  string
	read bool
	rec  feedbackRecord
	rev  uint64 // 0: no record
}

func (f *Fetcher) reported(id int64) *reportedRead {
	return &reportedRead{f: f, key: FeedbackKey(f.system, f.account, id)}
}

func (r *reportedRead) get(ctx context.Context) (feedbackRecord, error) {
	if r.read {
		return r.rec, nil
	}
	rec, rev, err := r.f.readFeedback(ctx, r.key)
	if err != nil {
		return feedbackRecord{}, err
	}
	r.read, r.rec, r.rev = true, rec, rev
	return rec, nil
}

// record adds entries to the record by compare-and-set, re-reading on
// conflict (another replica's webhook for the same ticket).
func (r *reportedRead) record(ctx context.Context, entries []reportedVerdict) error {
	if _, err := r.get(ctx); err != nil {
		return err
	}
	for range 5 {
		next := feedbackRecord{Reported: slices.Clone(r.rec.Reported)}
		for _, e := range entries {
			if !next.has(e.Decision) {
				next.Reported = append(next.Reported, e)
			}
		}
		next.Reported = next.Reported[max(len(next.Reported)-maxFeedbackEntries, 0):]
		b, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("encode feedback record: %w", err)
		}
		var rev uint64
		if r.rev == 0 {
			rev, err = r.f.state.Create(ctx, r.key, b)
		} else {
			rev, err = r.f.state.Update(ctx, r.key, b, r.rev)
		}
		if err == nil {
			r.rec, r.rev = next, rev
			return nil
		}
		if !errors.Is(err, pipeline.ErrExists) && !errors.Is(err, pipeline.ErrConflict) {
			return fmt.Errorf("record reported feedback %s: %w", r.key, err)
		}
		if r.rec, r.rev, err = r.f.readFeedback(ctx, r.key); err != nil {
			return err
		}
	}
	return fmt.Errorf("record reported feedback %s: kept changing: %w", r.key, pipeline.ErrConflict)
}

// readFeedback reads a ticket's record of reported feedback (rev 0: none).
// An unreadable record counts as empty: repeats are dropped by message id.
func (f *Fetcher) readFeedback(ctx context.Context, key string) (feedbackRecord, uint64, error) {
	e, err := f.state.Get(ctx, key)
	if errors.Is(err, pipeline.ErrNotFound) {
		return feedbackRecord{}, 0, nil
	}
	if err != nil {
		return feedbackRecord{}, 0, fmt.Errorf("read reported feedback %s: %w", key, err)
	}
	var r feedbackRecord
	if err := json.Unmarshal(e.Value, &r); err != nil {
		f.log.Warn("unreadable feedback record; replacing it", "key", key, "err", err)
		return feedbackRecord{}, e.Revision, nil
	}
	return r, e.Revision, nil
}
