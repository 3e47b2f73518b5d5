package classifier_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autotriage/autotriage/services/internal/classifier"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/triage"
)

// The follower puts every stored revision in force, keeps the policy in
// force over an unreadable one, and falls back to AUTOTRIAGE_POLICY when
// the document is deleted.
func TestPolicyFollowerFollowsKV(t *testing.T) {
	srv := natstest.Start(t)
	conn := natstest.Connect(t, srv, pipeline.Topology{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv, err := conn.KV(ctx, pipeline.BucketPolicy)
	if err != nil {
		t.Fatal(err)
	}
	initial, _ := triage.ParsePolicy("group=shadow")
	reg := prometheus.NewRegistry()
	f := classifier.NewPolicyFollower(kv, initial, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err := f.Load(ctx); err != nil || f.Revision() != 0 || f.Live().Policy().String() != "group=shadow" {
		t.Fatalf("missing document: %v rev %d %s", err, f.Revision(), f.Live().Policy())
	}
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	defer func() { cancel(); <-done }()

	put := func(d any) uint64 {
		t.Helper()
		b, _ := json.Marshal(d)
		if s, ok := d.(string); ok {
			b = []byte(s)
		}
		rev, err := kv.Put(ctx, triage.PolicyKey, b)
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	inForce := func(want string) {
		t.Helper()
		waitFor(t, "policy "+want, func() bool { return f.Live().Policy().String() == want })
	}
	put(triage.Doc{Policy: "group=apply:0.5", Demotions: []triage.Demotion{{Field: "group", Label: "Billing", Reason: "live precision"}}})
	inForce("group=apply:0.5")
	if why := f.Live().Policy().Demoted["group"]["Billing"]; why != "live precision" {
		t.Fatalf("demotion not in force: %v", f.Live().Policy().Demoted)
	}
	put("not json")
	put(triage.Doc{Policy: "group=maybe"})
	last := put(triage.Doc{Policy: "group=suggest"})
	inForce("group=suggest")
	if f.Revision() != last {
		t.Fatalf("revision %d, want %d", f.Revision(), last)
	}
	if v, ok := gathered(t, reg, "autotriage_classifier_policy_invalid_total", nil); !ok || v != 2 {
		t.Fatalf("invalid revisions counted %v", v)
	}
	if err := kv.Delete(ctx, triage.PolicyKey); err != nil {
		t.Fatal(err)
	}
	inForce("group=shadow")
}
