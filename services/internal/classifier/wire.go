package classifier

import (
	"context"
	"fmt"

	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/service"
	"github.com/autotriage/autotriage/services/internal/triage"
)

// Build makes a classifier on a process runtime, serving the promoted model
// under the policy stored in KV (policy, AUTOTRIAGE_POLICY, until one is
// stored), which it follows live until ctx ends. Its readiness joins the
// runtime's health checks, and it reports the runtime's pipeline series
// like the writer does. The classifier binary and `autotriage up` both
// start the stage through it.
func Build(ctx context.Context, rt *service.Runtime, cfg Config, policy triage.Policy) (*Stage, error) {
	models, err := modelstore.Open(ctx, rt.Conn)
	if err != nil {
		return nil, err
	}
	kv, err := rt.Conn.KV(ctx, pipeline.BucketPolicy)
	if err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	follower := NewPolicyFollower(kv, policy, rt.Log, rt.Registerer)
	if err := follower.Load(ctx); err != nil {
		rt.Log.Warn("cannot read the stored policy yet; AUTOTRIAGE_POLICY is in force until the watch delivers it", "err", err)
	}
	go follower.Run(ctx)
	live := follower.Live()
	load := func(artifact []byte, info modelstore.Info) (Predictor, error) {
		return triage.LoadLivePredictor(artifact, live, info.Version)
	}
	st := New(cfg, rt.Log, rt.Registerer, models, load, rt.Conn)
	st.pmetrics = rt.Metrics
	rt.Health.Check("model", st.Ready)
	return st, nil
}
