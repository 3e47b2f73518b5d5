package classify

import (
	"math"
	"sort"
)

// ClassReport is the held-out quality of one label.
type ClassReport struct {
	Label     string  `json:"label"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`
}

// ReliabilityBin is one equal-width confidence bin of a reliability diagram.
type ReliabilityBin struct {
	Lo         float64 `json:"lo"`
	Hi         float64 `json:"hi"`
	Count      int     `json:"count"`
	Confidence float64 `json:"confidence"` // mean confidence in the bin
	Accuracy   float64 `json:"accuracy"`   // fraction correct in the bin
}

// CurvePoint says how the predictions with confidence >= Threshold fared:
// their Precision and the Coverage they represent (fraction of tickets for
// single-label fields; for tags, fraction of true tags found).
type CurvePoint struct {
	Threshold float64 `json:"threshold"`
	Precision float64 `json:"precision"`
	Coverage  float64 `json:"coverage"`
	Count     int     `json:"count"`
}

// FieldReport is the quality of one field's predictions on labelled
// tickets. For single-label fields, confidence is the top-1 calibrated
// probability; for tags, every (ticket, tag) probability is a prediction,
// Accuracy is exact-set match and the curve and ECE are over tag decisions.
type FieldReport struct {
	Field       string           `json:"field"`
	MultiLabel  bool             `json:"multi_label,omitempty"`
	N           int              `json:"n"`
	Accuracy    float64          `json:"accuracy"`
	MacroF1     float64          `json:"macro_f1"`
	MicroF1     float64          `json:"micro_f1,omitempty"`
	ECE         float64          `json:"ece"`
	Classes     []ClassReport    `json:"classes"`
	Confusion   [][]int          `json:"confusion,omitempty"` // [true][predicted], label order of Classes
	Reliability []ReliabilityBin `json:"reliability"`
	Curve       []CurvePoint     `json:"curve"`
	// ClassCurves holds one curve per label (order of Classes); absent in
	// artifacts trained before it, where callers fall back to Curve.
	ClassCurves []ClassCurve `json:"class_curves,omitempty"`
}

// Report holds the per-field quality of a model on a labelled set.
type Report struct {
	Fields []*FieldReport `json:"fields"`
}

// Field returns the report of a field, nil when absent.
func (r *Report) Field(name string) *FieldReport {
	if r == nil {
		return nil
	}
	for _, f := range r.Fields {
		if f.Field == name {
			return f
		}
	}
	return nil
}

// eceBins is the number of equal-width bins of the expected calibration error.
const eceBins = 15

// curveSteps is the resolution of the coverage-at-precision curve (steps of
// 0.005 in confidence).
const curveSteps = 200

// ThresholdForPrecision returns the lowest confidence threshold at which the
// held-out predictions at or above it were at least target precise, and the
// coverage at that threshold; ok is false when no threshold reaches target
// (the field should then not be applied automatically).
func (r *FieldReport) ThresholdForPrecision(target float64) (threshold, coverage float64, ok bool) {
	if r == nil {
		return 0, 0, false
	}
	for _, p := range r.Curve {
		if p.Count > 0 && p.Precision >= target {
			return p.Threshold, p.Coverage, true
		}
	}
	return 0, 0, false
}

// CoverageAtPrecision is the coverage of ThresholdForPrecision, 0 when the
// target is not reached.
func (r *FieldReport) CoverageAtPrecision(target float64) float64 {
	_, c, ok := r.ThresholdForPrecision(target)
	if !ok {
		return 0
	}
	return c
}

// singleLabelReport scores top-1 predictions: probs is n×K row-major.
func singleLabelReport(field string, labels []string, y []int, probs []float64) *FieldReport {
	K := len(labels)
	n := len(y)
	r := &FieldReport{Field: field, N: n}
	conf := make([][]int, K)
	for i := range conf {
		conf[i] = make([]int, K)
	}
	top := make([]float64, n)
	pred := make([]int, n)
	correct := make([]bool, n)
	hits := 0
	for i, c := range y {
		row := probs[i*K : (i+1)*K]
		best := 0
		for k := 1; k < K; k++ {
			if row[k] > row[best] {
				best = k
			}
		}
		conf[c][best]++
		top[i] = row[best]
		pred[i] = best
		correct[i] = best == c
		if correct[i] {
			hits++
		}
	}
	r.Confusion = conf
	if n > 0 {
		r.Accuracy = float64(hits) / float64(n)
	}
	r.Classes, r.MacroF1 = classReports(labels, conf)
	r.Reliability, r.ECE = reliability(top, correct)
	r.Curve = precisionCurve(top, correct, n, false)
	r.ClassCurves = singleLabelClassCurves(labels, y, pred, top)
	return r
}

