package triage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	autotriagev1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// PolicyKey is the key of the policy document in pipeline.BucketPolicy.
const PolicyKey = "policy"

// PolicyChangeSubject is where policy changes are published as
// OUTCOME_KIND_POLICY_CHANGE outcomes (in OUTCOMES; no ticket of their own).
const PolicyChangeSubject = "outcomes.autotriage.policy"

// ByController names the demotion controller in Doc.ChangedBy and
// PolicyChange.by; operators are "operator:<name>".
const ByController = "autotriage"

// maxDocBytes bounds the policy document read from KV.
const maxDocBytes = 1 << 20

// Doc is the policy as data: the document stored under PolicyKey. Its KV
// history (64 revisions) is the history of changes, each revision saying
// who changed what.
type Doc struct {
	// Policy is the operator's policy in AUTOTRIAGE_POLICY syntax.
	Policy string `json:"policy"`
	// Demotions are the classes live precision demoted to suggest.
	Demotions []Demotion `json:"demotions,omitempty"`
	// ChangedBy, ChangedAt and Change describe the change that produced
	// this revision.
	ChangedBy string    `json:"changed_by"`
	ChangedAt time.Time `json:"changed_at"`
	Change    string    `json:"change,omitempty"`
}

// Demotion is a class in apply mode that live precision moved to suggest.
type Demotion struct {
	Field  string    `json:"field"`
	Label  string    `json:"label"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason"`
	// The evidence at demotion: Wilson lower bound of live precision over N
	// verdicts (Correct of them right), against Target.
	LowerBound float64 `json:"lower_bound"`
	Target     float64 `json:"target"`
	N          int     `json:"n"`
	Correct    int     `json:"correct"`
}

// Effective is the policy the classifiers decide with: the operator's
// policy with the demotions applied.
func (d Doc) Effective() (Policy, error) {
	p, err := ParsePolicy(d.Policy)
	if err != nil {
		return Policy{}, err
	}
	for _, dm := range d.Demotions {
		if p.Demoted == nil {
			p.Demoted = map[string]map[string]string{}
		}
		if p.Demoted[dm.Field] == nil {
			p.Demoted[dm.Field] = map[string]string{}
		}
		p.Demoted[dm.Field][dm.Label] = dm.Reason
	}
	return p, nil
}

// Demotion returns the demotion of a class, if any.
func (d Doc) Demotion(field, label string) (Demotion, bool) {
	for _, dm := range d.Demotions {
		if dm.Field == field && dm.Label == label {
			return dm, true
		}
	}
	return Demotion{}, false
}

// DecodeDoc reads a stored policy document; a document that is too large,
// not JSON or whose policy does not parse is an error.
func DecodeDoc(b []byte) (Doc, error) {
	if len(b) > maxDocBytes {
		return Doc{}, fmt.Errorf("policy document is %d bytes, more than the %d allowed", len(b), maxDocBytes)
	}
	var d Doc
	if err := json.Unmarshal(b, &d); err != nil {
		return Doc{}, fmt.Errorf("policy document: %w", err)
	}
	if _, err := ParsePolicy(d.Policy); err != nil {
		return Doc{}, fmt.Errorf("policy document: %w", err)
	}
	return d, nil
}

// KV is the part of a KV bucket the store uses (pipeline.KV).
type KV interface {
	Get(ctx context.Context, key string) (pipeline.Entry, error)
	Create(ctx context.Context, key string, val []byte) (uint64, error)
	Update(ctx context.Context, key string, val []byte, rev uint64) (uint64, error)
}

// Publisher stores a message in its stream (pipeline.Conn).
type Publisher interface {
	Publish(ctx context.Context, m pipeline.OutMsg) (pipeline.PubAck, error)
}

// Store reads and changes the policy document. Every change is a
// compare-and-set on the revision read, retried on a conflict with the
// change recomputed on the newer document, and is published as
// PolicyChange outcomes and logged.
type Store struct {
	kv  KV
	pub Publisher
	log *slog.Logger
	now func() time.Time
}

// NewStore uses kv (the BucketPolicy bucket) and publishes changes with
// pub; pub may be nil for a store that only reads.
func NewStore(kv KV, pub Publisher, log *slog.Logger) *Store {
	return &Store{kv: kv, pub: pub, log: log, now: time.Now}
}

// ErrNoDoc is returned by Get when the policy key does not exist yet.
var ErrNoDoc = errors.New("no policy document in KV yet")

// Get returns the stored document and its revision (ErrNoDoc when missing).
func (s *Store) Get(ctx context.Context) (Doc, uint64, error) {
	e, err := s.kv.Get(ctx, PolicyKey)
	if errors.Is(err, pipeline.ErrNotFound) {
		return Doc{}, 0, ErrNoDoc
	}
	if err != nil {
		return Doc{}, 0, fmt.Errorf("read policy: %w", err)
	}
	d, err := DecodeDoc(e.Value)
	if err != nil {
		return Doc{}, 0, fmt.Errorf("read policy revision %d: %w", e.Revision, err)
	}
	return d, e.Revision, nil
}

