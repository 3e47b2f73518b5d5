package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

func TestAdminReadCountDeletePurge(t *testing.T) {
	srv := natstest.Start(t)
	c := connect(t, srv, testTopology())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for i := 1; i <= 6; i++ {
		publish(t, c, pipeline.TicketSubject("fd", "acme", int64(i)), fmt.Sprintf("a%d", i), fmt.Sprintf("acme-%d", i))
		publish(t, c, pipeline.TicketSubject("fd", "other", int64(i)), fmt.Sprintf("o%d", i), fmt.Sprintf("other-%d", i))
	}
	// 12 messages: odd sequences are acme, even ones other.

	rng, err := c.CountRange(ctx, pipeline.ReadOptions{Stream: pipeline.StreamTickets, Subject: "tickets.fd.acme.>", StartSeq: 5})
	if err != nil {
		t.Fatal(err)
	}
	if rng.Count != 4 || rng.LastSeq != 12 {
		t.Fatalf("range = %+v, want 4 messages up to 12", rng)
	}

	// Reading while re-publishing into the same stream must end at the
	// sequence that was last when the read began.
	var seqs []uint64
	n, err := c.Read(ctx, pipeline.ReadOptions{Stream: pipeline.StreamTickets, Subject: "tickets.fd.acme.>", StartSeq: 5},
		func(m pipeline.RawMsg) error {
			seqs = append(seqs, m.Sequence)
			_, err := c.Publish(ctx, pipeline.OutMsg{Subject: m.Subject, ID: fmt.Sprintf("again-%d", m.Sequence), Data: m.Data})
			return err
		})
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 || fmt.Sprint(seqs) != "[5 7 9 11]" {
		t.Fatalf("read %d %v, want [5 7 9 11]", n, seqs)
	}

	// From a time with an explicit stop and early stop.
	n, err = c.Read(ctx, pipeline.ReadOptions{Stream: pipeline.StreamTickets, StartTime: time.Now().Add(-time.Hour), StopSeq: 3},
		func(pipeline.RawMsg) error { return nil })
	if err != nil || n != 3 {
		t.Fatalf("read to seq 3: n=%d err=%v", n, err)
	}
	n, err = c.Read(ctx, pipeline.ReadOptions{Stream: pipeline.StreamTickets},
		func(pipeline.RawMsg) error { return pipeline.ErrStopRead })
	if err != nil || n != 1 {
		t.Fatalf("stopped read: n=%d err=%v", n, err)
	}

	// An empty range returns at once.
	n, err = c.Read(ctx, pipeline.ReadOptions{Stream: pipeline.StreamTickets, Subject: "tickets.none.>"},
		func(pipeline.RawMsg) error { t.Error("called on empty range"); return nil })
	if err != nil || n != 0 {
		t.Fatalf("empty read: n=%d err=%v", n, err)
	}

	if err := c.DeleteMsg(ctx, pipeline.StreamTickets, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteMsg(ctx, pipeline.StreamTickets, 1); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if _, err := c.GetMsg(ctx, pipeline.StreamTickets, 1); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}

	purged, err := c.PurgeSubject(ctx, pipeline.StreamTickets, "tickets.fd.other.>")
	if err != nil || purged != 6 {
		t.Fatalf("purge: %d %v, want 6", purged, err)
	}
	counts, err := c.SubjectCounts(ctx, pipeline.StreamTickets, "")
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, v := range counts {
		total += v
	}
	if total != 9 { // 5 acme originals left + 4 re-published
		t.Fatalf("after purge: %v", counts)
	}
}

func TestAdminDLQDepth(t *testing.T) {
	srv := natstest.Start(t)
	c := connect(t, srv, testTopology())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ok, err := c.HasTopology(ctx); err != nil || !ok {
		t.Fatalf("HasTopology = %v, %v", ok, err)
	}
	for i, subj := range []string{pipeline.DLQSubject("classifier", "a"), pipeline.DLQSubject("classifier", "b"),
		pipeline.DLQSubject("writer", "a"), pipeline.DLQSubject("classifier", "a")} {
		publish(t, c, subj, fmt.Sprint("d", i), "x")
	}
	depth, err := c.DLQDepth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(depth) != "[{classifier 3} {writer 1}]" {
		t.Fatalf("depth = %v", depth)
	}
}
