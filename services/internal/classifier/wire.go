package classifier

import (
	"context"

	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/service"
	"github.com/autotriage/autotriage/services/internal/triage"
)

// Build makes a classifier on a process runtime, serving the promoted model
// under the given policy. Its readiness joins the runtime's health checks,
// and it reports the runtime's pipeline series like the writer does.
// The classifier binary and `autotriage up` both start the stage through it.
func Build(ctx context.Context, rt *service.Runtime, cfg Config, policy triage.Policy) (*Stage, error) {
	models, err := modelstore.Open(ctx, rt.Conn)
	if err != nil {
		return nil, err
	}
	load := func(artifact []byte, info modelstore.Info) (Predictor, error) {
		return triage.LoadPredictor(artifact, policy, info.Version)
	}
	st := New(cfg, rt.Log, rt.Registerer, models, load, rt.Conn)
	st.pmetrics = rt.Metrics
	rt.Health.Check("model", st.Ready)
	return st, nil
}
