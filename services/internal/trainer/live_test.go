package trainer_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/trainer"
	"github.com/autotriage/autotriage/services/internal/triage"
)

// TestLiveHost: StartLive creates the policy document from
// AUTOTRIAGE_POLICY, feeds agents' verdicts from OUTCOMES into the tracker
// (the trainer's rollback evidence), exports them as metrics, and turns a
// label removed from the helpdesk into a training request.
func TestLiveHost(t *testing.T) {
	srv := natstest.Start(t)
	conn := natstest.Connect(t, srv, pipeline.Topology{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := conn.EnsureModelStore(ctx); err != nil {
		t.Fatal(err)
	}
	models, err := modelstore.Open(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := trainer.LiveConfig{Window: 10, MaxAge: time.Hour, MinSamples: 5, Every: time.Second}
	live, err := trainer.StartLive(ctx, conn, models, cfg, "group=apply:p90", reg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); live.Wait() }()
	if live.Policy.Policy != "group=apply:p90" || live.Policy.ChangedBy != "trainer" {
		t.Errorf("policy document %+v; want AUTOTRIAGE_POLICY stored by the trainer", live.Policy)
	}
	kv, err := conn.KV(ctx, pipeline.BucketPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if d, _, err := triage.NewStore(kv, conn, log).Get(ctx); err != nil || d.Policy != "group=apply:p90" {
		t.Fatalf("stored policy %+v, %v", d, err)
	}

	publish := func(id string, o *v1.Outcome) {
		t.Helper()
		b, err := proto.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Publish(ctx, pipeline.OutMsg{Subject: pipeline.OutcomeSubject("freshdesk", "acme", o.TicketId), ID: id, Data: b}); err != nil {
			t.Fatal(err)
		}
	}
	verdicts := []v1.Verdict{v1.Verdict_VERDICT_CONFIRMED, v1.Verdict_VERDICT_OVERRIDDEN, v1.Verdict_VERDICT_ACCEPTED}
	for i, v := range verdicts {
		publish("fb-"+v.String(), &v1.Outcome{System: "freshdesk", Account: "acme", TicketId: int64(i + 1), Kind: v1.OutcomeKind_OUTCOME_KIND_FEEDBACK,
			At: timestamppb.Now(), Feedback: &v1.Feedback{Field: "group", Label: "Billing", Verdict: v, ModelId: "m1", ObservedAt: timestamppb.Now()}})
	}
	waitFor(t, func() bool { n, _ := live.Tracker.ModelPrecision("m1", "group"); return n == 3 })
	if n, correct := live.Tracker.ClassPrecision("group", "Billing"); n != 3 || correct != 2 {
		t.Errorf("class precision %d/%d; want 2 of 3 verdicts correct", correct, n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		found = found || mf.GetName() == "autotriage_live_precision_lower"
	}
	if !found {
		t.Error("autotriage_live_precision_lower not exported")
	}

	// A removed label asks for a training run.
	publish("catalog-1", &v1.Outcome{System: "freshdesk", Account: "acme", Kind: v1.OutcomeKind_OUTCOME_KIND_CATALOG_CHANGE,
		At: timestamppb.Now(), CatalogChange: &v1.CatalogChange{Field: "group", Label: "Legacy", Change: "removed"}})
	var req trainer.Request
	waitFor(t, func() bool {
		e, err := kv.Get(ctx, trainer.KeyRequest)
		return err == nil && json.Unmarshal(e.Value, &req) == nil
	})
	if !strings.Contains(req.By, `group "Legacy" removed`) {
		t.Errorf("training request by %q; want the catalog removal named", req.By)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
