package trainer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/autotriage/autotriage/services/internal/modelstore"
)

// promotedBy marks the trainer's own promotions in the promotion history;
// only those are watched for a rollback.
const promotedBy = "trainer"

// zOneSided is the one-sided 95% normal quantile of the rollback rule.
const zOneSided = 1.645

// Drop is a field on which the promoted model does worse live than its
// predecessor did.
type Drop struct {
	Field            string
	N, Correct       int // the promoted model's live outcomes
	PrevN, PrevRight int // the predecessor's
	Margin           float64
}

func (d Drop) String() string {
	return fmt.Sprintf("%s live precision %.3f (%d/%d) vs the predecessor's %.3f (%d/%d), more than the margin %.3f below",
		d.Field, float64(d.Correct)/float64(d.N), d.Correct, d.N, float64(d.PrevRight)/float64(d.PrevN), d.PrevRight, d.PrevN, d.Margin)
}

// shouldRollBack compares live precision on one field. Both models need
// RollbackMinSample outcomes; the promoted model must then be below its
// predecessor by more than the larger of RollbackMargin and a one-sided 95%
// two-proportion margin (z * the standard error of the difference), so
// neither a handful of outcomes nor the noise of a few hundred moves it.
func (t *Trainer) shouldRollBack(field string, n, c, pn, pc int) (Drop, bool) {
	d := Drop{Field: field, N: n, Correct: c, PrevN: pn, PrevRight: pc}
	if n < t.cfg.RollbackMinSample || pn < t.cfg.RollbackMinSample {
		return d, false
	}
	p, q := float64(c)/float64(n), float64(pc)/float64(pn)
	se := math.Sqrt(p*(1-p)/float64(n) + q*(1-q)/float64(pn))
	d.Margin = max(t.cfg.RollbackMargin, zOneSided*se)
	return d, p < q-d.Margin
}

// CheckRollback compares the live precision of the promoted model, when the
// trainer promoted it, with its predecessor's (the model Rollback would
// return to), per field. On a drop it rolls back, retires the model (the
// trainer never promotes it again), records it in the lineage and OUTCOMES,
// and reports true. A model an operator promoted is left alone.
func (t *Trainer) CheckRollback(ctx context.Context) (bool, error) {
	if t.d.Evidence == nil {
		return false, nil
	}
	cur, err := t.d.Store.Promoted(ctx)
	if errors.Is(err, modelstore.ErrNoModel) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if cur.By != promotedBy {
		// An operator's promotion, or the trainer's own rollback: the
		// model before it may be the one just retired.
		return false, nil
	}
	hist, err := t.d.Store.History(ctx)
	if err != nil {
		return false, err
	}
	prev := ""
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].ID != cur.ID {
			prev = hist[i].ID
			break
		}
	}
	if prev == "" {
		return false, nil // a first model: nothing to go back to
	}
	st, err := ReadState(ctx, t.d.KV)
	if err != nil {
		return false, err
	}
	if slices.Contains(st.Retired, prev) {
		return false, nil // never back to a model live precision already undid
	}
	lin, _, err := LoadLineage(ctx, t.d.Store, cur.ID)
	if err != nil {
		return false, err
	}
	var fields []string
	if lin != nil {
		for _, f := range lin.Gate.Fields {
			fields = append(fields, f.Field)
		}
	}
	if len(fields) == 0 {
		fields = []string{"group", "priority", "type", "tags"}
	}
	var drops []string
	for _, f := range fields {
		n, c := t.d.Evidence.ModelPrecision(cur.ID, f)
		pn, pc := t.d.Evidence.ModelPrecision(prev, f)
		if d, bad := t.shouldRollBack(f, n, c, pn, pc); bad {
			drops = append(drops, d.String())
		}
	}
	if len(drops) == 0 {
		return false, nil
	}
	reason := "live precision fell: " + strings.Join(drops, "; ")
	p, err := t.d.Store.Rollback(ctx, promotedBy+": rollback")
	if err != nil {
		return false, fmt.Errorf("roll back %s: %w", cur.ID, err)
	}
	t.m.rollbacks.Inc()
	t.d.Log.Warn("promotion rolled back", "model", cur.ID, "to", p.ID, "reason", reason)
	if st, err = ReadState(ctx, t.d.KV); err != nil {
		return true, err
	}
	if !slices.Contains(st.Retired, cur.ID) {
		st.Retired = append(st.Retired, cur.ID)
	}
	if err := writeState(ctx, t.d.KV, &st); err != nil {
		return true, err
	}
	if lin != nil {
		lin.Outcome = "rolled_back"
		lin.RolledBackAt = t.d.Now().UTC()
		lin.RollbackReason = reason
		if err := SaveLineage(ctx, t.d.Store, lin); err != nil {
			return true, err
		}
	}
	return true, t.publish(ctx, "rolled_back", cur.ID, cur.Version, p.ID, p.Version, reason)
}