func classReports(labels []string, conf [][]int) ([]ClassReport, float64) {
	K := len(labels)
	out := make([]ClassReport, K)
	var sumF1 float64
	present := 0
	for k := range K {
		tp := conf[k][k]
		var predicted, support int
		for j := range K {
			predicted += conf[j][k]
			support += conf[k][j]
		}
		cr := prf(labels[k], tp, predicted, support)
		out[k] = cr
		if support > 0 || predicted > 0 {
			sumF1 += cr.F1
			present++
		}
	}
	if present == 0 {
		return out, 0
	}
	return out, sumF1 / float64(present)
}

func prf(label string, tp, predicted, support int) ClassReport {
	cr := ClassReport{Label: label, Support: support}
	if predicted > 0 {
		cr.Precision = float64(tp) / float64(predicted)
	}
	if support > 0 {
		cr.Recall = float64(tp) / float64(support)
	}
	if cr.Precision+cr.Recall > 0 {
		cr.F1 = 2 * cr.Precision * cr.Recall / (cr.Precision + cr.Recall)
	}
	return cr
}

// reliability bins confidences into eceBins equal-width bins and returns
// them with the expected calibration error.
func reliability(conf []float64, correct []bool) ([]ReliabilityBin, float64) {
	bins := make([]ReliabilityBin, eceBins)
	for b := range bins {
		bins[b].Lo = float64(b) / eceBins
		bins[b].Hi = float64(b+1) / eceBins
	}
	for i, c := range conf {
		b := min(int(c*eceBins), eceBins-1)
		b = max(b, 0)
		bins[b].Count++
		bins[b].Confidence += c
		if correct[i] {
			bins[b].Accuracy++
		}
	}
	var ece float64
	for b := range bins {
		if bins[b].Count == 0 {
			continue
		}
		cnt := float64(bins[b].Count)
		bins[b].Confidence /= cnt
		bins[b].Accuracy /= cnt
		ece += cnt / float64(len(conf)) * math.Abs(bins[b].Accuracy-bins[b].Confidence)
	}
	return bins, ece
}

// precisionCurve evaluates thresholds 0, 0.005, ..., 1: precision of the
// predictions with confidence >= t, and as coverage either their count
// (recall false) or their correct count (recall true) relative to denom.
func precisionCurve(conf []float64, correct []bool, denom int, recall bool) []CurvePoint {
	idx := make([]int, len(conf))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return conf[idx[a]] > conf[idx[b]] })
	out := make([]CurvePoint, curveSteps+1)
	pos, hits := 0, 0
	for s := curveSteps; s >= 0; s-- {
		t := float64(s) / curveSteps
		for pos < len(idx) && conf[idx[pos]] >= t {
			if correct[idx[pos]] {
				hits++
			}
			pos++
		}
		p := CurvePoint{Threshold: t, Count: pos}
		if pos > 0 {
			p.Precision = float64(hits) / float64(pos)
		}
		if denom > 0 {
			if recall {
				p.Coverage = float64(hits) / float64(denom)
			} else {
				p.Coverage = float64(pos) / float64(denom)
			}
		}
		out[s] = p
	}
	return out
}

// multiLabelReport scores tag predictions: probs is n×K, truth[i][k] whether
// ticket i has tag k, thresholds the per-tag decision thresholds.
func multiLabelReport(field string, labels []string, truth [][]bool, probs []float64, thresholds []float64) *FieldReport {
	K := len(labels)
	n := len(truth)
	r := &FieldReport{Field: field, MultiLabel: true, N: n}
	tp := make([]int, K)
	predicted := make([]int, K)
	support := make([]int, K)
	exact := 0
	var conf []float64
	var correct []bool
	totalTrue := 0
	for i := range n {
		same := true
		for k := range K {
			p := probs[i*K+k]
			on := p >= thresholds[k]
			t := truth[i][k]
			if t {
				support[k]++
				totalTrue++
			}
			if on {
				predicted[k]++
				if t {
					tp[k]++
				}
			}
			if on != t {
				same = false
			}
			conf = append(conf, p)
			correct = append(correct, t)
		}
		if same {
			exact++
		}
	}
	if n > 0 {
		r.Accuracy = float64(exact) / float64(n)
	}
	var sumF1 float64
	var stp, spred, ssup int
	for k := range K {
		cr := prf(labels[k], tp[k], predicted[k], support[k])
		r.Classes = append(r.Classes, cr)
		sumF1 += cr.F1
		stp += tp[k]
		spred += predicted[k]
		ssup += support[k]
	}
	if K > 0 {
		r.MacroF1 = sumF1 / float64(K)
	}
	r.MicroF1 = prf("", stp, spred, ssup).F1
	// Calibration of the per-tag probabilities as binary forecasts.
	r.Reliability, r.ECE = reliability(conf, correct)
	r.Curve = precisionCurve(conf, correct, totalTrue, true)
	r.ClassCurves = tagClassCurves(labels, truth, probs)
	return r
}
