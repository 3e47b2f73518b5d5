package classify

import "math"

// softmaxInto writes softmax(scores / T) into p.
func softmaxInto(p []float64, scores []float64, invT float64) {
	m := math.Inf(-1)
	for _, s := range scores {
		m = max(m, s*invT)
	}
	var z float64
	for k, s := range scores {
		e := math.Exp(s*invT - m)
		p[k] = e
		z += e
	}
	for k := range p {
		p[k] /= z
	}
}

// fitTemperature finds the T minimising the negative log-likelihood of
// softmax(scores/T) on held-out scores (Guo et al. 2017, "On Calibration of
// Modern Neural Networks"). scores is n×K row-major, y the true classes.
// The objective is convex in 1/T, so a golden-section search over log T is
// exact enough and deterministic.
func fitTemperature(scores []float64, y []int, K int) float64 {
	nll := func(logT float64) float64 {
		invT := math.Exp(-logT)
		var total float64
		for i, c := range y {
			row := scores[i*K : (i+1)*K]
			m := math.Inf(-1)
			for _, s := range row {
				m = max(m, s*invT)
			}
			var z float64
			for _, s := range row {
				z += math.Exp(s*invT - m)
			}
			total += math.Log(z) + m - row[c]*invT
		}
		return total
	}
	lo, hi := math.Log(1e-3), math.Log(1e2)
	const g = 0.6180339887498949
	a, b := hi-g*(hi-lo), lo+g*(hi-lo)
	fa, fb := nll(a), nll(b)
	for range 60 {
		if fa < fb {
			hi, b, fb = b, a, fa
			a = hi - g*(hi-lo)
			fa = nll(a)
		} else {
			lo, a, fa = a, b, fb
			b = lo + g*(hi-lo)
			fb = nll(b)
		}
	}
	return math.Exp((lo + hi) / 2)
}

// fitPlatt fits P(positive | s) = 1/(1+exp(A*s+B)) on held-out scores with
// the Newton method and regularised targets of Lin, Lin and Weng (2007), "A
// note on Platt's probabilistic outputs for support vector machines".
func fitPlatt(scores []float64, pos []bool) (A, B float64) {
	var np, nn float64
	for _, p := range pos {
		if p {
			np++
		} else {
			nn++
		}
	}
	hiT, loT := (np+1)/(np+2), 1/(nn+2)
	t := make([]float64, len(scores))
	for i, p := range pos {
		if p {
			t[i] = hiT
		} else {
			t[i] = loT
		}
	}
	A, B = 0, math.Log((nn+1)/(np+1))
	const sigma = 1e-12
	fval := plattObjective(scores, t, A, B)
	for range 100 {
		var h11, h22, h21, g1, g2 float64 = sigma, sigma, 0, 0, 0
		for i, s := range scores {
			fApB := s*A + B
			var p, q float64
			if fApB >= 0 {
				e := math.Exp(-fApB)
				p, q = e/(1+e), 1/(1+e)
			} else {
				e := math.Exp(fApB)
				p, q = 1/(1+e), e/(1+e)
			}
			d2 := p * q
			h11 += s * s * d2
			h22 += d2
			h21 += s * d2
			d1 := t[i] - p
			g1 += s * d1
			g2 += d1
		}
		if math.Abs(g1) < 1e-5 && math.Abs(g2) < 1e-5 {
			break
		}
		det := h11*h22 - h21*h21
		dA := -(h22*g1 - h21*g2) / det
		dB := -(-h21*g1 + h11*g2) / det
		gd := g1*dA + g2*dB
		step := 1.0
		for step >= 1e-10 {
			nA, nB := A+step*dA, B+step*dB
			nf := plattObjective(scores, t, nA, nB)
			if nf < fval+1e-4*step*gd {
				A, B, fval = nA, nB, nf
				break
			}
			step /= 2
		}
		if step < 1e-10 {
			break
		}
	}
	return A, B
}

func plattObjective(scores, t []float64, A, B float64) float64 {
	var f float64
	for i, s := range scores {
		fApB := s*A + B
		if fApB >= 0 {
			f += t[i]*fApB + math.Log1p(math.Exp(-fApB))
		} else {
			f += (t[i]-1)*fApB + math.Log1p(math.Exp(fApB))
		}
	}
	return f
}

func plattProb(s, A, B float64) float64 {
	fApB := s*A + B
	if fApB >= 0 {
		e := math.Exp(-fApB)
		return e / (1 + e)
	}
	return 1 / (1 + math.Exp(fApB))
}
