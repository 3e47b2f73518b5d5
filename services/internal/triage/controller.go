package triage

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	autotriagev1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classify"
)

// Evidence is live precision as agents' verdicts measure it: of the n
// verdicts on the class's values (applied values kept or changed,
// suggestions accepted or rejected), correct were right.
type Evidence interface {
	ClassPrecision(field, label string) (n, correct int)
}

// ModelSource returns the model in use (nil when none is promoted).
type ModelSource func(ctx context.Context) (*classify.Model, error)

// ControllerConfig tunes the demotion controller; zero values take the
// defaults.
type ControllerConfig struct {
	// MinSamples is the fewest verdicts a class is judged on (default 30).
	MinSamples int
	// Z is the normal quantile of the Wilson interval (default 1.96: a 95%
	// interval).
	Z float64
	// Hysteresis is how far above its target a demoted class's lower bound
	// must climb to be promoted, as a fraction of the way from the target
	// to 1 (default 0.25: target 95% promotes at 96.25%).
	Hysteresis float64
}

func (c ControllerConfig) withDefaults() ControllerConfig {
	if c.MinSamples <= 0 {
		c.MinSamples = 30
	}
	if !(c.Z > 0) {
		c.Z = 1.96
	}
	if !(c.Hysteresis > 0) || c.Hysteresis >= 1 {
		c.Hysteresis = 0.25
	}
	return c
}

// Controller demotes classes in apply mode whose live precision is not
// shown to meet their target, and promotes them back once it is. For every
// field and class of the model in use whose policy is Apply, with n
// verdicts of which correct were right, target t and the Wilson interval
// [lo, hi] of correct/n:
//
//   - demote to suggest when n >= MinSamples and either hi < t (clearly
//     below target), or lo < t with n >= z²·t/(1-t): below that many
//     verdicts even a flawless record's lower bound cannot reach t, so the
//     lower-bound rule alone would demote every good class of a demanding
//     target while its evidence is still thin (at p95, 73 verdicts);
//   - promote a demoted class back when lo >= t + Hysteresis·(1-t) (which
//     needs more than the demotion's sample size by itself), so a class
//     hovering at its target does not flap.
//
// The target is the class's target precision for apply:pNN, and for a
// probability threshold the precision the class's held-out predictions
// had at that threshold (what the operator was shown when choosing it); a
// class without held-out predictions there, or whose target precision the
// held-out data did not resolve (it is in suggest anyway), is not judged. A demotion of a
// class that is no longer in apply mode is dropped. Each change is a
// compare-and-set of the policy document, a PolicyChange outcome and a log
// line (Store.Change).
type Controller struct {
	store   *Store
	ev      Evidence
	model   ModelSource
	initial string
	cfg     ControllerConfig
	log     *slog.Logger
}

// NewController judges ev's live precision against the policy in store;
// initial (AUTOTRIAGE_POLICY) is the policy when the document is missing.
func NewController(store *Store, ev Evidence, model ModelSource, initial string, cfg ControllerConfig, log *slog.Logger) *Controller {
	return &Controller{store: store, ev: ev, model: model, initial: initial, cfg: cfg.withDefaults(), log: log}
}

// Evaluate judges every class once and stores the demotions and promotions
// it decides. Its host runs it periodically.
func (c *Controller) Evaluate(ctx context.Context) error {
	m, err := c.model(ctx)
	if err != nil {
		return fmt.Errorf("policy controller: model in use: %w", err)
	}
	if m == nil {
		return nil
	}
	_, _, _, err = c.store.Change(ctx, ByController, c.initial, func(d *Doc) ([]*autotriagev1.PolicyChange, error) {
		return c.judge(m, d)
	})
	if err != nil {
		return fmt.Errorf("policy controller: %w", err)
	}
	return nil
}

