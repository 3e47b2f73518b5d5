package fetcher

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// Override field names, the label values of autotriage_overrides_total.
const (
	FieldGroup    = "group"
	FieldType     = "type"
	FieldPriority = "priority"
)

// overrideCheck is one field autotriage set and what the ticket holds now.
type overrideCheck struct {
	field      string
	set        bool // autotriage set this field
	changed    bool // the ticket holds another value now
	autotriage string
	human      string
}

func (f *Fetcher) overrideChecks(ctx context.Context, t *ticketsystem.Ticket, fl ledger.Fields) []overrideCheck {
	groupLabel := func(id int64, name string) string {
		if id == 0 {
			return ""
		}
		if name == "" {
			name = f.catalog.groupName(ctx, id)
		}
		if name == "" {
			return strconv.FormatInt(id, 10)
		}
		return name
	}
	var out []overrideCheck
	if fl.GroupID != 0 {
		c := overrideCheck{field: FieldGroup, set: true, changed: t.GroupID != fl.GroupID,
			autotriage: groupLabel(fl.GroupID, fl.GroupName)}
		if c.changed {
			c.human = groupLabel(t.GroupID, "")
		}
		out = append(out, c)
	}
	if fl.Type != "" {
		out = append(out, overrideCheck{field: FieldType, set: true, changed: t.Type != fl.Type,
			autotriage: fl.Type, human: t.Type})
	}
	if fl.Priority != 0 {
		out = append(out, overrideCheck{field: FieldPriority, set: true, changed: t.Priority != int(fl.Priority),
			autotriage: strconv.Itoa(int(fl.Priority)), human: strconv.Itoa(t.Priority)})
	}
	return out
}

// detectOverrides reports, once per field and application, a person's
// change to a field autotriage set. It publishes an OUTCOME_KIND_OVERRIDE
// outcome per newly changed field, then records it in the fetcher's own
// record of the ticket (FeedbackKey, beside the feedback verdicts): the
// writer's record is the writer's alone. fields lists the newly reported
// fields; overridden is true when any field autotriage set differs now,
// reported before or not.
//
// A field counts as reported when the fetcher's record names its override
// for the application in a (overrideDecision), or when a's OverridesSeen
// lists it: the bookkeeping of fetchers before this one, which the writer
// still clears when it sets the field again. This fetcher never writes it.
//
// Publishing before recording means a crash in between reports the field
// again with the same message id (dropped by the stream) rather than never.
func (f *Fetcher) detectOverrides(ctx context.Context, t *ticketsystem.Ticket, a ledger.Applied, rr *reportedRead) (fields []string, overridden bool, err error) {
	var fresh []overrideCheck
	for _, c := range f.overrideChecks(ctx, t, a.Fields) {
		if !c.changed {
			continue
		}
		overridden = true
		if !slices.Contains(a.OverridesSeen, c.field) {
			fresh = append(fresh, c)
		}
	}
	if len(fresh) == 0 {
		return nil, overridden, nil
	}
	rec, err := rr.get(ctx)
	if err != nil {
		return nil, true, err
	}
	fresh = slices.DeleteFunc(fresh, func(c overrideCheck) bool { return rec.has(overrideDecision(a, c.field)) })
	if len(fresh) == 0 {
		return nil, true, nil
	}
	now := f.now()
	var done []reportedVerdict
	for _, c := range fresh {
		out := &v1.Outcome{
			System:          f.system,
			Account:         f.account,
			TicketId:        t.ID,
			TicketUpdatedAt: timestamppb.New(t.UpdatedAt.UTC()),
			ModelVersion:    a.ModelVersion,
			Kind:            v1.OutcomeKind_OUTCOME_KIND_OVERRIDE,
			At:              timestamppb.New(now.UTC()),
			Override: &v1.Override{
				Field:           c.field,
				AutotriageValue: c.autotriage,
				HumanValue:      c.human,
				ObservedAt:      timestamppb.New(now.UTC()),
				ModelVersion:    a.ModelVersion,
			},
			Feedback: overrideFeedback(a, c, now),
		}
		if out.Feedback.ModelId != "" {
			out.ModelId = out.Feedback.ModelId
		}
		data, err := proto.Marshal(out)
		if err != nil {
			return nil, true, fmt.Errorf("encode override outcome: %w", err)
		}
		ack, err := f.bus.Publish(ctx, pipeline.OutMsg{
			Subject: pipeline.OutcomeSubject(f.system, f.account, t.ID),
			ID:      OverrideID(f.system, f.account, t.ID, c.field, t.UpdatedAt),
			Data:    data,
			Header:  map[string]string{pipeline.HeaderContentType: pipeline.ContentTypeProtobuf},
		})
		if err != nil {
			return nil, true, fmt.Errorf("publish override of ticket %d %s: %w", t.ID, c.field, err)
		}
		if !ack.Duplicate {
			f.metrics.overrides.WithLabelValues(c.field).Inc()
			f.metrics.feedback.WithLabelValues(c.field, VerdictLabel(v1.Verdict_VERDICT_OVERRIDDEN)).Inc()
			f.log.Info("override observed", "ticket", t.ID, "field", c.field,
				"autotriage_value", c.autotriage, "human_value", c.human, "updated_at", t.UpdatedAt)
		}
		fields = append(fields, c.field)
		done = append(done, reportedVerdict{Decision: overrideDecision(a, c.field), Verdict: VerdictLabel(v1.Verdict_VERDICT_OVERRIDDEN), At: now.UTC()})
	}
	if err := rr.record(ctx, done); err != nil {
		return nil, true, fmt.Errorf("record overrides of ticket %d: %w", t.ID, err)
	}
	return fields, true, nil
}

