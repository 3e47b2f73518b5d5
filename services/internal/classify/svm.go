package classify

import (
	"context"
	"math"
	"math/rand/v2"
)

// csr is a row-compressed sparse matrix of document vectors.
type csr struct {
	ptr  []int // row i is [ptr[i], ptr[i+1])
	cols []int32
	vals []float32
	ncol int
}

func (m *csr) dot(i int, w []float64) float64 {
	var s float64
	lo, hi := m.ptr[i], m.ptr[i+1]
	cols, vals := m.cols[lo:hi], m.vals[lo:hi]
	for k, c := range cols {
		s += float64(vals[k]) * w[c]
	}
	return s + w[m.ncol] // bias feature of value 1
}

func (m *csr) axpy(i int, a float64, w []float64) {
	lo, hi := m.ptr[i], m.ptr[i+1]
	cols, vals := m.cols[lo:hi], m.vals[lo:hi]
	for k, c := range cols {
		w[c] += a * float64(vals[k])
	}
	w[m.ncol] += a
}

func (m *csr) sqnorm(i int) float64 {
	s := 1.0 // bias
	for _, v := range m.vals[m.ptr[i]:m.ptr[i+1]] {
		s += float64(v) * float64(v)
	}
	return s
}

// binarySVM is the state of one L2-regularised, L2-loss (squared hinge)
// linear SVM solved in the dual by coordinate descent (Hsieh et al. 2008,
// "A Dual Coordinate Descent Method for Large-scale Linear SVM", the
// algorithm of LIBLINEAR's default solver) with shrinking. Keeping alpha
// between calls warm-starts a path of increasing C: the L2-loss dual has no
// upper bound, so the previous solution stays feasible.
type binarySVM struct {
	x     *csr
	rows  []int32   // training rows of x
	y     []float64 // +1 / -1 per training row
	cw    []float64 // per-row cost multiplier (class weights)
	alpha []float64
	w     []float64 // primal weights, len x.ncol+1 (last: bias)
	qd    []float64 // x_i·x_i
	rng   *rand.Rand
	lrC   float64 // cost of the current logistic-regression solution, 0 before
}

func newBinarySVM(x *csr, rows []int32, y, cw []float64, seed1, seed2 uint64) *binarySVM {
	s := &binarySVM{
		x: x, rows: rows, y: y, cw: cw,
		alpha: make([]float64, len(rows)),
		w:     make([]float64, x.ncol+1),
		qd:    make([]float64, len(rows)),
		rng:   rand.New(rand.NewPCG(seed1, seed2)),
	}
	for k, r := range rows {
		s.qd[k] = x.sqnorm(int(r))
	}
	return s
}

// solve optimises for cost C until the projected-gradient spread is below
// eps or maxIter passes were made.
func (s *binarySVM) solve(ctx context.Context, C, eps float64, maxIter int) error {
	n := len(s.rows)
	diag := make([]float64, n)
	for k := range diag {
		diag[k] = 0.5 / (C * s.cw[k])
	}
	index := make([]int32, n)
	for k := range index {
		index[k] = int32(k)
	}
	active := n
	const inf = 1e300
	pgMaxOld, pgMinOld := inf, -inf
	for iter := 0; iter < maxIter; iter++ {
		if iter%8 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		pgMax, pgMin := -inf, inf
		for k := active - 1; k > 0; k-- {
			j := s.rng.IntN(k + 1)
			index[k], index[j] = index[j], index[k]
		}
		for t := 0; t < active; t++ {
			k := index[t]
			r := int(s.rows[k])
			yi := s.y[k]
			a := s.alpha[k]
			g := yi*s.x.dot(r, s.w) - 1 + a*diag[k]
			pg := 0.0
			if a == 0 {
				if g > pgMaxOld {
					active--
					index[t], index[active] = index[active], index[t]
					t--
					continue
				}
				if g < 0 {
					pg = g
				}
			} else {
				pg = g
			}
			pgMax = max(pgMax, pg)
			pgMin = min(pgMin, pg)
			if pg > 1e-12 || pg < -1e-12 {
				na := max(a-g/(s.qd[k]+diag[k]), 0)
				s.alpha[k] = na
				s.x.axpy(r, (na-a)*yi, s.w)
			}
		}
		if pgMax-pgMin <= eps {
			if active == n {
				return nil
			}
			active = n
			pgMaxOld, pgMinOld = inf, -inf
			continue
		}
		pgMaxOld, pgMinOld = pgMax, pgMin
		if pgMaxOld <= 0 {
			pgMaxOld = inf
		}
		if pgMinOld >= 0 {
			pgMinOld = -inf
		}
	}
	return nil
}

