package classifier_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classifier"
	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/freshdesksim/helpdeskgen"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/service"
	"github.com/autotriage/autotriage/services/internal/triage"
)

var (
	modelsOnce sync.Once
	modelA     []byte
	modelB     []byte
	idA, idB   string
	trainErr   error
)

// trainedModels trains two small models on generated helpdesk history (with
// different seeds, so different content hashes) once per test binary.
func trainedModels(t *testing.T) {
	t.Helper()
	modelsOnce.Do(func() {
		train := func(seed int64) ([]byte, string) {
			g := helpdeskgen.New(seed)
			var ex []classify.Example
			for i := range 400 {
				tk := g.Next()
				ex = append(ex, classify.Example{ID: fmt.Sprint(i), Subject: tk.Subject, Body: tk.DescriptionText, Group: tk.Group, Type: tk.Type, Language: tk.Language})
			}
			m, err := classify.Train(context.Background(), ex, classify.TrainOptions{Seed: uint64(seed), Folds: 2, Costs: []float64{0.5}})
			if err != nil {
				trainErr = err
				return nil, ""
			}
			var buf bytes.Buffer
			if err := m.Save(&buf); err != nil {
				trainErr = err
			}
			return buf.Bytes(), m.ID()
		}
		modelA, idA = train(1)
		modelB, idB = train(2)
	})
	if trainErr != nil {
		t.Fatal(trainErr)
	}
	if idA == idB {
		t.Fatal("two seeds gave the same model id")
	}
}

type env struct {
	conn   *pipeline.Conn
	models *modelstore.Store
	stage  *classifier.Stage
}

