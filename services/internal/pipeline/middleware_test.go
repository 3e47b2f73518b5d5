package pipeline_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// A handler failing on every delivery learns from the message, not from
// the topology, that a delivery is the final one: exactly once, on the
// last delivery MaxDeliver allows, while the DLQ does not hold the
// message yet. The stage's middleware sees every delivery and the
// handler's own error.
func TestFinalDeliveryIsKnownBeforeTheDeadLetter(t *testing.T) {
	srv := natstest.Start(t)
	c := connect(t, srv, testTopology())
	type delivery struct {
		n          uint64
		final      bool
		dlqAtFinal uint64
	}
	var mu sync.Mutex
	var seen []delivery
	var wrapped []string
	record := func(next pipeline.Handler) pipeline.Handler {
		return func(ctx context.Context, m *pipeline.Msg) error {
			err := next(ctx, m)
			mu.Lock()
			wrapped = append(wrapped, err.Error())
			mu.Unlock()
			return err
		}
	}
	o := classifierOpts()
	o.Backoff = func(uint64) time.Duration { return 20 * time.Millisecond }
	o.Middleware = []pipeline.Middleware{record}
	consume(t, c, o, func(ctx context.Context, m *pipeline.Msg) error {
		d := delivery{n: m.NumDelivered, final: m.Final()}
		if d.final {
			counts, err := c.SubjectCounts(ctx, pipeline.StreamDLQ, "")
			if err != nil {
				t.Errorf("DLQ depth: %v", err)
			}
			d.dlqAtFinal = uint64(len(counts))
		}
		mu.Lock()
		seen = append(seen, d)
		mu.Unlock()
		return errors.New("ticket system down")
	})
	publish(t, c, "tickets.freshdesk.acme.21", "x21", "final")
	checkDLQ(t, c, "dlq.classifier.acme", "classifier", "max deliveries exhausted: ticket system down", 1, "final")
	waitFor(t, "the message terminated", func() bool {
		st, err := c.ConsumerStats(context.Background(), pipeline.StreamTickets, pipeline.ConsumerClassifier)
		return err == nil && st.AckPending == 0 && st.Pending == 0
	})

	mu.Lock()
	defer mu.Unlock()
	maxDeliver := uint64(testTopology().MaxDeliver)
	if uint64(len(seen)) != maxDeliver {
		t.Fatalf("%d deliveries %+v, want MaxDeliver=%d", len(seen), seen, maxDeliver)
	}
	for i, d := range seen {
		last := uint64(i+1) == maxDeliver
		if d.n != uint64(i+1) || d.final != last {
			t.Errorf("delivery %d: number %d final %v, want final only on delivery %d", i+1, d.n, d.final, maxDeliver)
		}
		if last && d.dlqAtFinal != 0 {
			t.Errorf("the DLQ held %d messages while the final delivery ran, want the copy after it", d.dlqAtFinal)
		}
	}
	if len(wrapped) != len(seen) || slices.ContainsFunc(wrapped, func(e string) bool { return e != "ticket system down" }) {
		t.Errorf("the stage's middleware saw %q, want the handler's error on each delivery", wrapped)
	}
}

func TestMsgFinal(t *testing.T) {
	for _, tc := range []struct {
		delivered uint64
		max       int
		want      bool
	}{
		{1, 0, false},  // no limit known
		{5, -1, false}, // unlimited deliveries
		{1, 3, false},
		{3, 3, true},
		{4, 3, true}, // a redelivery past the limit (the limit was lowered)
	} {
		m := &pipeline.Msg{NumDelivered: tc.delivered, MaxDeliver: tc.max}
		if got := m.Final(); got != tc.want {
			t.Errorf("delivery %d of at most %d: Final %v, want %v", tc.delivered, tc.max, got, tc.want)
		}
	}
}

func TestChainRunsTheFirstMiddlewareOutermost(t *testing.T) {
	var order []string
	mw := func(name string) pipeline.Middleware {
		return func(next pipeline.Handler) pipeline.Handler {
			return func(ctx context.Context, m *pipeline.Msg) error {
				order = append(order, name+" in")
				err := next(ctx, m)
				order = append(order, name+" out")
				return err
			}
		}
	}
	h := pipeline.Chain(func(context.Context, *pipeline.Msg) error {
		order = append(order, "handler")
		return nil
	}, mw("a"), mw("b"))
	if err := h(context.Background(), &pipeline.Msg{}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a in", "b in", "handler", "b out", "a out"}; !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

func TestRecoverMakesAPanicPermanent(t *testing.T) {
	h := pipeline.Chain(func(context.Context, *pipeline.Msg) error { panic("bad input") }, pipeline.Heartbeat(time.Millisecond), pipeline.Recover)
	err := h(context.Background(), &pipeline.Msg{})
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "handler panic: bad input") {
		t.Fatalf("got %v, want a permanent error naming the panic", err)
	}
}
