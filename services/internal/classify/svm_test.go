package classify

import (
	"context"
	"slices"
	"testing"
)

// TestOVRGroupingInvariant checks what lets training group classes by the
// number of workers: a problem's solution does not depend on which other
// problems share its solver.
func TestOVRGroupingInvariant(t *testing.T) {
	data := genExamples(400, 5, 0.05)
	tr := &trainer{ctx: context.Background(), opts: TrainOptions{Seed: 3, Features: FeatureOptions{HashBits: 14}}.withDefaults(), ex: data}
	if err := tr.buildFeatures(&Model{}); err != nil {
		t.Fatal(err)
	}
	labels := sortedUnique(func() []string {
		var s []string
		for i := range data {
			s = append(s, data[i].Group)
		}
		return s
	}())
	K := len(labels)
	var rows []int32
	var cw []float64
	var posK []bool
	for i := range data {
		if i%3 == 0 {
			continue
		}
		rows = append(rows, int32(i))
		cw = append(cw, 1+float64(i%2))
		for k := range K {
			posK = append(posK, data[i].Group == labels[k])
		}
	}
	ncol := tr.x.ncol
	for _, loss := range []string{LossLogistic, LossSquaredHinge} {
		solveGroup := func(lo, hi int) []float64 {
			G := hi - lo
			pos := make([]bool, len(rows)*G)
			for a := range rows {
				copy(pos[a*G:(a+1)*G], posK[a*K+lo:a*K+hi])
			}
			s := newOVR(nil, tr.x, rows, G, pos, cw, 3, 11)
			for ci, c := range tr.grid(loss) {
				var err error
				if loss == LossLogistic {
					err = s.solveLR(context.Background(), c, 0.1, 300, uint64(ci))
				} else {
					err = s.solve(context.Background(), c, 0.1, 300, uint64(ci))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			return s.w
		}
		all := solveGroup(0, K)
		for k := range K {
			one := solveGroup(k, k+1)
			got := make([]float64, ncol+1)
			for c := range ncol + 1 {
				got[c] = all[c*K+k]
			}
			if !slices.Equal(got, one) {
				t.Fatalf("%s: class %d solved alone differs from its solution in a group of %d", loss, k, K)
			}
		}
	}
}
