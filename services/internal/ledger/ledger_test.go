package ledger_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/natsserver"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

func bucket(t *testing.T) *ledger.Ledger {
	t.Helper()
	srv := natsserver.StartTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pipeline.Connect(ctx, pipeline.Config{URL: srv.URL(), ConnectWait: 5 * time.Second, Topology: pipeline.DefaultTopology()}, t.Name(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.EnsureTopology(ctx); err != nil {
		t.Fatal(err)
	}
	kv, err := c.KV(ctx, pipeline.BucketWriter)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.New(kv)
}

func TestNoteRecordCompareAndSet(t *testing.T) {
	l := bucket(t)
	ctx := context.Background()
	if _, err := l.GetNote(ctx, "freshdesk", "acme", 7, "abc"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("get of a missing record: %v", err)
	}
	rev, err := l.PutNote(ctx, "freshdesk", "acme", 7, "abc", ledger.NoteRecord{State: ledger.NotePending, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	// A second writer creating the same record loses.
	if _, err := l.PutNote(ctx, "freshdesk", "acme", 7, "abc", ledger.NoteRecord{State: ledger.NotePending}); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	r, err := l.GetNote(ctx, "freshdesk", "acme", 7, "abc")
	if err != nil || r.State != ledger.NotePending || r.Revision != rev {
		t.Fatalf("read back %+v %v", r, err)
	}
	r.State, r.ConversationID = ledger.NoteWritten, 99
	if _, err := l.PutNote(ctx, "freshdesk", "acme", 7, "abc", r); err != nil {
		t.Fatal(err)
	}
	// An update from the stale revision fails.
	if _, err := l.PutNote(ctx, "freshdesk", "acme", 7, "abc", ledger.NoteRecord{State: ledger.NotePending, Revision: rev}); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	if got := ledger.NoteKey("freshdesk", "acme.eu", 7, "abc"); got != "note.freshdesk.acme_eu.7.abc" {
		t.Errorf("key %q", got)
	}
}

func TestUpdateAppliedMergesConcurrentWriters(t *testing.T) {
	l := bucket(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, tag := range []string{"a", "b", "c", "d"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.UpdateApplied(ctx, "freshdesk", "acme", 7, func(a *ledger.Applied, _ bool) error {
				a.Fields.Tags = append(a.Fields.Tags, tag)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	a, err := l.GetApplied(ctx, "freshdesk", "acme", 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Fields.Tags) != 4 {
		t.Errorf("tags %v: a concurrent update was lost", a.Fields.Tags)
	}
	wantErr := errors.New("stop")
	if _, err := l.UpdateApplied(ctx, "freshdesk", "acme", 7, func(*ledger.Applied, bool) error { return wantErr }); !errors.Is(err, wantErr) {
		t.Errorf("fn error not returned: %v", err)
	}
}