// solveLR optimises L2-regularised logistic regression for cost C in the
// dual by coordinate descent with a Newton step per coordinate (Yu, Huang
// and Lin 2011, "Dual coordinate descent methods for logistic regression
// and maximum entropy models"). The dual variables live strictly inside
// (0, C·cw); a previous solution for another cost is rescaled into the new
// box, which keeps it feasible and warm.
func (s *binarySVM) solveLR(ctx context.Context, C, eps float64, maxIter int) error {
	n := len(s.rows)
	ub := make([]float64, n)
	for k := range ub {
		ub[k] = C * s.cw[k]
	}
	if s.lrC == 0 {
		for k := range s.alpha {
			s.alpha[k] = min(0.001*ub[k], 1e-8)
		}
		clear(s.w)
		for k, r := range s.rows {
			s.x.axpy(int(r), s.y[k]*s.alpha[k], s.w)
		}
	} else if s.lrC != C {
		f := C / s.lrC
		for k := range s.alpha {
			s.alpha[k] *= f
		}
		for j := range s.w {
			s.w[j] *= f
		}
	}
	s.lrC = C
	index := make([]int32, n)
	for k := range index {
		index[k] = int32(k)
	}
	innerEps := 1e-2
	const innerEpsMin = 1e-8
	const maxInner = 100
	for iter := 0; iter < maxIter; iter++ {
		if iter%8 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		for k := n - 1; k > 0; k-- {
			j := s.rng.IntN(k + 1)
			index[k], index[j] = index[j], index[k]
		}
		newtonIter := 0
		gmax := 0.0
		for _, k := range index {
			r := int(s.rows[k])
			yi := s.y[k]
			c := ub[k]
			a := s.qd[k]
			b := yi * s.x.dot(r, s.w)
			// alpha1 = alpha[k], alpha2 = c - alpha[k]; work on whichever
			// the gradient moves away from its bound.
			a1 := s.alpha[k]
			a2 := c - a1
			sign := 1.0
			zOld := a1
			if 0.5*a*(a2-a1)+b < 0 {
				sign = -1
				zOld = a2
			}
			z := zOld
			if c-z < 0.5*c {
				z *= 0.1
			}
			gp := a*(z-zOld) + sign*b + math.Log(z/(c-z))
			gmax = max(gmax, math.Abs(gp))
			inner := 0
			for inner <= maxInner {
				if math.Abs(gp) < innerEps {
					break
				}
				gpp := a + c/(c-z)/z
				tz := z - gp/gpp
				if tz <= 0 {
					z *= 0.1
				} else {
					z = tz
				}
				gp = a*(z-zOld) + sign*b + math.Log(z/(c-z))
				newtonIter++
				inner++
			}
			if inner > 0 {
				var na float64
				if sign > 0 {
					na = z
				} else {
					na = c - z
				}
				s.x.axpy(r, (na-a1)*yi, s.w)
				s.alpha[k] = na
			}
		}
		if gmax < eps {
			break
		}
		if newtonIter <= n/10 {
			innerEps = max(innerEpsMin, 0.1*innerEps)
		}
	}
	return nil
}
