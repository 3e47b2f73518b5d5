// Package quality measures autotriage's live precision from what agents do
// with the values it applied or suggested: the FEEDBACK verdicts (and the
// verdicts on OVERRIDE outcomes) in OUTCOMES. A Tracker keeps rolling
// counts per field and model class and per model and field, with a Wilson
// score interval; Follow tails OUTCOMES into one; Collector exports it.
//
// A verdict is correct when the value stood (VERDICT_CONFIRMED: applied and
// still in place at resolution; VERDICT_ACCEPTED: suggested and then set by
// a person) and incorrect when it did not (VERDICT_OVERRIDDEN,
// VERDICT_REJECTED). Precision is correct / n over the verdicts in the
// window.
package quality

import "math"

// DefaultZ is the z of a two-sided 95% interval.
const DefaultZ = 1.96

// Wilson returns the Wilson score interval of correct successes out of n
// at z standard deviations (z <= 0: DefaultZ). With n = 0 nothing is known:
// (0, 1). correct is clamped to [0, n].
//
// Wilson rather than the normal approximation: it stays inside [0, 1] and
// is not degenerate at 0 or n successes, which is where a good class sits
// (precision near 1 on few verdicts).
func Wilson(correct, n int, z float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	if z <= 0 {
		z = DefaultZ
	}
	correct = max(0, min(correct, n))
	nf := float64(n)
	p := float64(correct) / nf
	z2 := z * z
	denom := 1 + z2/nf
	center := p + z2/(2*nf)
	margin := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	lo = (center - margin) / denom
	hi = (center + margin) / denom
	// Exact at the edges (the formula gives them up to rounding).
	if correct == 0 {
		lo = 0
	}
	if correct == n {
		hi = 1
	}
	return max(0, lo), min(1, hi)
}
