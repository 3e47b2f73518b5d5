package classifier

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/triage"
)

// PolicyKV is the part of the policy bucket (pipeline.BucketPolicy) the
// classifier reads; its role may read the bucket, not write it.
type PolicyKV interface {
	Get(ctx context.Context, key string) (pipeline.Entry, error)
	Watch(ctx context.Context, key string) (<-chan pipeline.Entry, error)
}

// PolicyFollower keeps a triage.Live on the policy document in KV: every
// new revision is in force from the next ticket on. Until the document
// exists (the trainer or `autotriage policy set` creates it) the initial
// policy, AUTOTRIAGE_POLICY, is in force; once it exists it wins, and a
// differing AUTOTRIAGE_POLICY is logged as ignored. A revision that does
// not decode or parse is logged and counted and the policy in force kept;
// a deleted document reverts to the initial policy.
type PolicyFollower struct {
	kv      PolicyKV
	live    *triage.Live
	initial triage.Policy
	log     *slog.Logger

	mu      sync.Mutex
	rev     uint64
	warned  bool
	metrics policyMetrics
}

type policyMetrics struct {
	revision prometheus.Gauge
	invalid  prometheus.Counter
	changes  prometheus.Counter
}

// NewPolicyFollower starts live at initial; reg may be nil.
func NewPolicyFollower(kv PolicyKV, initial triage.Policy, log *slog.Logger, reg prometheus.Registerer) *PolicyFollower {
	f := &PolicyFollower{kv: kv, live: triage.NewLive(initial), initial: initial, log: log}
	f.metrics = policyMetrics{
		revision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "autotriage_classifier_policy_revision",
			Help: "KV revision of the policy document in force (0: AUTOTRIAGE_POLICY, no document yet).",
		}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "autotriage_classifier_policy_invalid_total",
			Help: "Policy document revisions that could not be read and were not put in force.",
		}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "autotriage_classifier_policy_changes_total",
			Help: "Policy revisions put in force without a restart.",
		}),
	}
	if reg != nil {
		reg.MustRegister(f.metrics.revision, f.metrics.invalid, f.metrics.changes)
	}
	return f
}

// Live is the policy in force, for predictors.
func (f *PolicyFollower) Live() *triage.Live { return f.live }

// Revision is the KV revision in force (0 before any document).
func (f *PolicyFollower) Revision() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rev
}

// Load reads the stored document once, so the first ticket is decided
// under it; a missing document keeps the initial policy.
func (f *PolicyFollower) Load(ctx context.Context) error {
	e, err := f.kv.Get(ctx, triage.PolicyKey)
	if errors.Is(err, pipeline.ErrNotFound) {
		f.log.Info("no policy stored in KV yet; AUTOTRIAGE_POLICY is in force", "policy", f.initial.String())
		return nil
	}
	if err != nil {
		return err
	}
	f.apply(e)
	return nil
}

// Run follows the document until ctx ends, watching again after a watch
// ends early (a broker restart).
func (f *PolicyFollower) Run(ctx context.Context) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		ch, err := f.kv.Watch(ctx, triage.PolicyKey)
		if err != nil {
			f.log.Warn("cannot watch the policy; retrying", "err", err, "in", backoff)
		} else {
			for e := range ch {
				f.apply(e)
				backoff = 500 * time.Millisecond
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (f *PolicyFollower) apply(e pipeline.Entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e.Revision <= f.rev {
		return // already in force (the watch replays the current value)
	}
	if e.Deleted {
		f.rev = e.Revision
		f.live.Set(f.initial)
		f.metrics.revision.Set(0)
		f.metrics.changes.Inc()
		f.log.Warn("policy document deleted from KV; AUTOTRIAGE_POLICY is in force again", "policy", f.initial.String())
		return
	}
	d, err := triage.DecodeDoc(e.Value)
	var p triage.Policy
	if err == nil {
		p, err = d.Effective()
	}
	if err != nil {
		f.metrics.invalid.Inc()
		f.log.Error("policy revision not put in force; keeping the current policy", "revision", e.Revision, "err", err)
		return
	}
	first := f.rev == 0
	f.rev = e.Revision
	f.live.Set(p)
	f.metrics.revision.Set(float64(e.Revision))
	f.metrics.changes.Inc()
	if !f.warned {
		triage.IgnoredInitial(f.log, f.initial.String(), d.Policy)
		f.warned = true
	}
	msg := "policy changed"
	if first {
		msg = "policy loaded from KV"
	}
	f.log.Info(msg, "revision", e.Revision, "policy", d.Policy, "demotions", len(d.Demotions), "by", d.ChangedBy, "change", d.Change)
}
