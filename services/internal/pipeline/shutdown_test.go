package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/natsserver"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
)

// budgetSlack is what a consume loop may take past its shutdown deadline:
// returning, on a loaded machine.
const budgetSlack = time.Second

// consumeBounded runs a consume loop on its own connection bound to a
// shutdown budget, and returns the budget, a stop function that cancels the
// loop's context and returns when the loop returned, and the connection.
func consumeBounded(t *testing.T, srv *natsserver.Server, top pipeline.Topology, budget time.Duration, h pipeline.Handler) (*platform.Shutdown, func() time.Time, *pipeline.Conn) {
	t.Helper()
	c, err := pipeline.Connect(context.Background(), pipeline.Config{URL: srv.URL(), ConnectWait: 5 * time.Second, Topology: top}, "bounded", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sd := platform.NewShutdown(ctx, budget)
	c.BoundShutdown(sd)
	done := make(chan error, 1)
	go func() { done <- c.Consume(ctx, classifierOpts(), h) }()
	stop := func() time.Time {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("consume returned %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("consume did not return within a minute of the cancel")
		}
		return time.Now()
	}
	return sd, stop, c
}

// A handler that honours its context runs until the budget's work deadline,
// is cancelled then, and its message is handed back for another consumer at
// once (long before the ack wait would redeliver it); the loop returns
// within the budget.
func TestConsumeCancelsHandlersAtTheWorkDeadline(t *testing.T) {
	srv := natstest.Start(t)
	top := testTopology()
	top.AckWait = 30 * time.Second
	c := connect(t, srv, top)
	publish(t, c, "tickets.freshdesk.acme.7", "x7", "in hand")

	started := make(chan struct{})
	cancelledAt := make(chan time.Time, 1)
	sd, stop, _ := consumeBounded(t, srv, top, 1500*time.Millisecond, func(ctx context.Context, m *pipeline.Msg) error {
		close(started)
		<-ctx.Done()
		cancelledAt <- time.Now()
		return ctx.Err()
	})
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the handler never got the message")
	}
	returned := stop()
	work, end := sd.Deadlines()
	if at := <-cancelledAt; at.Before(work) {
		t.Errorf("the handler was cancelled at %s, before the work deadline %s", at.Format(time.StampMilli), work.Format(time.StampMilli))
	}
	if returned.After(end.Add(budgetSlack)) {
		t.Errorf("consume returned %s after the shutdown deadline", returned.Sub(end))
	}

	got := make(chan *pipeline.Msg, 1)
	consume(t, c, classifierOpts(), func(ctx context.Context, m *pipeline.Msg) error {
		got <- m
		return nil
	})
	select {
	case m := <-got:
		if string(m.Data) != "in hand" || m.NumDelivered != 2 {
			t.Fatalf("redelivered %q with %d deliveries, want the message handed back once", m.Data, m.NumDelivered)
		}
	case <-time.After(top.AckWait / 2):
		t.Fatalf("not redelivered within %s; a handed-back message must not wait for the ack wait (%s)", top.AckWait/2, top.AckWait)
	}
}

// A handler that ignores its cancellation (a call without a context, say)
// does not hold the loop: it returns by the shutdown deadline, and once the
// process is gone the unacknowledged message is redelivered.
func TestConsumeReturnsByTheDeadlineDespiteAStuckHandler(t *testing.T) {
	srv := natstest.Start(t)
	top := testTopology()
	top.AckWait = 2 * time.Second
	c := connect(t, srv, top)
	publish(t, c, "tickets.freshdesk.acme.8", "x8", "stuck")

	started := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	sd, stop, bounded := consumeBounded(t, srv, top, 1500*time.Millisecond, func(ctx context.Context, m *pipeline.Msg) error {
		close(started)
		<-release
		return nil
	})
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the handler never got the message")
	}
	returned := stop()
	if end := sd.Deadline(); returned.After(end.Add(budgetSlack)) {
		t.Fatalf("consume returned %s after the shutdown deadline with a stuck handler", returned.Sub(end))
	}
	bounded.Close() // the process exits

	got := make(chan *pipeline.Msg, 1)
	consume(t, c, classifierOpts(), func(ctx context.Context, m *pipeline.Msg) error {
		got <- m
		return nil
	})
	select {
	case m := <-got:
		if string(m.Data) != "stuck" || m.NumDelivered < 2 {
			t.Fatalf("redelivered %q with %d deliveries", m.Data, m.NumDelivered)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the abandoned message was not redelivered")
	}
}
