package cli

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classifier"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/service"
	"github.com/autotriage/autotriage/services/internal/triage"
)

// TestPolicySetReachesARunningClassifier: `autotriage policy set` changes
// how a running classifier decides the next ticket, without a restart; a
// per-class setting takes one class out of apply; `policy show` reports the
// policy, the per-class resolution for the promoted model and the history.
func TestPolicySetReachesARunningClassifier(t *testing.T) {
	t.Setenv("AUTOTRIAGE_POLICY", "")
	t.Setenv("USER", "carol")
	conn, url := pipelineEnv(t)
	dir := t.TempDir()
	train := filepath.Join(dir, "train.jsonl")
	writeDataset(t, train, 90, 1)
	mustRun(t, "train", "--data", train, "--promote", "--nats", url, "--folds", "2")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rt, err := service.Start(ctx, "classifier", platform.Common{LogLevel: "error", ShutdownTimeout: 5 * time.Second},
		pipeline.Config{URL: url, ConnectWait: 10 * time.Second}, io.Discard, service.Options{NoDebugServer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rt.Stop() }()
	initial, _ := triage.ParsePolicy("group=shadow")
	st, err := classifier.Build(ctx, rt, classifier.Config{Concurrency: 2}, initial)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = st.Run(ctx, rt.Conn) }()
	defer func() { cancel(); <-done }()

	revision := func() float64 {
		mfs, err := rt.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "autotriage_classifier_policy_revision" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return -1
	}
	decide := func(id int64) *v1.FieldPrediction {
		t.Helper()
		tk := &v1.Ticket{System: "freshdesk", Account: "acme", Id: id, Subject: "invoice refund", DescriptionText: "my invoice shows a double charge on my card, please refund the payment",
			UpdatedAt: timestamppb.New(time.Unix(1_700_000_000+id, 0)), Arrival: v1.Arrival_ARRIVAL_POLL}
		b, _ := proto.Marshal(tk)
		publishT(t, conn, pipeline.OutMsg{Subject: pipeline.TicketSubject("freshdesk", "acme", id), ID: "t" + tk.UpdatedAt.AsTime().String(), Data: b})
		var got *v1.FieldPrediction
		deadline := time.Now().Add(30 * time.Second)
		for got == nil && time.Now().Before(deadline) {
			_, err := conn.Read(ctx, pipeline.ReadOptions{Stream: pipeline.StreamPredictions, Subject: pipeline.PredictionSubject("freshdesk", "acme", id), Idle: 200 * time.Millisecond}, func(m pipeline.RawMsg) error {
				var p v1.Prediction
				if err := proto.Unmarshal(m.Data, &p); err != nil {
					return err
				}
				for _, f := range p.Fields {
					if f.Field == "group" {
						got = f
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if got == nil || got.Label != "Billing" {
			t.Fatalf("ticket %d: group prediction %v", id, got)
		}
		return got
	}
	waitRevision := func(rev float64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for revision() < rev {
			if time.Now().After(deadline) {
				t.Fatalf("classifier never put policy revision %v in force (at %v)", rev, revision())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// No policy stored: the classifier's AUTOTRIAGE_POLICY is in force.
	if fp := decide(1); fp.Decision != v1.Decision_DECISION_SHADOW {
		t.Fatalf("before: %v %q", fp.Decision, fp.Reason)
	}
	if r := run(t, "policy", "set", "group=sometimes", "--nats", url); r.code != 2 || !strings.Contains(r.stderr, "sometimes") {
		t.Fatalf("invalid policy: %+v", r)
	}
	out := mustRun(t, "policy", "set", "group=apply:0.3", "--nats", url, "--by", "alice")
	if !strings.Contains(out, "policy set (revision 1): group=apply:0.3") {
		t.Fatalf("set: %s", out)
	}
	waitRevision(1)
	if fp := decide(2); fp.Decision != v1.Decision_DECISION_APPLY {
		t.Fatalf("after set: %v %q", fp.Decision, fp.Reason)
	}
	mustRun(t, "policy", "set", "group=apply:0.3,group[Billing]=suggest", "--nats", url, "--by", "bob")
	waitRevision(2)
	if fp := decide(3); fp.Decision != v1.Decision_DECISION_SUGGEST || !strings.Contains(fp.Reason, `class "Billing": suggest mode`) {
		t.Fatalf("after per-class set: %v %q", fp.Decision, fp.Reason)
	}
	if out := mustRun(t, "policy", "set", "group=apply:0.3, group[Billing]=suggest", "--nats", url); !strings.Contains(out, "unchanged") {
		t.Fatalf("same policy again: %s", out)
	}
	if r := run(t, "policy", "set", "group=apply:0.3,group[Biling]=suggest,group[Billing]=suggest", "--nats", url); r.code != 0 || !strings.Contains(r.stderr, "group[Biling]: the promoted model has no such group label") {
		t.Fatalf("typo in a class: %+v", r)
	}

	// `classify` with a registry model decides under the stored policy,
	// not this shell's (empty) AUTOTRIAGE_POLICY.
	var co struct {
		Policy string `json:"policy"`
		Fields []struct {
			Field, Decision string
		} `json:"fields"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "classify", "--json", "--nats", url, "invoice refund: my invoice shows a double charge")), &co); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(co.Policy, "group[Biling]=suggest") {
		t.Fatalf("classify policy %q; want the stored one", co.Policy)
	}

	var view policyView
	if err := json.Unmarshal([]byte(mustRun(t, "policy", "show", "--json", "--nats", url)), &view); err != nil {
		t.Fatal(err)
	}
	if !view.Stored || view.Revision != 3 || view.ChangedBy != "operator:carol" || view.ModelID == "" || len(view.History) != 3 || view.History[2].By != "operator:alice" {
		t.Fatalf("show: %+v", view)
	}
	classes := map[string]triage.ClassStatus{}
	for _, c := range view.Classes {
		classes[c.Field+"/"+c.Label] = c
	}
	if b := classes["group/Billing"]; !b.Own || b.Effective != "suggest" {
		t.Fatalf("Billing: %+v", b)
	}
	if a := classes["group/Access"]; a.Own || a.Effective != "apply" || a.Threshold != 0.3 || a.HeldOutCount == 0 || a.HeldOutCoverage == 0 {
		t.Fatalf("Access: %+v", a)
	}
	text := mustRun(t, "policy", "show", "--nats", url)
	for _, want := range []string{"revision 3, changed by operator:carol", "operator:bob", "group[Billing]=suggest", "suggest (class)", "history (newest first)", "operator:alice"} {
		if !strings.Contains(text, want) {
			t.Errorf("show lacks %q:\n%s", want, text)
		}
	}
}