func setup(t *testing.T) *env {
	t.Helper()
	trainedModels(t)
	srv := natstest.Start(t)
	ctx := context.Background()
	top := pipeline.DefaultTopology()
	top.AckWait = 2 * time.Second
	conn := natstest.Connect(t, srv, top)
	ms, err := modelstore.Open(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := triage.ParsePolicy("group=apply:0.5,type=suggest")
	if err != nil {
		t.Fatal(err)
	}
	load := func(b []byte, info modelstore.Info) (classifier.Predictor, error) {
		return triage.LoadPredictor(b, policy, info.Version)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := classifier.New(classifier.Config{Concurrency: 4}, log, nil, ms, load, conn)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = st.Run(runCtx, conn) }()
	t.Cleanup(func() { cancel(); <-done })
	return &env{conn: conn, models: ms, stage: st}
}

func publishTicket(t *testing.T, c *pipeline.Conn, id int64, subject, body string) {
	t.Helper()
	tk := &v1.Ticket{System: "freshdesk", Account: "acme", Id: id, Subject: subject, DescriptionText: body,
		UpdatedAt: timestamppb.New(time.Unix(1_700_000_000+id, 0)), CreatedAt: timestamppb.New(time.Unix(1_700_000_000, 0)), Arrival: v1.Arrival_ARRIVAL_POLL}
	b, _ := proto.Marshal(tk)
	if _, err := c.Publish(context.Background(), pipeline.OutMsg{Subject: pipeline.TicketSubject("freshdesk", "acme", id), ID: fmt.Sprint("t", id), Data: b}); err != nil {
		t.Fatal(err)
	}
}

func predictions(t *testing.T, c *pipeline.Conn) []*v1.Prediction {
	t.Helper()
	ss, err := c.StreamStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, s := range ss {
		if s.Name == pipeline.StreamPredictions {
			n = s.LastSeq
		}
	}
	var out []*v1.Prediction
	for seq := uint64(1); seq <= n; seq++ {
		raw, err := c.GetMsg(context.Background(), pipeline.StreamPredictions, seq)
		if err != nil {
			t.Fatal(err)
		}
		var p v1.Prediction
		if err := proto.Unmarshal(raw.Data, &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, &p)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestWaitsForAModelThenClassifiesAndHotSwaps(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	g := helpdeskgen.New(99)
	for i := int64(1); i <= 20; i++ {
		tk := g.Next()
		publishTicket(t, e.conn, i, tk.Subject, tk.DescriptionText)
	}
	// No model: nothing is consumed, tickets stay in the stream.
	time.Sleep(500 * time.Millisecond)
	if err := e.stage.Ready(); err == nil {
		t.Fatal("ready without a model")
	}
	st, err := e.conn.ConsumerStats(ctx, pipeline.StreamTickets, pipeline.ConsumerClassifier)
	if err != nil || st.Pending != 20 || st.AckPending != 0 {
		t.Fatalf("tickets were consumed without a model: %+v %v", st, err)
	}

	if _, err := e.models.Put(ctx, idA, "vA", modelA, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.models.Promote(ctx, idA, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "20 predictions", func() bool { return len(predictions(t, e.conn)) == 20 })
	for _, p := range predictions(t, e.conn) {
		if p.ModelId != idA || p.ModelVersion != "vA" || p.Ticket == nil || p.TicketUpdatedAt == nil {
			t.Fatalf("prediction %+v", p)
		}
		var group *v1.FieldPrediction
		for _, f := range p.Fields {
			if f.Field == "group" {
				group = f
			}
		}
		if group == nil || len(group.TopK) == 0 || group.Label == "" || group.Decision == v1.Decision_DECISION_UNSPECIFIED {
			t.Fatalf("group prediction %+v", group)
		}
		// Explained, with the three nearest tickets of the model's history.
		if len(group.Terms) == 0 || len(p.Similar) != 3 || p.Similar[0].ExampleId == "" || p.Similar[0].Similarity <= 0 {
			t.Fatalf("explanation: terms %v, similar %v", group.Terms, p.Similar)
		}
	}

	// Promote B while tickets flow: every ticket gets exactly one prediction,
	// from A or B, and the ones after the swap are B's.
	if _, err := e.models.Put(ctx, idB, "vB", modelB, nil); err != nil {
		t.Fatal(err)
	}
	for i := int64(21); i <= 40; i++ {
		tk := g.Next()
		publishTicket(t, e.conn, i, tk.Subject, tk.DescriptionText)
	}
	if _, err := e.models.Promote(ctx, idB, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "model B in use", func() bool { p := e.stage.Predictor(); return p != nil && p.ModelID() == idB })
	for i := int64(41); i <= 60; i++ {
		tk := g.Next()
		publishTicket(t, e.conn, i, tk.Subject, tk.DescriptionText)
	}
	waitFor(t, "60 predictions", func() bool { return len(predictions(t, e.conn)) == 60 })
	seen := map[int64]int{}
	for _, p := range predictions(t, e.conn) {
		seen[p.TicketId]++
		if p.TicketId > 40 && p.ModelId != idB {
			t.Errorf("ticket %d predicted by %s after the swap", p.TicketId, p.ModelId)
		}
	}
	if len(seen) != 60 {
		t.Fatalf("%d distinct tickets predicted, want 60", len(seen))
	}
}

func TestGarbageTicketGoesToDLQ(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	if _, err := e.models.Put(ctx, idA, "vA", modelA, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.models.Promote(ctx, idA, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.conn.Publish(ctx, pipeline.OutMsg{Subject: "tickets.freshdesk.acme.5", ID: "bad", Data: []byte{0xff, 0x01, 0x02}}); err != nil {
		t.Fatal(err)
	}
	noID, _ := proto.Marshal(&v1.Ticket{System: "freshdesk", Account: "acme"})
	if _, err := e.conn.Publish(ctx, pipeline.OutMsg{Subject: "tickets.freshdesk.acme.0", ID: "noid", Data: noID}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two dead letters", func() bool {
		ss, _ := e.conn.StreamStats(ctx)
		for _, s := range ss {
			if s.Name == pipeline.StreamDLQ {
				return s.Messages == 2
			}
		}
		return false
	})
	if n := len(predictions(t, e.conn)); n != 0 {
		t.Fatalf("%d predictions from garbage", n)
	}
}

// TestBuildReportsPipelineMetrics: the stage built for a process (the
// classifier binary, `autotriage up`) counts what it consumes in the
// process's pipeline series under stage="classifier", the series of the
// dashboard's "Tickets in / min"; the result series exist at zero from the
// start of consuming.
func TestBuildReportsPipelineMetrics(t *testing.T) {
	trainedModels(t)
	srv := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	top := pipeline.DefaultTopology()
	top.AckWait = 2 * time.Second
	rt, err := service.Start(ctx, "classifier", platform.Common{LogLevel: "error", ShutdownTimeout: 5 * time.Second},
		pipeline.Config{URL: srv.URL(), ConnectWait: 10 * time.Second, Topology: top}, io.Discard, service.Options{NoDebugServer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rt.Stop() }()
	ms, err := modelstore.Open(ctx, rt.Conn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Put(ctx, idA, "vA", modelA, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Promote(ctx, idA, "test"); err != nil {
		t.Fatal(err)
	}
	policy, err := triage.ParsePolicy("group=apply:0.5")
	if err != nil {
		t.Fatal(err)
	}
	st, err := classifier.Build(ctx, rt, classifier.Config{Concurrency: 2}, policy)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = st.Run(ctx, rt.Conn) }()
	defer func() { cancel(); <-done }()

	handled := func(result string) (float64, bool) {
		return gathered(t, rt.Registry, "autotriage_messages_handled_total",
			map[string]string{"process": "classifier", "stage": "classifier", "result": result})
	}
	waitFor(t, "the result series at zero", func() bool {
		_, ack := handled("ack")
		_, retry := handled("retry")
		_, dead := handled("dead_letter")
		return ack && retry && dead
	})
	g := helpdeskgen.New(7)
	for i := int64(1); i <= 5; i++ {
		tk := g.Next()
		publishTicket(t, rt.Conn, i, tk.Subject, tk.DescriptionText)
	}
	if _, err := rt.Conn.Publish(ctx, pipeline.OutMsg{Subject: "tickets.freshdesk.acme.6", ID: "garbage", Data: []byte{0xff, 0x01}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "5 acks and 1 dead letter counted", func() bool {
		ack, _ := handled("ack")
		dead, _ := handled("dead_letter")
		return ack == 5 && dead == 1
	})
	if n, ok := gathered(t, rt.Registry, "autotriage_handler_duration_seconds", map[string]string{"stage": "classifier"}); !ok {
		t.Errorf("no handler duration for the classifier (%v)", n)
	}
}

// gathered returns the value of the series name{labels} in reg (a
// histogram's sample count), and whether it exists.
func gathered(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}
