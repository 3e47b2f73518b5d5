package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// Seen is a version of a ticket that autotriage observed. The fetcher
// records every version it reads (polled or fetched for a webhook,
// published or filtered out) under SeenKey, a record only the fetcher
// writes; the writer keeps the version its own PUT produced in its ledger
// record (Applied.Seen). The writer compares the newer of the two
// (NewestSeen) with the version a prediction was made from to tell whether
// a person changed a field since, without reading the ticket from the
// ticket system.
type Seen struct {
	UpdatedAt time.Time `json:"updated_at"`
	GroupID   int64     `json:"group_id,omitempty"`
	Type      string    `json:"type,omitempty"`
	Priority  int32     `json:"priority,omitempty"`
	Status    int32     `json:"status,omitempty"`
	Tags      []string  `json:"tags,omitempty"`
	Spam      bool      `json:"spam,omitempty"`
	Deleted   bool      `json:"deleted,omitempty"`
	// At is when the version was observed (informational).
	At time.Time `json:"at"`

	Revision uint64 `json:"-"`
}

// SeenOf is the record of an observed ticket version, observed at at.
func SeenOf(t *ticketsystem.Ticket, at time.Time) Seen {
	return Seen{
		UpdatedAt: t.UpdatedAt.UTC(), GroupID: t.GroupID, Type: t.Type,
		Priority: clamp32(t.Priority), Status: clamp32(t.Status),
		Tags: slices.Clone(t.Tags), Spam: t.Spam, Deleted: t.Deleted, At: at.UTC(),
	}
}

func clamp32(n int) int32 { return int32(max(math.MinInt32, min(math.MaxInt32, n))) }

// sameVersion reports whether s and o hold the same field values.
func (s Seen) sameVersion(o Seen) bool {
	return s.UpdatedAt.Equal(o.UpdatedAt) && s.GroupID == o.GroupID && s.Type == o.Type &&
		s.Priority == o.Priority && s.Status == o.Status && slices.Equal(s.Tags, o.Tags) &&
		s.Spam == o.Spam && s.Deleted == o.Deleted
}

// NewestSeen is the newest of the fetcher's seen record (fetcher, found
// when fok) and the writer's (a.Seen; a nil a has none): the later
// updated_at, and for the same updated_at with other values the later
// observation (ObserveSeen's "the later observation wins"). ok is false
// when neither holds a version.
func NewestSeen(fetcher Seen, fok bool, a *Applied) (s Seen, ok bool) {
	if a == nil || a.Seen == nil {
		return fetcher, fok
	}
	w := *a.Seen
	if !fok || w.UpdatedAt.After(fetcher.UpdatedAt) ||
		(w.UpdatedAt.Equal(fetcher.UpdatedAt) && !w.sameVersion(fetcher) && w.At.After(fetcher.At)) {
		w.Revision = fetcher.Revision
		return w, true
	}
	return fetcher, true
}

// ErrUnreadable means a stored record could not be decoded.
var ErrUnreadable = errors.New("record is unreadable")

// SeenKey is the KV key of a ticket's newest observed version.
func SeenKey(system, account string, id int64) string {
	return "seen." + pipeline.Token(system) + "." + pipeline.Token(account) + "." + strconv.FormatInt(id, 10)
}

// GetSeen returns the newest observed version of a ticket, or ErrNotFound.
func (l *Ledger) GetSeen(ctx context.Context, system, account string, id int64) (Seen, error) {
	e, err := l.kv.Get(ctx, SeenKey(system, account, id))
	if err != nil {
		return Seen{}, err
	}
	var s Seen
	if err := json.Unmarshal(e.Value, &s); err != nil {
		return Seen{}, fmt.Errorf("ledger: seen record of ticket %d: %w: %w", id, ErrUnreadable, err)
	}
	s.Revision = e.Revision
	return s, nil
}

// CreateSeen records the first observed version of a ticket in one round
// trip; it fails with ErrExists when a version is already recorded (then
// ObserveSeen decides which is newer).
func (l *Ledger) CreateSeen(ctx context.Context, system, account string, id int64, s Seen) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("ledger: encode seen version of ticket %d: %w", id, err)
	}
	_, err = l.kv.Create(ctx, SeenKey(system, account, id), b)
	return err
}

// ObserveSeen records s as the ticket's newest observed version unless the
// stored one is newer: the record never goes backwards. A version with the
// same updated_at as the stored one replaces it only when its values
// differ (two changes within one second: the later observation wins). It is
// a compare-and-set loop, so concurrent observers (the poller and webhook
// handlers on every fetcher replica) cannot undo each other. stored
// reports whether s was written; a version already recorded costs one read.
func (l *Ledger) ObserveSeen(ctx context.Context, system, account string, id int64, s Seen) (stored bool, err error) {
	if s.UpdatedAt.IsZero() {
		return false, fmt.Errorf("ledger: seen version of ticket %d has no updated_at", id)
	}
	s.UpdatedAt = s.UpdatedAt.UTC()
	key := SeenKey(system, account, id)
	for range maxCASAttempts {
		cur, err := l.GetSeen(ctx, system, account, id)
		found := err == nil
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil && !errors.Is(err, ErrUnreadable):
			return false, err
		case found && (cur.UpdatedAt.After(s.UpdatedAt) || cur.sameVersion(s)):
			return false, nil
		}
		b, merr := json.Marshal(s)
		if merr != nil {
			return false, fmt.Errorf("ledger: encode: %w", merr)
		}
		switch {
		case found:
			_, err = l.kv.Update(ctx, key, b, cur.Revision)
		case errors.Is(err, ErrNotFound):
			_, err = l.kv.Create(ctx, key, b)
		default: // unreadable record: replace it
			_, err = l.kv.Put(ctx, key, b)
		}
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, ErrConflict) && !errors.Is(err, pipeline.ErrExists) {
			return false, fmt.Errorf("ledger: record seen version of ticket %d: %w", id, err)
		}
	}
	return false, fmt.Errorf("ledger: seen record of ticket %d kept changing: %w", id, ErrConflict)
}