// Run evaluates every interval until ctx ends, logging failures (the next
// round retries), for hosts that need nothing more.
func (c *Controller) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := c.Evaluate(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("policy controller round failed; retrying next round", "err", err, "in", every)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Controller) judge(m *classify.Model, d *Doc) ([]*autotriagev1.PolicyChange, error) {
	p, err := ParsePolicy(d.Policy)
	if err != nil {
		return nil, err
	}
	var changes []*autotriagev1.PolicyChange
	kept := d.Demotions[:0]
	for _, dm := range d.Demotions {
		if pol, _ := p.For(dm.Field, dm.Label); pol.Mode != Apply {
			changes = append(changes, &autotriagev1.PolicyChange{Field: dm.Field, Label: dm.Label, From: "suggest (demoted)", To: pol.Mode.String(),
				Reason: "class no longer in apply mode; demotion dropped"})
			continue
		}
		kept = append(kept, dm)
	}
	d.Demotions = kept
	now := c.store.now().UTC()
	for _, fi := range m.Metadata().Fields {
		field := fi.Name
		for _, label := range fi.Labels {
			pol, _ := p.For(field, label)
			if pol.Mode != Apply {
				continue
			}
			target, ok := c.target(m, field, label, pol)
			if !ok {
				continue
			}
			n, correct := c.ev.ClassPrecision(field, label)
			if n <= 0 {
				continue
			}
			correct = max(0, min(correct, n))
			lo, hi := wilson(correct, n, c.cfg.Z)
			_, demoted := d.Demotion(field, label)
			ev := fmt.Sprintf("live precision %d/%d, Wilson lower bound %.3f", correct, n, lo)
			switch {
			case !demoted && n >= c.cfg.MinSamples && (hi < target || (lo < target && n >= c.judgeable(target))):
				why := fmt.Sprintf("%s < target %s", ev, pct(target))
				if hi < target {
					why = fmt.Sprintf("live precision %d/%d, Wilson upper bound %.3f < target %s", correct, n, hi, pct(target))
				}
				d.Demotions = append(d.Demotions, Demotion{Field: field, Label: label, Since: now, Reason: why,
					LowerBound: lo, Target: target, N: n, Correct: correct})
				changes = append(changes, &autotriagev1.PolicyChange{Field: field, Label: label, From: "apply", To: "suggest", Reason: why})
			case demoted && lo >= target+c.cfg.Hysteresis*(1-target):
				d.Demotions = removeDemotion(d.Demotions, field, label)
				changes = append(changes, &autotriagev1.PolicyChange{Field: field, Label: label, From: "suggest", To: "apply",
					Reason: fmt.Sprintf("%s >= %s (target %s plus hysteresis): recovered", ev, pct(target+c.cfg.Hysteresis*(1-target)), pct(target))})
			}
		}
	}
	return changes, nil
}

// judgeable is the fewest verdicts whose flawless record has a Wilson lower
// bound of at least target: n/(n+z²) >= t.
func (c *Controller) judgeable(target float64) int {
	if target >= 1 {
		return math.MaxInt
	}
	z2 := c.cfg.Z * c.cfg.Z
	return int(math.Ceil(z2*target/(1-target) - 1e-9))
}

// target is the precision a class in apply mode must keep live.
func (c *Controller) target(m *classify.Model, field, label string, pol FieldPolicy) (float64, bool) {
	if pol.Probability > 0 {
		prec, n, ok := HeldOutPrecision(m, field, label, pol.Probability)
		return prec, ok && n > 0
	}
	if pol.TargetPrecision > 0 {
		// A class whose target the held-out data did not resolve is in
		// suggest already; its live record does not decide anything.
		return pol.TargetPrecision, ResolveTarget(m, field, label, pol.TargetPrecision).OK
	}
	return 0, false
}

func removeDemotion(ds []Demotion, field, label string) []Demotion {
	out := ds[:0]
	for _, d := range ds {
		if d.Field != field || d.Label != label {
			out = append(out, d)
		}
	}
	return out
}

// wilson is the Wilson score interval of correct/n at normal quantile z;
// [0, 1] without verdicts.
func wilson(correct, n int, z float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	nf := float64(n)
	p := float64(correct) / nf
	z2 := z * z
	den := 1 + z2/nf
	mid := p + z2/(2*nf)
	half := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return max(0, (mid-half)/den), min(1, (mid+half)/den)
}
