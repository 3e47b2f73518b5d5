package classify

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// The compact class curve answers exactly what the full 201-step curve of
// the class's predictions would.
func TestClassCurveMatchesFullCurve(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		n := rng.IntN(300)
		conf := make([]float64, n)
		correct := make([]bool, n)
		for i := range n {
			conf[i] = rng.Float64()
			if trial%3 == 0 {
				conf[i] = float64(rng.IntN(5)) / 4 // ties on step boundaries
			}
			correct[i] = rng.Float64() < conf[i]
		}
		support := n / 2
		full := precisionCurve(conf, correct, 1, false)
		c := classCurve("x", conf, correct, support)
		for _, target := range []float64{0.5, 0.8, 0.9, 0.95, 1} {
			var want CurvePoint
			wantOK := false
			for _, p := range full {
				if p.Count > 0 && p.Precision >= target {
					want, wantOK = p, true
					break
				}
			}
			got, ok := c.ThresholdForPrecision(target)
			if ok != wantOK || (ok && (got.Threshold != want.Threshold || got.Count != want.Count || got.Precision != want.Precision)) {
				t.Fatalf("trial %d target %v: got %+v %v, want %+v %v", trial, target, got, ok, want, wantOK)
			}
		}
		for s := 0; s <= curveSteps; s++ {
			got, _ := c.At(float64(s) / curveSteps)
			if got.Count != full[s].Count || got.Precision != full[s].Precision {
				t.Fatalf("trial %d step %d: At %+v, full %+v", trial, s, got, full[s])
			}
		}
		if len(c.Steps) > curveSteps+1 {
			t.Fatalf("%d steps", len(c.Steps))
		}
	}
}

// Per-class curves partition the field's predictions, and a report stored
// before they existed still loads (without them).
func TestClassCurvesInReport(t *testing.T) {
	labels := []string{"a", "b", "c"}
	y := []int{0, 0, 1, 2, 2, 2}
	probs := []float64{
		.9, .05, .05,
		.2, .7, .1,
		.1, .8, .1,
		.1, .1, .8,
		.6, .2, .2,
		.3, .3, .4,
	}
	r := singleLabelReport("group", labels, y, probs)
	if len(r.ClassCurves) != 3 {
		t.Fatalf("%d class curves", len(r.ClassCurves))
	}
	total := 0
	for _, l := range labels {
		c := r.Class(l)
		p, _ := c.At(0)
		total += p.Count
	}
	if total != len(y) {
		t.Fatalf("class curves hold %d predictions, want %d", total, len(y))
	}
	if p, _ := r.Class("b").At(0); p.Count != 2 || p.Precision != 0.5 || p.Coverage != 1 {
		t.Fatalf("class b: %+v", p)
	}
	var old FieldReport
	if err := json.Unmarshal([]byte(`{"field":"group","n":6,"curve":[{"threshold":0,"precision":0.5,"coverage":1,"count":6}]}`), &old); err != nil {
		t.Fatal(err)
	}
	if old.Class("a") != nil {
		t.Fatal("a report without class curves gave one")
	}
	tags := multiLabelReport(FieldTags, []string{"x", "y"}, [][]bool{{true, false}, {false, true}}, []float64{.9, .1, .4, .7}, []float64{.5, .5})
	if c := tags.Class("y"); c == nil || c.Support != 1 {
		t.Fatalf("tag curve: %+v", c)
	}
}
