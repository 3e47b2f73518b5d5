package trainer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	autotriagev1 "github.com/autotriage/autotriage/proto/autotriage/v1"

	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/quality"
	"github.com/autotriage/autotriage/services/internal/triage"
)

// LiveConfig tunes live precision and the policy's reaction to it, which
// the trainer's host runs beside the trainer: both read the same evidence
// (agents' verdicts in OUTCOMES), and both change what the pipeline may do
// (the policy, the model), which is the admin role's to do.
type LiveConfig struct {
	Window     int           `env:"AUTOTRIAGE_PRECISION_WINDOW" envDefault:"200" help:"live precision counts the last N verdicts per field and class (and per model and field)"`
	MaxAge     time.Duration `env:"AUTOTRIAGE_PRECISION_MAX_AGE" envDefault:"720h" help:"verdicts older than this no longer count towards live precision"`
	MinSamples int           `env:"AUTOTRIAGE_POLICY_MIN_SAMPLES" envDefault:"30" help:"fewest verdicts on which live precision may demote or promote a class"`
	Every      time.Duration `env:"AUTOTRIAGE_POLICY_EVALUATE_EVERY" envDefault:"1m" help:"how often live precision is judged against the policy's targets"`
}

// Validate reports settings that cannot work.
func (c LiveConfig) Validate() error {
	switch {
	case c.Window < 1:
		return errors.New("AUTOTRIAGE_PRECISION_WINDOW must be at least 1")
	case c.MaxAge < 0:
		return errors.New("AUTOTRIAGE_PRECISION_MAX_AGE must not be negative")
	case c.MinSamples < 1:
		return errors.New("AUTOTRIAGE_POLICY_MIN_SAMPLES must be at least 1")
	case c.Every < time.Second:
		return errors.New("AUTOTRIAGE_POLICY_EVALUATE_EVERY must be at least 1s")
	}
	return nil
}

// Live is live precision as the trainer's host runs it: a quality.Tracker
// following OUTCOMES (its figures exported as metrics), the policy document
// ensured in KV from AUTOTRIAGE_POLICY, and the demotion controller judging
// the tracker's per-class precision on an interval. The tracker is also the
// trainer's rollback evidence (Deps.Evidence).
type Live struct {
	Tracker *quality.Tracker
	// Policy is the policy document as StartLive found or created it.
	Policy triage.Doc
	wg     sync.WaitGroup
}

// StartLive starts following OUTCOMES and judging the policy until ctx
// ends; Wait waits for both to stop. policy is AUTOTRIAGE_POLICY, the
// document's value when KV has none yet.
func StartLive(ctx context.Context, conn *pipeline.Conn, models *modelstore.Store, cfg LiveConfig, policy string,
	reg prometheus.Registerer, log *slog.Logger) (*Live, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	maxAge := cfg.MaxAge
	if maxAge == 0 {
		maxAge = -1 // no age bound
	}
	tr := quality.NewTracker(quality.Options{Window: cfg.Window, MaxAge: maxAge})
	if reg != nil {
		if err := tr.Register(reg); err != nil {
			return nil, fmt.Errorf("live precision metrics: %w", err)
		}
	}
	kv, err := conn.KV(ctx, pipeline.BucketPolicy)
	if err != nil {
		return nil, fmt.Errorf("live precision: policy bucket: %w", err)
	}
	store := triage.NewStore(kv, conn, log)
	doc, _, err := store.Ensure(ctx, policy, "trainer")
	if err != nil {
		return nil, fmt.Errorf("live precision: policy document: %w", err)
	}
	l := &Live{Tracker: tr, Policy: doc}
	ctrl := triage.NewController(store, tr, promotedModel(models), policy, triage.ControllerConfig{MinSamples: cfg.MinSamples}, log)
	l.wg.Add(3)
	go func() {
		defer l.wg.Done()
		retrainOnCatalogRemovals(ctx, conn, log)
	}()
	go func() {
		defer l.wg.Done()
		if err := quality.Follow(ctx, conn, tr, quality.FollowOptions{Log: log}); err != nil && ctx.Err() == nil {
			log.Error("live precision: following OUTCOMES stopped", "err", err)
		}
	}()
	go func() {
		defer l.wg.Done()
		ctrl.Run(ctx, cfg.Every)
	}()
	return l, nil
}

// retrainOnCatalogRemovals requests a training run when the writer reports
// a label removed from the helpdesk (a CATALOG_CHANGE outcome): the next
// model is trained on the catalog as it is, so it stops predicting the
// label (the writer already never writes it). It reads from now on; a
// removal reported while no trainer ran reaches the model with the next
// scheduled run, which reads the catalog too.
func retrainOnCatalogRemovals(ctx context.Context, conn *pipeline.Conn, log *slog.Logger) {
	for ctx.Err() == nil {
		err := conn.Follow(ctx, pipeline.ReadOptions{Stream: pipeline.StreamOutcomes, Subject: "outcomes.*.*.0", StartTime: time.Now()},
			func(m pipeline.RawMsg) error {
				var o autotriagev1.Outcome
				if err := proto.Unmarshal(m.Data, &o); err != nil {
					return nil // not ours to judge; quality.Follow counts undecodable outcomes
				}
				cc := o.GetCatalogChange()
				if o.GetKind() != autotriagev1.OutcomeKind_OUTCOME_KIND_CATALOG_CHANGE || cc.GetChange() != "removed" {
					return nil
				}
				by := fmt.Sprintf("catalog: %s %q removed from the helpdesk", cc.GetField(), cc.GetLabel())
				if _, err := RequestRun(ctx, conn, by); err != nil {
					log.Error("could not request retraining after a catalog removal", "field", cc.GetField(), "label", cc.GetLabel(), "err", err)
					return nil
				}
				log.Info("retraining requested", "reason", by)
				return nil
			})
		if err != nil && ctx.Err() == nil {
			log.Warn("following catalog changes stopped; following again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}
}

// Wait returns once the goroutines StartLive began have stopped (after its
// ctx ended).
func (l *Live) Wait() { l.wg.Wait() }

// promotedModel loads the promoted model, keeping the last one loaded while
// the promotion does not change (a model is immutable, its id its content).
func promotedModel(st *modelstore.Store) triage.ModelSource {
	var mu sync.Mutex
	var id string
	var m *classify.Model
	return func(ctx context.Context) (*classify.Model, error) {
		p, err := st.Promoted(ctx)
		if errors.Is(err, modelstore.ErrNoModel) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		if p.ID == id && m != nil {
			return m, nil
		}
		b, _, err := st.Load(ctx, p.ID)
		if err != nil {
			return nil, err
		}
		lm, err := classify.Load(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", p.ID, err)
		}
		id, m = p.ID, lm
		return m, nil
	}
}
