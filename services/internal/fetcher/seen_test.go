package fetcher

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

func (b *bus) seen(t *testing.T, id int64) ledger.Seen {
	t.Helper()
	s, err := b.ledger.GetSeen(context.Background(), testSystem, testAccount, id)
	if err != nil {
		t.Fatalf("seen record of ticket %d: %v", id, err)
	}
	return s
}

// TestSeenRecordedForEveryObservedVersion: every version the fetcher reads
// becomes the ticket's seen record, published or filtered out (a person
// already set the group, a closed or spam ticket), by polls and webhooks;
// an older version read later never replaces a newer one.
func TestSeenRecordedForEveryObservedVersion(t *testing.T) {
	b := startBus(t)
	now := time.Now().UTC().Truncate(time.Second)
	mk := func(id int64, age time.Duration, mod func(*ticketsystem.Ticket)) ticketsystem.Ticket {
		tk := ticketsystem.Ticket{ID: id, Subject: "s", Status: 2, Priority: 1, Tags: []string{},
			CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-age)}
		mod(&tk)
		return tk
	}
	v1 := mk(1, 50*time.Second, func(*ticketsystem.Ticket) {}) // triage: published
	v2 := mk(2, 40*time.Second, func(t *ticketsystem.Ticket) { // a person set the group and tagged it
		t.GroupID, t.Type, t.Priority, t.Tags = 9, "Incident", 3, []string{"autotriage", "vip"}
	})
	v3 := mk(3, 30*time.Second, func(t *ticketsystem.Ticket) { t.Status = 5 })  // closed
	v4 := mk(4, 20*time.Second, func(t *ticketsystem.Ticket) { t.Spam = true }) // spam
	src := &fakeSource{pages: [][]ticketsystem.Ticket{{v1, v2, v3, v4}}}
	f := newFetcher(t, b, testConfig(), fetcherOpts{src: src})
	ctx := context.Background()
	if err := f.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if ids := sortedIDs(b.tickets(t)); !slices.Equal(ids, []int64{1}) {
		t.Fatalf("published %v, want [1]", ids)
	}
	for _, want := range []ticketsystem.Ticket{v1, v2, v3, v4} {
		got := b.seen(t, want.ID)
		if !got.UpdatedAt.Equal(want.UpdatedAt) || got.GroupID != want.GroupID || got.Type != want.Type ||
			int(got.Priority) != want.Priority || int(got.Status) != want.Status || got.Spam != want.Spam ||
			!slices.Equal(got.Tags, want.Tags) && len(got.Tags)+len(want.Tags) > 0 {
			t.Errorf("ticket %d: seen %+v, want the version %+v", want.ID, got, want)
		}
	}

	// A person changes ticket 1's group; a webhook announces it. The version
	// is filtered (already has a group) but recorded.
	v1b := v1
	v1b.GroupID, v1b.UpdatedAt = 7, now.Add(-5*time.Second)
	src.mu.Lock()
	src.tickets = map[int64]ticketsystem.Ticket{1: v1b}
	src.mu.Unlock()
	cfg := testConfig()
	cfg.TriageWhen = "no_group"
	wf := newFetcher(t, b, cfg, fetcherOpts{src: src})
	hs := httptest.NewServer(wf.WebhookHandler())
	t.Cleanup(hs.Close)
	r := post(t, hs.URL+WebhookPath, []byte(`{"freshdesk_webhook":{"ticket_id":"1","triggered_event":"{ticket_action:created}"}}`), authed)
	if r.code != http.StatusAccepted || r.body.Status != StatusSkipped || r.body.Reason != ReasonAlreadyTriaged {
		t.Fatalf("webhook: %d %+v", r.code, r.body)
	}
	if got := b.seen(t, 1); got.GroupID != 7 || !got.UpdatedAt.Equal(v1b.UpdatedAt) {
		t.Fatalf("seen after the webhook %+v", got)
	}

	// The overlap re-reads the older version of ticket 1: the record stays.
	if err := f.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.seen(t, 1); got.GroupID != 7 || !got.UpdatedAt.Equal(v1b.UpdatedAt) {
		t.Fatalf("seen went backwards to %+v", got)
	}
}

// flakySeen fails every observation of one ticket while armed.
type flakySeen struct {
	*ledger.Ledger
	failID int64
	armed  atomic.Bool
	fails  atomic.Int64
}

func (l *flakySeen) ObserveSeen(ctx context.Context, system, account string, id int64, s ledger.Seen) (bool, error) {
	if id == l.failID && l.armed.Load() {
		l.fails.Add(1)
		return false, errors.New("kv unavailable")
	}
	return l.Ledger.ObserveSeen(ctx, system, account, id, s)
}

func (l *flakySeen) CreateSeen(ctx context.Context, system, account string, id int64, s ledger.Seen) error {
	if id == l.failID && l.armed.Load() {
		l.fails.Add(1)
		return errors.New("kv unavailable")
	}
	return l.Ledger.CreateSeen(ctx, system, account, id, s)
}

// TestSeenFailureKeepsTheCursor: a version whose observation could not be
// recorded counts as not handled, even though it was filtered out (nothing
// to publish): the cursor stays before its page, and the next poll records
// it. The writer would otherwise not know of a person's change.
func TestSeenFailureKeepsTheCursor(t *testing.T) {
	b := startBus(t)
	now := time.Now().UTC().Truncate(time.Second)
	var page1, page2 []ticketsystem.Ticket
	for i := range 4 {
		tk := ticketsystem.Ticket{ID: int64(i + 1), Subject: "s" + strconv.Itoa(i), Status: 2, Priority: 1, Tags: []string{},
			CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Duration(60-i*10) * time.Second)}
		if i < 2 {
			page1 = append(page1, tk)
		} else {
			page2 = append(page2, tk)
		}
	}
	page2[1].GroupID, page2[1].Tags = 9, []string{"autotriage"} // ticket 4: filtered out
	src := &fakeSource{pages: [][]ticketsystem.Ticket{page1, page2}}
	fl := &flakySeen{Ledger: b.ledger, failID: 4}
	fl.armed.Store(true)
	f, err := New(testConfig(), Deps{System: testSystem, Account: testAccount, Source: src, Bus: b.conn, State: b.state, Ledger: fl})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := f.PollOnce(ctx); err == nil {
		t.Fatal("poll succeeded although a version's observation was not recorded")
	}
	cur, err := f.ReadCursor(ctx)
	if err != nil || !cur.UpdatedAt.Equal(page1[1].UpdatedAt) {
		t.Fatalf("cursor %v (%v), want the end of the first page %v", cur.UpdatedAt, err, page1[1].UpdatedAt)
	}
	if _, err := b.ledger.GetSeen(ctx, testSystem, testAccount, 4); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("seen record of ticket 4: %v", err)
	}
	fl.armed.Store(false)
	if err := f.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if cur, _ := f.ReadCursor(ctx); !cur.UpdatedAt.Equal(page2[1].UpdatedAt) {
		t.Fatalf("cursor %v after the retry, want %v", cur.UpdatedAt, page2[1].UpdatedAt)
	}
	if got := b.seen(t, 4); got.GroupID != 9 {
		t.Fatalf("seen %+v", got)
	}
	if ids := sortedIDs(b.tickets(t)); !slices.Equal(ids, []int64{1, 2, 3}) {
		t.Fatalf("published %v, want [1 2 3] once each", ids)
	}
	if fl.fails.Load() == 0 {
		t.Fatal("the failure was never injected")
	}
}
