package classifier_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/autotriage/autotriage/services/internal/classifier"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/natstest"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/triage"
)

// flakyModels is the real model store whose first loads fail, as when the
// artifact's store has no leader yet.
type flakyModels struct {
	*modelstore.Store
	failures int32
	loads    atomic.Int32
}

func (f *flakyModels) Load(ctx context.Context, id string) ([]byte, modelstore.Info, error) {
	if f.loads.Add(1) <= f.failures {
		return nil, modelstore.Info{}, errors.New("object store not available")
	}
	return f.Store.Load(ctx, id)
}

// A promoted model whose first loads fail is loaded on a later try.
func TestPromotedModelLoadIsRetried(t *testing.T) {
	trainedModels(t)
	ctx := context.Background()
	conn := natstest.Connect(t, natstest.Start(t), pipeline.Topology{})
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
	models := &flakyModels{Store: ms, failures: 2}
	st := classifier.New(classifier.Config{Concurrency: 1}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, models, load, conn)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = st.Run(runCtx, conn) }()
	t.Cleanup(func() { cancel(); <-done })

	if _, err := ms.Put(ctx, idA, "vA", modelA, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Promote(ctx, idA, "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "model A loaded", func() bool { p := st.Predictor(); return p != nil && p.ModelID() == idA })
	if n := models.loads.Load(); n != 3 {
		t.Errorf("%d loads, want the two failures and one success", n)
	}
}
