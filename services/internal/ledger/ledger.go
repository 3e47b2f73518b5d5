// Package ledger records what autotriage wrote to each ticket, in the
// writer's KV bucket. The writer reads it to never apply an older prediction
// over a newer one and to write each note once; the fetcher reads it to keep
// autotriage's own updates out of classification and to notice when a
// person overrides a field that autotriage set.
package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// KV is the part of a KV bucket the ledger needs (*pipeline.KV implements it).
type KV interface {
	Get(ctx context.Context, key string) (pipeline.Entry, error)
	Create(ctx context.Context, key string, val []byte) (uint64, error)
	Update(ctx context.Context, key string, val []byte, rev uint64) (uint64, error)
	Put(ctx context.Context, key string, val []byte) (uint64, error)
}

// ErrNotFound means nothing was recorded for the key.
var ErrNotFound = pipeline.ErrNotFound

// ErrConflict means another writer changed the record first; re-read and retry.
var ErrConflict = pipeline.ErrConflict

// Fields are the ticket fields as autotriage set them. Zero values mean
// "not set by autotriage".
type Fields struct {
	GroupID   int64    `json:"group_id,omitempty"`
	GroupName string   `json:"group,omitempty"`
	Type      string   `json:"type,omitempty"`
	Priority  int32    `json:"priority,omitempty"`
	Tags      []string `json:"tags,omitempty"`
}

// Applied is the record of autotriage's latest write to one ticket.
type Applied struct {
	// SourceUpdatedAt is the updated_at of the ticket version the applied
	// prediction was made from; a prediction from an older version is stale.
	SourceUpdatedAt time.Time `json:"source_updated_at"`
	// WrittenUpdatedAt is the ticket's updated_at right after autotriage's
	// write: that version is autotriage's own and is not classified again.
	WrittenUpdatedAt time.Time `json:"written_updated_at"`
	// ReadUpdatedAt is the version the writer read from the ticket system
	// just before that write (zero when it did not read). Every version
	// after it up to WrittenUpdatedAt came from the write itself (its note
	// bumps updated_at before its PUT), except for a person's edit inside
	// that window, which is the no-clobber window anyway.
	ReadUpdatedAt time.Time `json:"read_updated_at,omitzero"`
	// Fields holds what autotriage set, for override detection.
	Fields       Fields    `json:"fields"`
	ModelVersion string    `json:"model_version,omitempty"`
	At           time.Time `json:"at"`
	// OverridesSeen lists fields whose override was already reported, so a
	// person's change is counted once.
	OverridesSeen []string `json:"overrides_seen,omitempty"`
	// Decided lists the model label behind each value autotriage applied
	// (one per field, per tag for tags); Suggested the values it suggested
	// in a note and did not apply (a later apply of the field replaces the
	// suggestion). The fetcher turns them into feedback (live precision).
	Decided   []Decided `json:"decided,omitempty"`
	Suggested []Decided `json:"suggested,omitempty"`
	// ModelID is the model of the latest write (ModelVersion its version).
	ModelID string `json:"model_id,omitempty"`
	// Intent is the latest write autotriage set out to make, recorded before
	// its note and its PUT. A delivery that follows a crash (after the PUT,
	// before the rest of this record or the outcome) finds the values the
	// earlier delivery of the same decision wrote, and tells them from a
	// person's by this record.
	Intent *Intent `json:"intent,omitempty"`
	// Notes is where the decision note of each of the ticket's latest
	// decisions stands (at most MaxNotes, the most recently changed last),
	// so a note is written once per decision across deliveries, ticket
	// versions and models.
	Notes []Note `json:"notes,omitempty"`
	// Seen is the newest ticket version the writer itself received (the
	// answer of its PUT, or its GET before writing). The fetcher's seen
	// record (SeenKey) is the fetcher's alone; the newest observed version
	// is the newer of the two (NewestSeen). Records of writers before it
	// have none: those writers wrote their versions into the seen record.
	Seen *Seen `json:"seen,omitempty"`

	Revision uint64 `json:"-"`
}

// ObserveSeen keeps s as the writer's observed version unless the one held
// is newer (same rule as Ledger.ObserveSeen).
func (a *Applied) ObserveSeen(s Seen) {
	if s.UpdatedAt.IsZero() {
		return
	}
	s.UpdatedAt, s.Revision = s.UpdatedAt.UTC(), 0
	if a.Seen != nil && (a.Seen.UpdatedAt.After(s.UpdatedAt) || a.Seen.sameVersion(s)) {
		return
	}
	a.Seen = &s
}

