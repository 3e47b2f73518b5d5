package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// NoteState is where the writing of one decision note stands.
type NoteState string

const (
	// NotePending: a writer is about to post the note, or crashed while
	// doing so. The note may or may not exist in the ticket system; only the
	// ticket's conversations can tell.
	NotePending NoteState = "pending"
	// NoteWritten: the note exists in the ticket system. It is never posted
	// again for the same decision.
	NoteWritten NoteState = "written"
)

// MaxNotes bounds Applied.Notes. A decision is named by a hash that leaves
// out the ticket version and the model (see the writer), so the state of a
// decision's note has to outlive the prediction that wrote it; eight is far
// more distinct decisions than a ticket sees while its notes matter.
const MaxNotes = 8

// Note is where the decision note of one decision stands, kept in the
// ticket's record (Applied.Notes).
type Note struct {
	// Decision is the decision's hash (the note carries it in its marker).
	Decision string    `json:"decision"`
	State    NoteState `json:"state"`
	// At is when State was last set; a pending note older than the
	// writer's lease belongs to a writer that is gone. Zero: the writer
	// knows its note was not stored, nobody needs to wait for it.
	At time.Time `json:"at"`
	// ConversationID is the note's id in the ticket system, once known.
	ConversationID int64 `json:"conversation_id,omitempty"`
}

// Note returns the state of a decision's note, if the record holds one.
func (a Applied) Note(decision string) (Note, bool) {
	for _, n := range a.Notes {
		if n.Decision == decision {
			return n, true
		}
	}
	return Note{}, false
}

// SetNote records the state of n's decision note, replacing the decision's
// earlier state, and forgets the least recently changed decisions beyond
// MaxNotes. It never writes into the slice a.Notes held before, so a copy
// of the record taken earlier is unaffected (merge functions stay pure).
func (a *Applied) SetNote(n Note) {
	out := make([]Note, 0, len(a.Notes)+1)
	for _, o := range a.Notes {
		if o.Decision != n.Decision {
			out = append(out, o)
		}
	}
	out = append(out, n)
	a.Notes = out[max(len(out)-MaxNotes, 0):]
}

// NoteRecord is a decision note's state as writers before Applied.Notes
// stored it, under its own key (NoteKey). Buckets written by such writers
// may still hold them; the writer reads one when the ticket's record has no
// state for a decision and an older writer may have left it (GetNote).
type NoteRecord struct {
	State          NoteState `json:"state"`
	At             time.Time `json:"at"`
	ConversationID int64     `json:"conversation_id,omitempty"`
}

// NoteKey is the KV key of a decision note's record (older writers).
func NoteKey(system, account string, id int64, hash string) string {
	return "note." + pipeline.Token(system) + "." + pipeline.Token(account) + "." +
		strconv.FormatInt(id, 10) + "." + pipeline.Token(hash)
}

// GetNote returns the record an older writer stored for a decision note,
// or ErrNotFound.
func (l *Ledger) GetNote(ctx context.Context, system, account string, id int64, hash string) (NoteRecord, error) {
	e, err := l.kv.Get(ctx, NoteKey(system, account, id, hash))
	if err != nil {
		return NoteRecord{}, err
	}
	var r NoteRecord
	if err := json.Unmarshal(e.Value, &r); err != nil {
		return NoteRecord{}, fmt.Errorf("ledger: note record %s of ticket %d is unreadable: %w", hash, id, err)
	}
	return r, nil
}

// UpdateAppliedFrom is UpdateApplied for a caller that already holds the
// record: cur as it last read or stored it (found: there was one). fn
// changes a copy of cur, which is stored against cur's revision (created
// when !found) without another read; only when the record changed
// meanwhile does the loop read the record and apply fn to it.
func (l *Ledger) UpdateAppliedFrom(ctx context.Context, system, account string, id int64, cur Applied, found bool, fn func(a *Applied, found bool) error) (Applied, error) {
	return l.updateApplied(ctx, system, account, id, &heldRecord{cur, found}, fn)
}

// maxCASAttempts bounds UpdateApplied's retries under contention.
const maxCASAttempts = 10

// UpdateApplied is a compare-and-set loop over a ticket's record: it reads
// the record (found is false when there is none and a is zero), lets fn
// change it, and stores it only if nobody changed it in between, re-reading
// and calling fn again otherwise. fn must be a pure function of its input.
// It returns the stored record.
func (l *Ledger) UpdateApplied(ctx context.Context, system, account string, id int64, fn func(a *Applied, found bool) error) (Applied, error) {
	return l.updateApplied(ctx, system, account, id, nil, fn)
}

// heldRecord is a record as a caller read it, found or not.
type heldRecord struct {
	rec   Applied
	found bool
}

// updateApplied is the compare-and-set loop; its first attempt starts from
// held instead of a read when held is set.
func (l *Ledger) updateApplied(ctx context.Context, system, account string, id int64, held *heldRecord, fn func(a *Applied, found bool) error) (Applied, error) {
	var lastErr error
	for range maxCASAttempts {
		var cur Applied
		var found bool
		if held != nil {
			if found = held.found; found {
				cur = held.rec
				// fn must not write into the caller's copy.
				cur.Fields.Tags = slices.Clone(cur.Fields.Tags)
				cur.OverridesSeen = slices.Clone(cur.OverridesSeen)
			}
			held = nil
		} else {
			var err error
			cur, err = l.GetApplied(ctx, system, account, id)
			found = err == nil
			if err != nil && !errors.Is(err, ErrNotFound) {
				return Applied{}, err
			}
			if !found {
				cur = Applied{}
			}
		}
		rev0 := cur.Revision
		if err := fn(&cur, found); err != nil {
			return Applied{}, err
		}
		cur.Revision = rev0
		rev, err := l.PutApplied(ctx, system, account, id, cur)
		if err == nil {
			cur.Revision = rev
			return cur, nil
		}
		if !errors.Is(err, ErrConflict) {
			return Applied{}, err
		}
		lastErr = err
	}
	return Applied{}, fmt.Errorf("ledger: record of ticket %d kept changing: %w", id, lastErr)
}
