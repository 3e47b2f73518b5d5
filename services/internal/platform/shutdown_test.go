package platform

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"
)

// The budget starts when the process is told to stop, not when a phase
// first asks: a phase that asks late gets the deadline counted from the
// signal.
func TestShutdownBeginsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := NewShutdown(ctx, 10*time.Second)
	if s.begun.Load() != nil {
		t.Fatal("the budget started before the context ended")
	}
	before := time.Now()
	cancel()
	deadline := time.Now().Add(30 * time.Second)
	for s.begun.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the budget did not start within 30s of the context ending")
		}
		time.Sleep(time.Millisecond)
	}
	seen := time.Now()
	if b := s.Begun(); b.Before(before) || b.After(seen) {
		t.Fatalf("begun at %s, want between the cancel (%s) and when it was seen (%s)", b, before, seen)
	}
	first := s.Deadline()
	s.Begin() // a second start changes nothing
	if !s.Deadline().Equal(first) {
		t.Fatalf("the deadline moved from %s to %s", first, s.Deadline())
	}
	if got := first.Sub(s.Begun()); got != 10*time.Second {
		t.Fatalf("deadline %s after the start, want the budget 10s", got)
	}
}

// A phase that asks before any signal (a stage failed on its own) starts
// the budget then.
func TestShutdownBeginsAtTheFirstAsk(t *testing.T) {
	s := NewShutdown(context.Background(), 5*time.Second)
	before := time.Now()
	d := s.Deadline()
	if d.Before(before.Add(5*time.Second)) || d.After(time.Now().Add(5*time.Second)) {
		t.Fatalf("deadline %s, want 5s after the first ask at %s", d, before)
	}
}

func TestShutdownReserve(t *testing.T) {
	for _, c := range []struct{ budget, reserve time.Duration }{
		{25 * time.Second, 2 * time.Second},
		{5 * time.Second, time.Second},
		{time.Second, 200 * time.Millisecond},
	} {
		s := NewShutdown(context.Background(), c.budget)
		work, end := s.Deadlines()
		if got := end.Sub(work); got != c.reserve {
			t.Errorf("budget %s: work deadline %s before the end, want %s", c.budget, got, c.reserve)
		}
		ctx, cancel := s.Context()
		if d, _ := ctx.Deadline(); !d.Equal(end) {
			t.Errorf("budget %s: Context ends at %s, want %s", c.budget, d, end)
		}
		cancel()
		wctx, wcancel := s.WorkContext()
		if d, _ := wctx.Deadline(); !d.Equal(work) {
			t.Errorf("budget %s: WorkContext ends at %s, want %s", c.budget, d, work)
		}
		wcancel()
	}
}

// A request that outlives the shutdown deadline does not hold the server:
// Shutdown returns by the deadline and the request's context is cancelled.
func TestServerShutdownReturnsByTheDeadline(t *testing.T) {
	started := make(chan struct{})
	cancelled := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(time.Minute):
		}
	})
	srv, err := Listen("test", "127.0.0.1:0", h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		resp, err := http.Get("http://" + srv.Addr() + "/")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the request never reached the handler")
	}
	const budget = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	begin := time.Now()
	if err := srv.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown reported success with a request still running")
	}
	if took := time.Since(begin); took > budget+2*time.Second {
		t.Fatalf("Shutdown took %s with a %s deadline", took, budget)
	}
	select {
	case <-cancelled:
	case <-time.After(30 * time.Second):
		t.Fatal("the running request's context was not cancelled")
	}
}
