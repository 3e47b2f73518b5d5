package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

func bucket(t *testing.T) *ledger.Ledger {
	t.Helper()
	l, _ := bucketKV(t)
	return l
}

func bucketKV(t *testing.T) (*ledger.Ledger, ledger.KV) {
	t.Helper()
	srv := natstest.Start(t)
	c := natstest.Connect(t, srv, pipeline.Topology{})
	kv, err := c.KV(context.Background(), pipeline.BucketWriter)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.New(kv), kv
}

// Records older writers stored under a key per decision note are still read.
func TestLegacyNoteRecordIsRead(t *testing.T) {
	l, kv := bucketKV(t)
	ctx := context.Background()
	if _, err := l.GetNote(ctx, "freshdesk", "acme", 7, "abc"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("get of a missing record: %v", err)
	}
	// As the writer before Applied.Notes stored it.
	old := `{"state":"written","at":"2025-03-01T10:00:00Z","conversation_id":99}`
	if _, err := kv.Create(ctx, ledger.NoteKey("freshdesk", "acme", 7, "abc"), []byte(old)); err != nil {
		t.Fatal(err)
	}
	r, err := l.GetNote(ctx, "freshdesk", "acme", 7, "abc")
	if err != nil || r.State != ledger.NoteWritten || r.ConversationID != 99 || r.At.IsZero() {
		t.Fatalf("read back %+v %v", r, err)
	}
	if _, err := kv.Create(ctx, ledger.NoteKey("freshdesk", "acme", 7, "bad"), []byte("{")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.GetNote(ctx, "freshdesk", "acme", 7, "bad"); err == nil {
		t.Error("an unreadable record was accepted")
	}
	if got := ledger.NoteKey("freshdesk", "acme.eu", 7, "abc"); got != "note.freshdesk.acme_eu.7.abc" {
		t.Errorf("key %q", got)
	}
}

func TestNotesKeepTheLatestDecisions(t *testing.T) {
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	note := func(i int, s ledger.NoteState) ledger.Note {
		return ledger.Note{Decision: "d" + strconv.Itoa(i), State: s, At: at.Add(time.Duration(i) * time.Second)}
	}
	var a ledger.Applied
	for i := range ledger.MaxNotes {
		a.SetNote(note(i, ledger.NotePending))
	}
	before := a
	// Replacing a decision's state moves it last and keeps the others.
	w := note(3, ledger.NoteWritten)
	w.ConversationID = 42
	a.SetNote(w)
	if n, ok := a.Note("d3"); !ok || n != w || len(a.Notes) != ledger.MaxNotes || a.Notes[ledger.MaxNotes-1] != w {
		t.Fatalf("after replacing d3: %+v", a.Notes)
	}
	if n, _ := before.Note("d3"); n.State != ledger.NotePending {
		t.Error("SetNote changed an earlier copy of the record")
	}
	// A new decision beyond the bound forgets the least recently changed.
	a.SetNote(note(100, ledger.NotePending))
	if _, ok := a.Note("d0"); ok || len(a.Notes) != ledger.MaxNotes {
		t.Errorf("after a ninth decision: %+v", a.Notes)
	}
	for _, d := range []string{"d1", "d3", "d100"} {
		if _, ok := a.Note(d); !ok {
			t.Errorf("decision %s forgotten: %+v", d, a.Notes)
		}
	}
	if _, ok := (ledger.Applied{}).Note("d1"); ok {
		t.Error("an empty record has a note")
	}
}

// Applied stays readable both ways: a record without notes (stored by an
// older writer) decodes, and one without notes encodes without the field.
func TestAppliedNotesRoundTripAndStayOptional(t *testing.T) {
	l, kv := bucketKV(t)
	ctx := context.Background()
	old := `{"source_updated_at":"2025-03-01T10:00:00Z","written_updated_at":"2025-03-01T10:00:05Z",` +
		`"fields":{"group_id":5},"at":"2025-03-01T10:00:05Z","overrides_seen":["group"]}`
	if _, err := kv.Create(ctx, ledger.AppliedKey("freshdesk", "acme", 7), []byte(old)); err != nil {
		t.Fatal(err)
	}
	a, err := l.GetApplied(ctx, "freshdesk", "acme", 7)
	if err != nil || a.Fields.GroupID != 5 || len(a.Notes) != 0 {
		t.Fatalf("old record read as %+v %v", a, err)
	}
	b, err := json.Marshal(a)
	if err != nil || strings.Contains(string(b), `"notes"`) {
		t.Errorf("record without notes encodes as %s (%v)", b, err)
	}
	n := ledger.Note{Decision: "abc", State: ledger.NoteWritten, At: time.Date(2025, 3, 1, 10, 0, 1, 0, time.UTC), ConversationID: 9}
	a.SetNote(n)
	if _, err := l.PutApplied(ctx, "freshdesk", "acme", 7, a); err != nil {
		t.Fatal(err)
	}
	// Another writer of the record (the fetcher's override bookkeeping)
	// keeps the notes.
	if _, err := l.UpdateApplied(ctx, "freshdesk", "acme", 7, func(a *ledger.Applied, _ bool) error {
		a.OverridesSeen = append(a.OverridesSeen, "type")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	a, err = l.GetApplied(ctx, "freshdesk", "acme", 7)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := a.Note("abc"); !ok || got != n || len(a.OverridesSeen) != 2 {
		t.Errorf("after a round trip: note %+v %v, overrides %v", got, ok, a.OverridesSeen)
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

func TestObserveSeenNeverGoesBackwards(t *testing.T) {
	l := bucket(t)
	ctx := context.Background()
	base := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(i int) ledger.Seen {
		return ledger.Seen{UpdatedAt: base.Add(time.Duration(i) * time.Second), GroupID: int64(i), Tags: []string{"t" + strconv.Itoa(i)}}
	}
	// Concurrent observers of versions 1..20, in any order: the newest wins.
	var wg sync.WaitGroup
	for i := 20; i >= 1; i-- {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := l.ObserveSeen(ctx, "freshdesk", "acme", 7, at(i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := l.GetSeen(ctx, "freshdesk", "acme", 7)
	if err != nil || !got.UpdatedAt.Equal(at(20).UpdatedAt) || got.GroupID != 20 {
		t.Fatalf("seen %+v (%v), want version 20", got, err)
	}
	// Older and identical versions are not written.
	for _, s := range []ledger.Seen{at(3), at(20)} {
		if stored, err := l.ObserveSeen(ctx, "freshdesk", "acme", 7, s); err != nil || stored {
			t.Errorf("ObserveSeen(%v) stored %v err %v, want neither", s.UpdatedAt, stored, err)
		}
	}
	// Another change within the same second replaces it (later observation).
	same := at(20)
	same.Spam = true
	if stored, err := l.ObserveSeen(ctx, "freshdesk", "acme", 7, same); err != nil || !stored {
		t.Fatalf("same-second change: stored %v err %v", stored, err)
	}
	if got, _ := l.GetSeen(ctx, "freshdesk", "acme", 7); !got.Spam {
		t.Error("same-second change not recorded")
	}
	if stored, err := l.ObserveSeen(ctx, "freshdesk", "acme", 7, at(21)); err != nil || !stored {
		t.Fatalf("newer version: stored %v err %v", stored, err)
	}
	if _, err := l.ObserveSeen(ctx, "freshdesk", "acme", 7, ledger.Seen{}); err == nil {
		t.Error("a version without updated_at was accepted")
	}
	if got := ledger.SeenKey("freshdesk", "acme.eu", 7); got != "seen.freshdesk.acme_eu.7" {
		t.Errorf("key %q", got)
	}
}

func TestIntentIsKeptAndMatchedByVersionAndDecision(t *testing.T) {
	l := bucket(t)
	ctx := context.Background()
	src := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	in := &ledger.Intent{SourceUpdatedAt: src, Decision: "abc", Fields: ledger.Fields{GroupID: 5, Tags: []string{"x"}}, At: src}
	if _, err := l.PutApplied(ctx, "freshdesk", "acme", 9, ledger.Applied{Intent: in}); err != nil {
		t.Fatal(err)
	}
	// Another writer of the record (the fetcher's override bookkeeping, say)
	// keeps the intent.
	if _, err := l.UpdateApplied(ctx, "freshdesk", "acme", 9, func(a *ledger.Applied, _ bool) error {
		a.OverridesSeen = append(a.OverridesSeen, "group")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	a, err := l.GetApplied(ctx, "freshdesk", "acme", 9)
	if err != nil {
		t.Fatal(err)
	}
	got := a.IntentFor(src.In(time.FixedZone("x", 3600)), "abc")
	if got == nil || got.Fields.GroupID != 5 || len(got.Fields.Tags) != 1 {
		t.Fatalf("intent %+v after a round trip, want the stored one", got)
	}
	if a.IntentFor(src.Add(time.Second), "abc") != nil || a.IntentFor(src, "other") != nil {
		t.Error("an intent matched another version or another decision")
	}
	if (ledger.Applied{}).IntentFor(src, "abc") != nil {
		t.Error("a record without intent matched")
	}
}

// getCounter counts the reads of a KV.
type getCounter struct {
	ledger.KV
	mu   sync.Mutex
	gets int
}

func (g *getCounter) Get(ctx context.Context, key string) (pipeline.Entry, error) {
	g.mu.Lock()
	g.gets++
	g.mu.Unlock()
	return g.KV.Get(ctx, key)
}

// UpdateAppliedFrom stores a change to a record the caller holds without
// reading it again, and on a conflict applies the change to the record as
// it is now, keeping the other writer's change.
func TestUpdateAppliedFrom(t *testing.T) {
	_, kv := bucketKV(t)
	counted := &getCounter{KV: kv}
	l := ledger.New(counted)
	ctx := context.Background()
	addTag := func(tag string) func(*ledger.Applied, bool) error {
		return func(a *ledger.Applied, _ bool) error {
			a.Fields.Tags = append(a.Fields.Tags, tag)
			return nil
		}
	}

	// None yet: created, no read.
	a, err := l.UpdateAppliedFrom(ctx, "freshdesk", "acme", 5, ledger.Applied{}, false, addTag("a"))
	if err != nil || a.Revision == 0 || counted.gets != 0 {
		t.Fatalf("create: %+v, %v, %d reads", a, err, counted.gets)
	}
	// Held at its revision: updated, no read, and the caller's copy is
	// not written into.
	held := a
	b, err := l.UpdateAppliedFrom(ctx, "freshdesk", "acme", 5, held, true, addTag("b"))
	if err != nil || counted.gets != 0 || strings.Join(b.Fields.Tags, ",") != "a,b" || strings.Join(held.Fields.Tags, ",") != "a" {
		t.Fatalf("update: %+v (held %v), %v, %d reads", b, held.Fields.Tags, err, counted.gets)
	}
	// Stale (another writer stored b since held was read): the change
	// lands on the current record.
	c, err := l.UpdateAppliedFrom(ctx, "freshdesk", "acme", 5, held, true, addTag("c"))
	if err != nil || counted.gets == 0 {
		t.Fatalf("stale update: %v, %d reads", err, counted.gets)
	}
	got, err := l.GetApplied(ctx, "freshdesk", "acme", 5)
	if err != nil || strings.Join(got.Fields.Tags, ",") != "a,b,c" || got.Revision != c.Revision {
		t.Errorf("stored %+v (%v), want tags a,b,c at revision %d", got, err, c.Revision)
	}
	// A found=false caller racing a creator also lands on the record.
	if _, err := l.UpdateAppliedFrom(ctx, "freshdesk", "acme", 5, ledger.Applied{}, false, addTag("d")); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.GetApplied(ctx, "freshdesk", "acme", 5); strings.Join(got.Fields.Tags, ",") != "a,b,c,d" {
		t.Errorf("tags %v, want a,b,c,d", got.Fields.Tags)
	}
}

// The writer's observed version (Applied.Seen) and the fetcher's seen record
// are two records with one writer each; the newest observed version is the
// newer of the two, by the rule ObserveSeen keeps for one record.
func TestNewestSeenOfTheFetchersAndTheWritersRecord(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	f := ledger.Seen{UpdatedAt: t0, GroupID: 1, At: t0, Revision: 9}
	if s, ok := ledger.NewestSeen(ledger.Seen{}, false, nil); ok || !s.UpdatedAt.IsZero() {
		t.Errorf("nothing observed: %+v %v", s, ok)
	}
	if s, ok := ledger.NewestSeen(f, true, &ledger.Applied{}); !ok || s.GroupID != 1 {
		t.Errorf("only the fetcher's: %+v %v", s, ok)
	}
	var a ledger.Applied
	a.ObserveSeen(ledger.Seen{UpdatedAt: t0.Add(time.Second), GroupID: 2, At: t0})
	a.ObserveSeen(ledger.Seen{UpdatedAt: t0, GroupID: 3, At: t0.Add(time.Minute)}) // older: ignored
	if a.Seen == nil || a.Seen.GroupID != 2 {
		t.Fatalf("the writer's record went backwards: %+v", a.Seen)
	}
	if s, ok := ledger.NewestSeen(f, true, &a); !ok || s.GroupID != 2 || s.Revision != 9 {
		t.Errorf("the writer's is newer: %+v %v (revision stays the seen record's)", s, ok)
	}
	if s, _ := ledger.NewestSeen(ledger.Seen{UpdatedAt: t0.Add(2 * time.Second), GroupID: 4}, true, &a); s.GroupID != 4 {
		t.Errorf("the fetcher's is newer: %+v", s)
	}
	// Same updated_at, other values: the later observation wins.
	if s, _ := ledger.NewestSeen(ledger.Seen{UpdatedAt: t0.Add(time.Second), GroupID: 5, At: t0.Add(time.Hour)}, true, &a); s.GroupID != 5 {
		t.Errorf("the later observation of the same second: %+v", s)
	}
	if s, _ := ledger.NewestSeen(ledger.Seen{UpdatedAt: t0.Add(time.Second), GroupID: 5, At: t0.Add(-time.Hour)}, true, &a); s.GroupID != 2 {
		t.Errorf("the later observation of the same second: %+v", s)
	}
}
