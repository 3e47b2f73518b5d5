package platform

import (
	"context"
	"sync/atomic"
	"time"
)

// Shutdown is the one budget of a process's shutdown
// (AUTOTRIAGE_SHUTDOWN_TIMEOUT). It starts once: when the process is told to
// stop (the context given to NewShutdown ends: SIGTERM or SIGINT), or when a
// phase of the shutdown first asks for its deadline, whichever comes first.
// Every phase — the consumer drain, the webhook server, the NATS drain, the
// debug server, and in `autotriage up` the simulator and the embedded NATS
// server — waits on the same deadline and gives up at it, so together they
// cannot outlast the budget.
//
// The end of the budget (Reserve) is kept for handing work back: in-hand
// work (message handlers, webhook requests) may run until WorkDeadline;
// whatever still runs then is cancelled, and the time left is for returning
// its messages (Nak) and closing the connection.
type Shutdown struct {
	budget time.Duration
	begun  atomic.Pointer[time.Time]
}

// NewShutdown returns the budget of a process that is told to stop when ctx
// ends.
func NewShutdown(ctx context.Context, budget time.Duration) *Shutdown {
	s := &Shutdown{budget: budget}
	context.AfterFunc(ctx, s.Begin)
	return s
}

// Budget is the whole shutdown's duration.
func (s *Shutdown) Budget() time.Duration { return s.budget }

// Reserve is the part of the budget after WorkDeadline: a fifth, at most 2s.
func (s *Shutdown) Reserve() time.Duration { return min(s.budget/5, 2*time.Second) }

// Begin starts the budget if it has not started yet.
func (s *Shutdown) Begin() {
	now := time.Now()
	s.begun.CompareAndSwap(nil, &now)
}

// Begun is when the budget started (starting it now if it had not).
func (s *Shutdown) Begun() time.Time {
	s.Begin()
	return *s.begun.Load()
}

// Deadline is when the whole shutdown must be over.
func (s *Shutdown) Deadline() time.Time { return s.Begun().Add(s.budget) }

// WorkDeadline is when in-hand work is cancelled: Deadline minus Reserve.
func (s *Shutdown) WorkDeadline() time.Time { return s.Deadline().Add(-s.Reserve()) }

// Deadlines returns WorkDeadline and Deadline (pipeline.ShutdownBudget).
func (s *Shutdown) Deadlines() (work, end time.Time) { return s.WorkDeadline(), s.Deadline() }

// Context ends at Deadline: for the phases that close things (the NATS
// drain, the debug server).
func (s *Shutdown) Context() (context.Context, context.CancelFunc) {
	return context.WithDeadline(context.Background(), s.Deadline())
}

// WorkContext ends at WorkDeadline: for the phases that wait for in-hand
// work (the webhook server's in-flight requests).
func (s *Shutdown) WorkContext() (context.Context, context.CancelFunc) {
	return context.WithDeadline(context.Background(), s.WorkDeadline())
}
