package cli

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/outcomes"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/writer"
)

// A prediction whose PUT fails with 503 on every delivery ends FAILED in
// OUTCOMES and in the DLQ; once Freshdesk is back, `dlq retry` is a new
// attempt: the writer applies it and its outcome supersedes the FAILED one
// for every reader (it is stored beside it, not dropped as its duplicate).
func TestDLQRetryOutcomeSupersedesTheFailedOne(t *testing.T) {
	sim, err := freshdesksim.New(freshdesksim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if err := sim.Generate(freshdesksim.GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	client, err := freshdesk.New(freshdesk.Config{APIKey: "sim-admin-key", BaseURL: hs.URL, MaxRetries: -1,
		BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}

	ns := natstest.Start(t)
	top := pipeline.DefaultTopology()
	top.MaxDeliver = 2
	conn := natstest.Connect(t, ns, top)
	kv, err := conn.KV(context.Background(), pipeline.BucketWriter)
	if err != nil {
		t.Fatal(err)
	}
	stage, err := writer.New(writer.Config{Concurrency: 2, Notes: true, Tag: "autotriage", CatalogTTL: time.Minute,
		NoteLease: time.Minute, Lease: 5 * time.Second, Reread: true},
		writer.Deps{Tickets: freshdesk.NewAdapter(client), KV: kv, Publisher: conn})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stage.Run(ctx, conn) }()
	t.Cleanup(func() { cancel(); <-done })

	id, err := sim.AddTicket(freshdesksim.NewTicket{Subject: "Charged twice", Description: "My invoice shows two charges."})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := sim.Ticket(id)
	at := timestamppb.New(st.UpdatedAt)
	pred := &v1.Prediction{System: "freshdesk", Account: "acme", TicketId: id, TicketUpdatedAt: at, ModelId: "m1", ModelVersion: "v1",
		Ticket: &v1.Ticket{System: "freshdesk", Account: "acme", Id: id, Subject: st.Subject, UpdatedAt: at,
			CreatedAt: timestamppb.New(st.CreatedAt), Priority: int32(st.Priority), Status: int32(st.Status)},
		Fields: []*v1.FieldPrediction{{Field: "group", Label: "Billing", Confidence: 0.95, Threshold: 0.8,
			Decision: v1.Decision_DECISION_APPLY, TopK: []*v1.LabelScore{{Label: "Billing", Probability: 0.95}}}},
		PredictedAt: timestamppb.Now()}
	data, err := proto.Marshal(pred)
	if err != nil {
		t.Fatal(err)
	}

	sim.SetFault("tickets.update", freshdesksim.Fault{ErrorRate: 1, Status: 503})
	publishT(t, conn, pipeline.OutMsg{Subject: pipeline.PredictionSubject("freshdesk", "acme", id), ID: "p1", Data: data})
	waitStream(t, conn, pipeline.StreamDLQ, 1)
	waitStream(t, conn, pipeline.StreamOutcomes, 1)
	if got := latestOutcome(t, conn); got.Fields[0].Action != v1.Action_ACTION_FAILED {
		t.Fatalf("outcome after the last delivery: %v, want FAILED", got.Fields[0].Action)
	}

	sim.SetFault("tickets.update", freshdesksim.Fault{})
	if out := mustRun(t, "dlq", "retry", "--all", "--stage", "writer", "--nats", ns.URL()); !strings.Contains(out, "1 retried, 0 failed") {
		t.Fatalf("retry: %s", out)
	}
	waitStream(t, conn, pipeline.StreamOutcomes, 2)
	got := latestOutcome(t, conn)
	if got.Fields[0].Action != v1.Action_ACTION_APPLIED || !strings.HasPrefix(got.Attempt, "dlq-retry:") {
		t.Fatalf("latest outcome: %v attempt %q, want APPLIED by the dlq-retry attempt", got.Fields[0].Action, got.Attempt)
	}
	if st, _ := sim.Ticket(id); st.GroupID == 0 {
		t.Error("the ticket was not written by the retry")
	}
}

func waitStream(t *testing.T, c *pipeline.Conn, stream string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if streamCount(t, c, stream) >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %d messages in %s", n, stream)
}

func streamCount(t *testing.T, c *pipeline.Conn, stream string) uint64 {
	t.Helper()
	ss, err := c.StreamStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if s.Name == stream {
			return s.Messages
		}
	}
	return 0
}

// latestOutcome is what OUTCOMES says about the only prediction, read as
// every reader does (outcomes.Latest).
func latestOutcome(t *testing.T, c *pipeline.Conn) *v1.Outcome {
	t.Helper()
	var l outcomes.Latest
	for seq, n := uint64(1), streamCount(t, c, pipeline.StreamOutcomes); seq <= n; seq++ {
		m, err := c.GetMsg(context.Background(), pipeline.StreamOutcomes, seq)
		if err != nil {
			t.Fatal(err)
		}
		var o v1.Outcome
		if err := proto.Unmarshal(m.Data, &o); err != nil {
			t.Fatal(err)
		}
		l.Add(&o)
	}
	if l.Len() != 1 {
		t.Fatalf("%d predictions in OUTCOMES, want 1", l.Len())
	}
	return l.Outcomes()[0]
}
