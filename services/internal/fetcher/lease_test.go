package fetcher

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// runFetcher runs f.Run until the returned stop is called.
func runFetcher(t *testing.T, f *Fetcher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func leaseHolder(t *testing.T, b *bus) string {
	t.Helper()
	e, err := b.state.Get(context.Background(), LeaseKey(testSystem, testAccount))
	if err != nil {
		return ""
	}
	var v leaseValue
	if err := json.Unmarshal(e.Value, &v); err != nil {
		t.Fatal(err)
	}
	return v.Holder
}

func TestLeaseOnePollerAndFailoverAfterExpiry(t *testing.T) {
	b := startBus(t)
	s := startSim(t, freshdesksim.Config{}, freshdesksim.GenerateOptions{New: 5})
	srcA := &countingSource{Source: s.adapter}
	srcB := &countingSource{Source: s.adapter}
	fa := newFetcher(t, b, testConfig(), fetcherOpts{src: srcA, holder: "replica-a"})
	fb := newFetcher(t, b, testConfig(), fetcherOpts{src: srcB, holder: "replica-b"})
	fa.releaseOnStop = false // A will die without releasing
	stopA := runFetcher(t, fa)
	waitFor(t, "replica A to poll", func() bool { return srcA.polls.Load() >= 3 })
	stopB := runFetcher(t, fb)
	defer stopB()
	// B contends for well over a TTL (its retry period is TTL/3) while A polls on.
	target := srcA.polls.Load() + 40
	waitFor(t, "replica A to keep polling", func() bool { return srcA.polls.Load() >= target })
	if n := srcB.polls.Load(); n != 0 {
		t.Fatalf("replica B polled %d times while A held the lease", n)
	}
	if h := leaseHolder(t, b); h != "replica-a" {
		t.Fatalf("lease held by %q, want replica-a", h)
	}

	stopA() // dies: no release, the lease must expire
	afterDeath := srcA.polls.Load()
	waitFor(t, "replica B to take over", func() bool { return srcB.polls.Load() > 0 })
	if h := leaseHolder(t, b); h != "replica-b" {
		t.Fatalf("lease held by %q after failover, want replica-b", h)
	}
	if n := srcA.polls.Load(); n != afterDeath {
		t.Fatalf("dead replica A polled again (%d > %d)", n, afterDeath)
	}
	if n := b.count(t, pipeline.StreamTickets); n != 5 {
		t.Fatalf("TICKETS holds %d after failover, want 5 (no duplicates)", n)
	}
}

func TestLosingTheLeaseStopsPolling(t *testing.T) {
	b := startBus(t)
	s := startSim(t, freshdesksim.Config{}, freshdesksim.GenerateOptions{New: 2})
	src := &countingSource{Source: s.adapter}
	f := newFetcher(t, b, testConfig(), fetcherOpts{src: src, holder: "replica-a"})
	runFetcher(t, f)
	waitFor(t, "polling", func() bool { return src.polls.Load() >= 2 })

	// Another replica takes the lease (say A was paused past its expiry).
	intruder, _ := json.Marshal(leaseValue{Holder: "intruder", Expires: time.Now().Add(time.Hour), Acquired: time.Now()})
	if _, err := b.state.Put(context.Background(), LeaseKey(testSystem, testAccount), intruder); err != nil {
		t.Fatal(err)
	}
	// A notices at its next renewal (TTL/3) and stops; then its count freezes.
	var last int64
	stable := 0
	waitFor(t, "replica A to stop polling", func() bool {
		n := src.polls.Load()
		if n == last {
			stable++
		} else {
			stable, last = 0, n
		}
		return stable >= 100 // a second without a poll at a 50ms interval
	})
	if h := leaseHolder(t, b); h != "intruder" {
		t.Fatalf("replica A overwrote the lease: holder %q", h)
	}
	if f.HoldsLease() {
		t.Fatal("replica A still believes it holds the lease")
	}
}

func TestBackfillPublishesShadowTicketsInRange(t *testing.T) {
	b := startBus(t)
	s := startSim(t, freshdesksim.Config{}, freshdesksim.GenerateOptions{History: 60, HistoryDays: 10})
	now := time.Now().UTC()
	from, to := now.Add(-8*24*time.Hour), now.Add(-3*24*time.Hour)
	want := map[int64]bool{}
	for _, id := range s.TicketIDs() {
		tk, _ := s.Ticket(id)
		if !tk.UpdatedAt.Before(from) && tk.UpdatedAt.Before(to) && !tk.Spam && !tk.Deleted {
			want[id] = true
		}
	}
	if len(want) < 5 || len(want) == 60 {
		t.Fatalf("test data: %d of 60 tickets in range", len(want))
	}

	// The same tickets went through live first: backfill ids must not collide.
	cfg := testConfig()
	cfg.TriageWhen, cfg.TriageStatuses, cfg.Start = "always", "", "720h"
	f := newFetcher(t, b, cfg, fetcherOpts{src: s.adapter})
	if err := f.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	live := b.count(t, pipeline.StreamTickets)
	if live != 60 {
		t.Fatalf("live poll published %d, want 60", live)
	}

	var progress []BackfillProgress
	rep, err := f.Backfill(context.Background(), from, to, BackfillOptions{BatchID: "b1",
		Progress: func(p BackfillProgress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Published != len(want) || rep.Duplicates != 0 || rep.BatchID != "b1" {
		t.Fatalf("report %+v, want %d published", rep, len(want))
	}
	if len(progress) == 0 || progress[len(progress)-1].Published != len(want) {
		t.Fatalf("progress %+v", progress)
	}
	msgs := b.messages(t, pipeline.StreamTickets)[live:]
	if len(msgs) != len(want) {
		t.Fatalf("backfill stored %d messages, want %d", len(msgs), len(want))
	}
	for _, tk := range b.tickets(t)[live:] {
		if !want[tk.Id] || tk.Arrival != v1.Arrival_ARRIVAL_BACKFILL || !tk.ShadowOnly || tk.BatchId != "b1" {
			t.Fatalf("backfilled ticket %d: in range %v arrival %v shadow %v batch %q", tk.Id, want[tk.Id], tk.Arrival, tk.ShadowOnly, tk.BatchId)
		}
	}
	for _, m := range msgs {
		if id := m.Header["Nats-Msg-Id"]; len(id) != 1 || !strings.HasPrefix(id[0], "backfill:b1:") {
			t.Fatalf("backfill message id %v", id)
		}
	}

	// Re-running the batch stores nothing new.
	rep, err = f.Backfill(context.Background(), from, to, BackfillOptions{BatchID: "b1"})
	if err != nil || rep.Published != 0 || rep.Duplicates != len(want) {
		t.Fatalf("re-run: %+v, %v", rep, err)
	}
}
