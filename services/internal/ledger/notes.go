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

// NoteRecord is the idempotency record of one decision note. The decision is
// named by a hash (see the writer), so a redelivered or re-made prediction
// with the same decision finds the record and does not post a second note.
type NoteRecord struct {
	State NoteState `json:"state"`
	// At is when State was last set; a pending record older than the
	// writer's lease belongs to a writer that is gone.
	At time.Time `json:"at"`
	// ConversationID is the note's id in the ticket system, once known.
	ConversationID int64 `json:"conversation_id,omitempty"`

	Revision uint64 `json:"-"`
}

// NoteKey is the KV key of a decision note's record.
func NoteKey(system, account string, id int64, hash string) string {
	return "note." + pipeline.Token(system) + "." + pipeline.Token(account) + "." +
		strconv.FormatInt(id, 10) + "." + pipeline.Token(hash)
}

// GetNote returns the record of a decision note, or ErrNotFound.
func (l *Ledger) GetNote(ctx context.Context, system, account string, id int64, hash string) (NoteRecord, error) {
	e, err := l.kv.Get(ctx, NoteKey(system, account, id, hash))
	if err != nil {
		return NoteRecord{}, err
	}
	var r NoteRecord
	if err := json.Unmarshal(e.Value, &r); err != nil {
		return NoteRecord{}, fmt.Errorf("ledger: note record %s of ticket %d is unreadable: %w", hash, id, err)
	}
	r.Revision = e.Revision
	return r, nil
}

// PutNote stores a note record with the same compare-and-set rules as
// PutApplied: Revision 0 creates (ErrConflict if the record exists),
// otherwise the record must still be at r.Revision. Returns the new revision.
func (l *Ledger) PutNote(ctx context.Context, system, account string, id int64, hash string, r NoteRecord) (uint64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("ledger: encode: %w", err)
	}
	key := NoteKey(system, account, id, hash)
	if r.Revision == 0 {
		rev, err := l.kv.Create(ctx, key, b)
		if errors.Is(err, pipeline.ErrExists) {
			return 0, fmt.Errorf("ledger: %s: %w", key, ErrConflict)
		}
		return rev, err
	}
	return l.kv.Update(ctx, key, b, r.Revision)
}

// maxCASAttempts bounds UpdateApplied's retries under contention.
const maxCASAttempts = 10

// UpdateApplied is a compare-and-set loop over a ticket's record: it reads
// the record (found is false when there is none and a is zero), lets fn
// change it, and stores it only if nobody changed it in between, re-reading
// and calling fn again otherwise. fn must be a pure function of its input.
// It returns the stored record.
func (l *Ledger) UpdateApplied(ctx context.Context, system, account string, id int64, fn func(a *Applied, found bool) error) (Applied, error) {
	var lastErr error
	for range maxCASAttempts {
		cur, err := l.GetApplied(ctx, system, account, id)
		found := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Applied{}, err
		}
		if !found {
			cur = Applied{}
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