// Intent is one decision autotriage is about to write to a ticket, recorded
// before its note and its PUT. While it is live (Until in the future) it is
// also the ticket's write lease: one writer at a time, across replicas,
// writes to a ticket, and a prediction is never written while another one
// is in flight (see Applied.Lease).
type Intent struct {
	// SourceUpdatedAt is the ticket version the prediction was made from.
	SourceUpdatedAt time.Time `json:"source_updated_at"`
	// Decision names the decision (the writer's decision hash: the fields,
	// decisions and labels, not the version or the model).
	Decision string `json:"decision"`
	// Fields are the values the PUT sets (Tags: the tags it adds).
	Fields Fields    `json:"fields"`
	At     time.Time `json:"at"`
	// Holder names the delivery that recorded the intent (replica, message
	// and delivery), for its own release and for operators.
	Holder string `json:"holder,omitempty"`
	// Until is when the lease ends if it is not released first. Zero: the
	// writes finished (or certainly did not happen) and the lease was
	// released. Intents of writers before the lease have none.
	Until time.Time `json:"until,omitzero"`
}

// Same reports whether the intent is the one of the decision made from the
// ticket version source: the same prediction, or another model's identical
// decision from the same version, which writes the same values.
func (in *Intent) Same(source time.Time, decision string) bool {
	return in != nil && in.Decision == decision && in.SourceUpdatedAt.Equal(source)
}

// IntentFor returns the recorded intent when it is the one of the decision
// made from the ticket version source, else nil.
func (a Applied) IntentFor(source time.Time, decision string) *Intent {
	if !a.Intent.Same(source, decision) {
		return nil
	}
	return a.Intent
}

// Lease returns the intent holding the ticket's write lease at now, or nil
// when nobody holds it: the last intent was released, or its writer is gone
// (Until passed).
func (a Applied) Lease(now time.Time) *Intent {
	if a.Intent == nil || a.Intent.Until.IsZero() || !now.Before(a.Intent.Until) {
		return nil
	}
	return a.Intent
}

// NewestSource is the newest ticket version a prediction was applied from
// or set out to be written from (a live or abandoned intent counts: its PUT
// may have happened). A prediction from an older version is stale.
func (a Applied) NewestSource() time.Time {
	t := a.SourceUpdatedAt
	if a.Intent != nil && a.Intent.SourceUpdatedAt.After(t) {
		t = a.Intent.SourceUpdatedAt
	}
	return t
}

// SameWrites reports whether a and b record the same writes: they differ at
// most in OverridesSeen (the fetcher's override bookkeeping) and their
// revision. A writer that read a and finds b on its compare-and-set knows
// no other write to the ticket started or finished in between.
func (a Applied) SameWrites(b Applied) bool {
	a.OverridesSeen, b.OverridesSeen = nil, nil
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && string(ja) == string(jb)
}

// Ledger reads and writes records.
type Ledger struct{ kv KV }

// New wraps the writer's bucket (pipeline.BucketWriter).
func New(kv KV) *Ledger { return &Ledger{kv: kv} }

// AppliedKey is the KV key of a ticket's record.
func AppliedKey(system, account string, id int64) string {
	return "applied." + pipeline.Token(system) + "." + pipeline.Token(account) + "." + strconv.FormatInt(id, 10)
}

// GetApplied returns the record of a ticket, or ErrNotFound.
func (l *Ledger) GetApplied(ctx context.Context, system, account string, id int64) (Applied, error) {
	e, err := l.kv.Get(ctx, AppliedKey(system, account, id))
	if err != nil {
		return Applied{}, err
	}
	var a Applied
	if err := json.Unmarshal(e.Value, &a); err != nil {
		return Applied{}, fmt.Errorf("ledger: record of ticket %d is unreadable: %w", id, err)
	}
	a.Revision = e.Revision
	return a, nil
}

// PutApplied stores a record. With a.Revision == 0 it creates the record
// and fails with ErrConflict if one exists; otherwise it replaces the record
// only if it is still at a.Revision. Returns the new revision.
func (l *Ledger) PutApplied(ctx context.Context, system, account string, id int64, a Applied) (uint64, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return 0, fmt.Errorf("ledger: encode: %w", err)
	}
	key := AppliedKey(system, account, id)
	if a.Revision == 0 {
		rev, err := l.kv.Create(ctx, key, b)
		if errors.Is(err, pipeline.ErrExists) {
			return 0, fmt.Errorf("ledger: %s: %w", key, ErrConflict)
		}
		return rev, err
	}
	return l.kv.Update(ctx, key, b, a.Revision)
}

// IsOwnVersion reports whether a ticket version is the one autotriage's last
// write produced (so classifying it again would only echo autotriage).
func (a Applied) IsOwnVersion(updatedAt time.Time) bool {
	return !a.WrittenUpdatedAt.IsZero() && updatedAt.Equal(a.WrittenUpdatedAt)
}

// ProducedByWrite reports whether a ticket version came from autotriage's
// last write: its final version, or one in between (after the note, before
// the PUT) that a poll or webhook may have caught before the write was
// recorded. Without a read before the write, only the final version is known.
func (a Applied) ProducedByWrite(updatedAt time.Time) bool {
	if a.IsOwnVersion(updatedAt) {
		return true
	}
	return !a.ReadUpdatedAt.IsZero() && updatedAt.After(a.ReadUpdatedAt) && updatedAt.Before(a.WrittenUpdatedAt)
}
