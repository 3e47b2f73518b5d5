package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/trainer"
)

// TestTrainerCommandRequestAndDiff: `autotriage trainer` against the
// simulator promotes a first model by itself, handles `train --request`,
// and `models diff` compares its model (with lineage) with one trained by
// `train --promote --force` (without).
func TestTrainerCommandRequestAndDiff(t *testing.T) {
	c, url := pipelineEnv(t)
	simEnv(t, 400)
	t.Setenv("NATS_URL", url)
	t.Setenv("AUTOTRIAGE_DEBUG_ADDR", "127.0.0.1:0")
	t.Setenv("AUTOTRIAGE_TRAINER_HOLDOUT", "72h")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	var tout, terr bytes.Buffer
	go func() { done <- Run(runCtx, []string{"trainer"}, &tout, &terr) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("trainer: %v\n%s", err, terr.String())
		}
	}()

	st, err := modelstore.Open(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var first modelstore.Promotion
	for deadline := time.Now().Add(3 * time.Minute); ; {
		if first, err = st.Promoted(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no model promoted by the trainer: %v\n%s", err, terr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if first.By != "trainer" {
		t.Fatalf("promoted by %q", first.By)
	}

	var req struct{ Revision uint64 }
	if err := json.Unmarshal([]byte(mustRun(t, "train", "--request", "--json", "--nats", url)), &req); err != nil || req.Revision == 0 {
		t.Fatalf("request: %+v %v", req, err)
	}
	kv, err := c.KV(ctx, pipeline.BucketPolicy)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		s, err := trainer.ReadState(ctx, kv)
		if err != nil {
			t.Fatal(err)
		}
		if s.RequestRev >= req.Revision {
			if !strings.HasPrefix(s.LastResult, "unchanged") {
				t.Fatalf("requested run on the same history: %q", s.LastResult)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request not handled: %+v\n%s", s, terr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	mustRun(t, "train", "--from-helpdesk", "--promote", "--force", "--folds", "2", "--nats", url)
	second, err := st.Promoted(ctx)
	if err != nil || second.ID == first.ID {
		t.Fatalf("second model: %+v %v", second, err)
	}
	out := mustRun(t, "models", "diff", first.ID[:12], second.ID[:12], "--nats", url)
	for _, want := range []string{"data window", "none (first model)", "passed vs baseline", "group: accuracy", "holdout n=", "cv n="} {
		if !strings.Contains(out, want) {
			t.Errorf("models diff lacks %q:\n%s", want, out)
		}
	}
	var d modelDiff
	if err := json.Unmarshal([]byte(mustRun(t, "models", "diff", first.ID, second.ID, "--json", "--nats", url)), &d); err != nil {
		t.Fatal(err)
	}
	if d.A.Lineage == nil || d.B.Lineage != nil || d.B.Meta["data_through"] == "" || len(d.Fields) < 3 || len(d.Fields[0].Classes) == 0 {
		t.Fatalf("diff JSON: %+v", d)
	}
	if r := run(t, "train", "--request", "--promote", "--nats", url); r.code != 2 {
		t.Fatalf("--request with --promote: exit %d", r.code)
	}
}
