package trainer

import (
	"math/rand/v2"
	"testing"
)

// The paired bootstrap calls two equally good scorers the same even when
// they disagree on many tickets, and a scorer wrong on a tenth more of
// 300 tickets worse; too few tickets are not judged.
func TestPairedBootstrap(t *testing.T) {
	o := GateOptions{Seed: 1}.withDefaults()
	rng := rand.New(rand.NewPCG(1, 2))
	n := 300
	a, b, c := make([]int8, n), make([]int8, n), make([]int8, n)
	for i := range n {
		a[i] = b2i(i%10 < 8)     // 80%
		b[i] = b2i((i+5)%10 < 8) // 80%, disagreeing with a on 40% of tickets
		c[i] = b2i(i%10 < 7)     // 70%, always wrong where a is
	}
	if fg := pairedBootstrap("group", b, a, o, rng); fg.Verdict != "same" || fg.Lo > 0 || fg.Hi < 0 {
		t.Errorf("equal scorers: %+v", fg)
	}
	if fg := pairedBootstrap("group", c, a, o, rng); fg.Verdict != "worse" || fg.Hi >= 0 || fg.Diff > -0.09 {
		t.Errorf("worse scorer: %+v", fg)
	}
	if fg := pairedBootstrap("group", a, c, o, rng); fg.Verdict != "better" {
		t.Errorf("better scorer: %+v", fg)
	}
	if fg := pairedBootstrap("group", c[:10], a[:10], o, rng); fg.Verdict != "unjudged" {
		t.Errorf("10 tickets: %+v", fg)
	}
}

// The rollback needs both samples and a drop beyond the larger of the
// fixed and the statistical margin.
func TestShouldRollBack(t *testing.T) {
	tr := &Trainer{cfg: DefaultConfig()}
	for _, c := range []struct {
		n, c, pn, pc int
		want         bool
	}{
		{40, 10, 400, 380, false},      // too few outcomes of the new model
		{200, 150, 300, 280, true},     // 75% vs 93%
		{200, 180, 300, 280, false},    // 90% vs 93%: within noise
		{2000, 1780, 3000, 2790, true}, // 89% vs 93% on large samples: the 2-point margin binds
	} {
		_, got := tr.shouldRollBack("group", c.n, c.c, c.pn, c.pc)
		if got != c.want {
			t.Errorf("%+v: rollback %v", c, got)
		}
	}
}