// overrideDecision names, in the fetcher's record, the override of field
// against the application recorded in a: the field's Decided entry names
// the version its value was predicted from, so a field autotriage sets
// again (a new entry) is watched for overrides again, while writes of other
// fields leave it alone. Records of writers before Decided fall back to the
// version of the record's latest write.
func overrideDecision(a ledger.Applied, field string) string {
	src := a.SourceUpdatedAt
	if d, ok := ledger.FindDecided(a.Decided, field); ok {
		src = d.SourceUpdatedAt
	}
	return "override:" + field + "@" + src.UTC().Format(time.RFC3339)
}

// snapshot is what the fetcher remembers of the latest version it saw of a
// ticket: the fields autotriage may set, plus a fingerprint of the rest.
type snapshot struct {
	updatedAt time.Time
	base      [32]byte
	groupID   int64
	typ       string
	priority  int
	tags      []string
}

func snapshotOf(t *ticketsystem.Ticket) snapshot {
	return snapshot{updatedAt: t.UpdatedAt, base: contentKey(t), groupID: t.GroupID, typ: t.Type,
		priority: t.Priority, tags: slices.Clone(t.Tags)}
}

// onlyAutotriageDiffers reports whether cur differs from prev at most in
// fields autotriage set (per the ledger) and in autotriage's tags.
func onlyAutotriageDiffers(prev, cur snapshot, fl ledger.Fields, ownTag string) bool {
	if prev.base != cur.base {
		return false
	}
	if prev.groupID != cur.groupID && (fl.GroupID == 0 || cur.groupID != fl.GroupID) {
		return false
	}
	if prev.typ != cur.typ && (fl.Type == "" || cur.typ != fl.Type) {
		return false
	}
	if prev.priority != cur.priority && (fl.Priority == 0 || cur.priority != int(fl.Priority)) {
		return false
	}
	own := append(slices.Clone(fl.Tags), ownTag)
	strip := func(tags []string) []string {
		out := make([]string, 0, len(tags))
		for _, t := range tags {
			if !slices.Contains(own, t) && !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(strip(prev.tags), strip(cur.tags))
}

// seenCache is a bounded, replica-local memory of the latest version seen
// per ticket. Losing it (restart, another replica) only means a version
// that differs by autotriage's own write may be classified once more.
type seenCache struct {
	mu  sync.Mutex
	max int
	m   map[int64]snapshot
}

func newSeenCache(max int) *seenCache { return &seenCache{max: max, m: make(map[int64]snapshot)} }

func (c *seenCache) get(id int64) (snapshot, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[id]
	return s, ok
}

func (c *seenCache) has(id int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[id]
	return ok
}

// put keeps s unless a newer version of the ticket is already remembered.
func (c *seenCache) put(id int64, s snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[id]; ok && old.updatedAt.After(s.updatedAt) {
		return
	}
	if _, ok := c.m[id]; !ok && len(c.m) >= c.max {
		// Evict about a tenth, in map order (effectively random).
		n := c.max / 10
		for k := range c.m {
			if n <= 0 {
				break
			}
			delete(c.m, k)
			n--
		}
	}
	c.m[id] = s
}
