package classify

import (
	"math"
	"sort"
)

// ClassCurve is the coverage–precision curve of one class's held-out
// predictions: for a single-label field the tickets whose top label is the
// class, for tags every ticket's probability of the tag. It is what a
// target precision ("apply:p95") is resolved against per class, so a class
// the model confuses more than others gets a higher threshold (or none).
//
// It is stored compactly (models carry one per class): Steps are threshold
// steps of 1/200 in confidence, ascending, and Counts and Hits the class's
// predictions at or above each step and the correct ones. Only the lowest
// step of each run of equal counts is kept, plus the first step with no
// prediction left, which loses nothing: the lowest threshold reaching a
// precision is always the lowest step of its run.
type ClassCurve struct {
	Label string `json:"label"`
	// Support is the held-out examples of the class (coverage's
	// denominator: coverage is the class's recall at the threshold).
	Support int   `json:"support"`
	Steps   []int `json:"steps"`
	Counts  []int `json:"counts"`
	Hits    []int `json:"hits"`
}

// Class returns the held-out curve of one class, nil when the report has
// none (artifacts trained before per-class curves, or an unknown label).
func (r *FieldReport) Class(label string) *ClassCurve {
	if r == nil {
		return nil
	}
	for i := range r.ClassCurves {
		if r.ClassCurves[i].Label == label {
			return &r.ClassCurves[i]
		}
	}
	return nil
}

func (c *ClassCurve) point(i int) CurvePoint {
	p := CurvePoint{Threshold: float64(c.Steps[i]) / curveSteps, Count: c.Counts[i]}
	if c.Counts[i] > 0 {
		p.Precision = float64(c.Hits[i]) / float64(c.Counts[i])
	}
	if c.Support > 0 {
		p.Coverage = float64(c.Hits[i]) / float64(c.Support)
	}
	return p
}

// valid reports whether the stored arrays agree (a hand-edited or foreign
// artifact could break them; a broken curve is treated as absent).
func (c *ClassCurve) valid() bool {
	return c != nil && len(c.Steps) == len(c.Counts) && len(c.Steps) == len(c.Hits)
}

// Points expands the curve, lowest threshold first.
func (c *ClassCurve) Points() []CurvePoint {
	if !c.valid() {
		return nil
	}
	out := make([]CurvePoint, len(c.Steps))
	for i := range c.Steps {
		out[i] = c.point(i)
	}
	return out
}

// ThresholdForPrecision returns the point at the lowest threshold whose
// predictions of the class were at least target precise; ok is false when
// no threshold with predictions reaches it. The point's Count is the
// held-out evidence behind the threshold.
func (c *ClassCurve) ThresholdForPrecision(target float64) (CurvePoint, bool) {
	if !c.valid() {
		return CurvePoint{}, false
	}
	for i := range c.Steps {
		if p := c.point(i); p.Count > 0 && p.Precision >= target {
			return p, true
		}
	}
	return CurvePoint{}, false
}

// At returns how the class's predictions with confidence >= threshold
// fared, resolved to the curve's step at or below threshold (steps are
// 1/200 apart); ok is false without a curve.
func (c *ClassCurve) At(threshold float64) (CurvePoint, bool) {
	if !c.valid() || len(c.Steps) == 0 {
		return CurvePoint{}, false
	}
	s := int(math.Floor(threshold*curveSteps + 1e-9))
	i := sort.Search(len(c.Steps), func(i int) bool { return c.Steps[i] > s }) - 1
	if i < 0 {
		i = 0
	}
	return c.point(i), true
}

// At returns the field curve's point at the step at or below threshold.
func (r *FieldReport) At(threshold float64) (CurvePoint, bool) {
	if r == nil || len(r.Curve) == 0 {
		return CurvePoint{}, false
	}
	s := int(math.Floor(threshold*curveSteps + 1e-9))
	s = max(0, min(s, len(r.Curve)-1))
	return r.Curve[s], true
}

// classCurve builds the compact curve of one class from its predictions'
// confidences and correctness.
func classCurve(label string, conf []float64, correct []bool, support int) ClassCurve {
	// Bucket each prediction at the highest step it clears (conf >= s/200,
	// exactly as precisionCurve compares), then accumulate from the top:
	// linear in the predictions, where a sort per class was not.
	var counts, hits [curveSteps + 1]int
	for i, c := range conf {
		if !(c >= 0) {
			continue // NaN or negative: clears no step
		}
		b := min(int(c*curveSteps), curveSteps)
		for b < curveSteps && c >= float64(b+1)/curveSteps {
			b++
		}
		for b > 0 && c < float64(b)/curveSteps {
			b--
		}
		counts[b]++
		if correct[i] {
			hits[b]++
		}
	}
	for s := curveSteps - 1; s >= 0; s-- {
		counts[s] += counts[s+1]
		hits[s] += hits[s+1]
	}
	c := ClassCurve{Label: label, Support: support}
	for s := 0; s <= curveSteps; s++ {
		if s > 0 && counts[s] == counts[s-1] {
			continue
		}
		c.Steps = append(c.Steps, s)
		c.Counts = append(c.Counts, counts[s])
		c.Hits = append(c.Hits, hits[s])
		if counts[s] == 0 {
			break
		}
	}
	return c
}

// singleLabelClassCurves groups top-1 predictions by predicted class.
func singleLabelClassCurves(labels []string, y []int, pred []int, top []float64) []ClassCurve {
	K := len(labels)
	conf := make([][]float64, K)
	correct := make([][]bool, K)
	support := make([]int, K)
	for i, c := range y {
		support[c]++
		b := pred[i]
		conf[b] = append(conf[b], top[i])
		correct[b] = append(correct[b], b == c)
	}
	out := make([]ClassCurve, K)
	for k := range K {
		out[k] = classCurve(labels[k], conf[k], correct[k], support[k])
	}
	return out
}

// tagClassCurves is one curve per tag over every ticket's probability of it.
func tagClassCurves(labels []string, truth [][]bool, probs []float64) []ClassCurve {
	K := len(labels)
	n := len(truth)
	out := make([]ClassCurve, K)
	conf := make([]float64, n)
	correct := make([]bool, n)
	for k := range K {
		support := 0
		for i := range n {
			conf[i] = probs[i*K+k]
			correct[i] = truth[i][k]
			if correct[i] {
				support++
			}
		}
		out[k] = classCurve(labels[k], conf, correct, support)
	}
	return out
}