// Ensure creates the document from initial (AUTOTRIAGE_POLICY) when it is
// missing, and otherwise leaves it: the stored policy wins, and an initial
// value that differs from it is logged as ignored.
func (s *Store) Ensure(ctx context.Context, initial, by string) (Doc, uint64, error) {
	p, err := ParsePolicy(initial)
	if err != nil {
		return Doc{}, 0, fmt.Errorf("AUTOTRIAGE_POLICY: %w", err)
	}
	for range 5 {
		d, rev, err := s.Get(ctx)
		if err == nil {
			IgnoredInitial(s.log, initial, d.Policy)
			return d, rev, nil
		}
		if !errors.Is(err, ErrNoDoc) {
			return Doc{}, 0, err
		}
		d = Doc{Policy: p.String(), ChangedBy: by, ChangedAt: s.now().UTC(), Change: "created from AUTOTRIAGE_POLICY"}
		b, err := json.Marshal(d)
		if err != nil {
			return Doc{}, 0, fmt.Errorf("encode policy: %w", err)
		}
		rev, err = s.kv.Create(ctx, PolicyKey, b)
		if errors.Is(err, pipeline.ErrExists) {
			continue // created meanwhile: read it
		}
		if err != nil {
			return Doc{}, 0, fmt.Errorf("create policy: %w", err)
		}
		s.log.Info("policy created from AUTOTRIAGE_POLICY", "policy", d.Policy, "revision", rev)
		s.publish(ctx, rev, []*autotriagev1.PolicyChange{{To: d.Policy, Reason: d.Change, By: by, Policy: d.Policy}})
		return d, rev, nil
	}
	return Doc{}, 0, errors.New("create policy: the key kept changing")
}

// IgnoredInitial logs that AUTOTRIAGE_POLICY differs from the stored policy
// and is ignored (nothing when they are the same policy).
func IgnoredInitial(log *slog.Logger, initial, stored string) {
	p, err := ParsePolicy(initial)
	if err != nil || p.String() == stored {
		return
	}
	log.Warn("AUTOTRIAGE_POLICY differs from the policy stored in KV and is ignored (change it with `autotriage policy set`)",
		"env", initial, "stored", stored)
}

// Mutation changes a document in place and returns the changes it made
// (none: nothing is written). It may run more than once, on a newer
// document each time, when another writer got in between.
type Mutation func(d *Doc) ([]*autotriagev1.PolicyChange, error)

// Change applies mutate to the current document (one made from initial when
// the key is missing) and stores it with a compare-and-set on the revision
// read. It returns the document and revision now stored and the changes
// made. by is recorded as the author.
func (s *Store) Change(ctx context.Context, by, initial string, mutate Mutation) (Doc, uint64, []*autotriagev1.PolicyChange, error) {
	for range 8 {
		d, rev, err := s.Get(ctx)
		if errors.Is(err, ErrNoDoc) {
			p, perr := ParsePolicy(initial)
			if perr != nil {
				return Doc{}, 0, nil, fmt.Errorf("AUTOTRIAGE_POLICY: %w", perr)
			}
			d, err = Doc{Policy: p.String()}, nil
		}
		if err != nil {
			return Doc{}, 0, nil, err
		}
		next := d
		next.Demotions = slices.Clone(d.Demotions)
		changes, err := mutate(&next)
		if err != nil {
			return Doc{}, 0, nil, err
		}
		if len(changes) == 0 {
			return d, rev, nil, nil
		}
		if _, err := ParsePolicy(next.Policy); err != nil {
			return Doc{}, 0, nil, err
		}
		next.ChangedBy, next.ChangedAt = by, s.now().UTC()
		next.Change = summarize(changes)
		b, err := json.Marshal(next)
		if err != nil {
			return Doc{}, 0, nil, fmt.Errorf("encode policy: %w", err)
		}
		var nrev uint64
		if rev == 0 {
			nrev, err = s.kv.Create(ctx, PolicyKey, b)
		} else {
			nrev, err = s.kv.Update(ctx, PolicyKey, b, rev)
		}
		if errors.Is(err, pipeline.ErrConflict) || errors.Is(err, pipeline.ErrExists) {
			continue
		}
		if err != nil {
			return Doc{}, 0, nil, fmt.Errorf("store policy: %w", err)
		}
		for _, c := range changes {
			c.By, c.Policy = by, next.Policy
			s.log.Info("policy changed", "field", c.Field, "class", c.Label, "from", c.From, "to", c.To,
				"reason", c.Reason, "by", by, "revision", nrev)
		}
		s.publish(ctx, nrev, changes)
		return next, nrev, changes, nil
	}
	return Doc{}, 0, nil, errors.New("store policy: the policy kept changing under us; try again")
}

func summarize(changes []*autotriagev1.PolicyChange) string {
	c := changes[0]
	s := c.Reason
	if c.Field != "" {
		s = c.Field
		if c.Label != "" {
			s += "[" + c.Label + "]"
		}
		s += " " + c.From + " -> " + c.To + ": " + c.Reason
	}
	if len(changes) > 1 {
		s += fmt.Sprintf(" (and %d more)", len(changes)-1)
	}
	return s
}

// publish records the changes of revision rev in OUTCOMES. The change is
// stored already; a failed publish is logged, not undone (the KV history
// still has it).
func (s *Store) publish(ctx context.Context, rev uint64, changes []*autotriagev1.PolicyChange) {
	if s.pub == nil {
		return
	}
	for i, c := range changes {
		o := &autotriagev1.Outcome{Kind: autotriagev1.OutcomeKind_OUTCOME_KIND_POLICY_CHANGE, At: timestamppb.New(s.now().UTC()), PolicyChange: c}
		data, err := proto.Marshal(o)
		if err == nil {
			_, err = s.pub.Publish(ctx, pipeline.OutMsg{
				Subject: PolicyChangeSubject,
				ID:      fmt.Sprintf("policy:%d:%d", rev, i),
				Data:    data,
				Header:  map[string]string{pipeline.HeaderContentType: pipeline.ContentTypeProtobuf},
			})
		}
		if err != nil {
			s.log.Error("policy change stored but not recorded in OUTCOMES", "revision", rev, "field", c.Field, "class", c.Label, "err", err)
		}
	}
}
