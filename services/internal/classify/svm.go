package classify

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
)

// csr is a row-compressed sparse matrix of document vectors.
type csr struct {
	ptr  []int // row i is [ptr[i], ptr[i+1])
	cols []int32
	vals []float32
	ncol int
}

func (m *csr) sqnorm(i int) float64 {
	s := 1.0 // bias
	for _, v := range m.vals[m.ptr[i]:m.ptr[i+1]] {
		s += float64(v) * float64(v)
	}
	return s
}

// ovrSolver solves G one-vs-rest binary problems on the same training rows
// together: L2-regularised linear SVMs (squared hinge) or logistic
// regressions, each in the dual by coordinate descent. The G weight vectors
// are interleaved by feature (w[c*G+g]), so a sweep reads each row once and
// touches one contiguous run of weights per non-zero for all G problems,
// instead of G scattered reads; on text data the solvers are bound by those
// memory accesses.
//
// The problems do not interact: each has its own dual variables, weights,
// shrinking state and stopping test, and all visit the rows in the same
// order, a permutation drawn per pass from a stream that depends only on
// the seed and the solve. A problem's solution is therefore the same
// whichever other problems share its group, so callers may group classes
// by the number of workers without changing the model. (Adding a zero
// update to a weight leaves it unchanged, weights are never -0.)
type ovrSolver struct {
	x     *csr
	rows  []int32   // training rows of x
	G     int       // problems
	pos   []bool    // n×G: row is a positive example of problem g
	cw    []float64 // per-row cost multiplier (class weights)
	alpha []float64 // n×G dual variables
	w     []float64 // (ncol+1)×G primal weights, bias last
	qd    []float64 // x_i·x_i (bias included)
	seed1 uint64
	seed2 uint64
	bufs  *f64Pool
	lrC   float64 // cost of the current logistic-regression solution, 0 before
	d     []float64
	delta []float64
	index []int32
}

func newOVR(bufs *f64Pool, x *csr, rows []int32, G int, pos []bool, cw []float64, seed1, seed2 uint64) *ovrSolver {
	s := &ovrSolver{
		x: x, rows: rows, G: G, pos: pos, cw: cw,
		bufs:  bufs,
		alpha: bufs.get(len(rows) * G),
		w:     bufs.get((x.ncol + 1) * G),
		qd:    bufs.get(len(rows)),
		seed1: seed1, seed2: seed2,
		d:     make([]float64, G),
		delta: make([]float64, G),
		index: make([]int32, len(rows)),
	}
	for k, r := range rows {
		s.qd[k] = x.sqnorm(int(r))
	}
	return s
}

// release hands the solver's buffers back to its pool, the weights too
// when withWeights; the solver must not be used afterwards.
func (s *ovrSolver) release(withWeights bool) {
	s.bufs.put(s.alpha)
	s.bufs.put(s.qd)
	if withWeights {
		s.bufs.put(s.w)
	}
	s.alpha, s.qd, s.w = nil, nil, nil
}

// f64Pool recycles the large float64 buffers of the solvers (weights,
// duals) between the jobs of a training: each cross-validation job would
// otherwise leave tens of megabytes of garbage, which, while the training
// matrix is live, the garbage collector lets pile up to the size of the
// matrix before it collects. A nil pool allocates.
type f64Pool struct {
	mu   sync.Mutex
	free [][]float64
}

// get returns a zeroed slice of length n, from the smallest free buffer
// large enough.
func (p *f64Pool) get(n int) []float64 {
	if p == nil {
		return make([]float64, n)
	}
	p.mu.Lock()
	best := -1
	for i, b := range p.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(p.free[best])) {
			best = i
		}
	}
	var b []float64
	if best >= 0 {
		b = p.free[best][:n]
		p.free = slices.Delete(p.free, best, best+1)
	}
	p.mu.Unlock()
	if b == nil {
		return make([]float64, n)
	}
	clear(b)
	return b
}

// put hands b back; the caller must not use it afterwards.
func (p *f64Pool) put(b []float64) {
	if p == nil || cap(b) == 0 {
		return
	}
	p.mu.Lock()
	p.free = append(p.free, b)
	p.mu.Unlock()
}

// warm starts from the dual variables alpha (n×G), feasible for the loss
// at cost C: the weights are rebuilt from them.
func (s *ovrSolver) warm(alpha []float64, logistic bool, C float64) {
	copy(s.alpha, alpha)
	clear(s.w)
	G := s.G
	for i, r := range s.rows {
		for g := range G {
			s.delta[g] = s.y(i, g) * s.alpha[i*G+g]
		}
		s.update(int(r), s.delta)
	}
	if logistic {
		s.lrC = C
	}
}

// scores writes the G decision values of row r of x into out. When live is
// not nil, blocks of problems none of which is live may be skipped (their
// outputs are then stale).
func (s *ovrSolver) scores(r int, out []float64, live []bool) {
	G := s.G
	m := s.x
	lo, hi := m.ptr[r], m.ptr[r+1]
	cols, vals := m.cols[lo:hi], m.vals[lo:hi]
	out = out[:G]
	clear(out)
	w := s.w
	if G == 1 {
		var t float64
		for k, c := range cols {
			t += float64(vals[k]) * w[c]
		}
		out[0] = t + w[m.ncol]
		return
	}
	// Eight or four problems at a time, accumulated in registers.
	g0 := 0
	for ; g0+8 <= G; g0 += 8 {
		if live != nil && !anyTrue(live[g0:g0+8]) {
			continue
		}
		var s0, s1, s2, s3, s4, s5, s6, s7 float64
		for k, c := range cols {
			v := float64(vals[k])
			o := int(c)*G + g0
			wc := w[o : o+8 : o+8]
			s0 += v * wc[0]
			s1 += v * wc[1]
			s2 += v * wc[2]
			s3 += v * wc[3]
			s4 += v * wc[4]
			s5 += v * wc[5]
			s6 += v * wc[6]
			s7 += v * wc[7]
		}
		out[g0], out[g0+1], out[g0+2], out[g0+3] = s0, s1, s2, s3
		out[g0+4], out[g0+5], out[g0+6], out[g0+7] = s4, s5, s6, s7
	}
	for ; g0+4 <= G; g0 += 4 {
		if live != nil && !anyTrue(live[g0:g0+4]) {
			continue
		}
		var s0, s1, s2, s3 float64
		for k, c := range cols {
			v := float64(vals[k])
			o := int(c)*G + g0
			wc := w[o : o+4 : o+4]
			s0 += v * wc[0]
			s1 += v * wc[1]
			s2 += v * wc[2]
			s3 += v * wc[3]
		}
		out[g0], out[g0+1], out[g0+2], out[g0+3] = s0, s1, s2, s3
	}
	for ; g0 < G; g0++ {
		if live != nil && !live[g0] {
			continue
		}
		var t float64
		for k, c := range cols {
			t += float64(vals[k]) * w[int(c)*G+g0]
		}
		out[g0] = t
	}
	o := m.ncol * G
	for g, wv := range w[o : o+G : o+G] {
		out[g] += wv
	}
}

func anyTrue(b []bool) bool {
	for _, v := range b {
		if v {
			return true
		}
	}
	return false
}

// update adds delta[g]·x_r to the weights of every problem g.
func (s *ovrSolver) update(r int, delta []float64) {
	G := s.G
	m := s.x
	lo, hi := m.ptr[r], m.ptr[r+1]
	cols, vals := m.cols[lo:hi], m.vals[lo:hi]
	delta = delta[:G]
	w := s.w
	if G == 1 {
		a := delta[0]
		for k, c := range cols {
			w[c] += a * float64(vals[k])
		}
		w[m.ncol] += a
		return
	}
	g0 := 0
	for ; g0+8 <= G; g0 += 8 {
		d := delta[g0 : g0+8 : g0+8]
		if d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 0 && d[4] == 0 && d[5] == 0 && d[6] == 0 && d[7] == 0 {
			continue
		}
		d0, d1, d2, d3, d4, d5, d6, d7 := d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
		for k, c := range cols {
			v := float64(vals[k])
			o := int(c)*G + g0
			wc := w[o : o+8 : o+8]
			wc[0] += d0 * v
			wc[1] += d1 * v
			wc[2] += d2 * v
			wc[3] += d3 * v
			wc[4] += d4 * v
			wc[5] += d5 * v
			wc[6] += d6 * v
			wc[7] += d7 * v
		}
	}
	for ; g0+4 <= G; g0 += 4 {
		d0, d1, d2, d3 := delta[g0], delta[g0+1], delta[g0+2], delta[g0+3]
		if d0 == 0 && d1 == 0 && d2 == 0 && d3 == 0 {
			continue
		}
		for k, c := range cols {
			v := float64(vals[k])
			o := int(c)*G + g0
			wc := w[o : o+4 : o+4]
			wc[0] += d0 * v
			wc[1] += d1 * v
			wc[2] += d2 * v
			wc[3] += d3 * v
		}
	}
	for ; g0 < G; g0++ {
		a := delta[g0]
		if a == 0 {
			continue
		}
		for k, c := range cols {
			w[int(c)*G+g0] += a * float64(vals[k])
		}
	}
	o := m.ncol * G
	wc := w[o : o+G : o+G]
	for g, dv := range delta {
		wc[g] += dv
	}
}

// shuffle draws the next visiting order.
func (s *ovrSolver) shuffle(rng *rand.Rand) {
	for k := range s.index {
		s.index[k] = int32(k)
	}
	for k := len(s.index) - 1; k > 0; k-- {
		j := rng.IntN(k + 1)
		s.index[k], s.index[j] = s.index[j], s.index[k]
	}
}

func (s *ovrSolver) y(i, g int) float64 {
	if s.pos[i*s.G+g] {
		return 1
	}
	return -1
}

// solve optimises the squared-hinge SVMs for cost C (Hsieh et al. 2008, "A
// Dual Coordinate Descent Method for Large-scale Linear SVM", LIBLINEAR's
// default solver, with its shrinking) until each problem's projected-
// gradient spread is below eps or maxIter passes were made. step numbers
// the solves of a cost path (it picks the random stream). The L2-loss dual
// has no upper bound, so a previous solution warm-starts a larger C.
func (s *ovrSolver) solve(ctx context.Context, C, eps float64, maxIter int, step uint64) error {
	n, G := len(s.rows), s.G
	rng := rand.New(rand.NewPCG(s.seed1, s.seed2^(step+1)*0x9e3779b97f4a7c15))
	diag := make([]float64, n)
	for k := range diag {
		diag[k] = 0.5 / (C * s.cw[k])
	}
	const inf = 1e300
	shrunk := make([]bool, n*G)
	done := make([]bool, G)
	live := make([]bool, G)
	active := make([]int, G)
	pgMaxOld, pgMinOld := make([]float64, G), make([]float64, G)
	pgMax, pgMin := make([]float64, G), make([]float64, G)
	for g := range G {
		active[g] = n
		pgMaxOld[g], pgMinOld[g] = inf, -inf
	}
	left := G
	for iter := 0; iter < maxIter && left > 0; iter++ {
		if iter%4 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		s.shuffle(rng)
		for g := range G {
			pgMax[g], pgMin[g] = -inf, inf
		}
		for _, k := range s.index {
			i := int(k)
			sh := shrunk[i*G : i*G+G]
			need := false
			for g := range G {
				live[g] = !done[g] && !sh[g]
				need = need || live[g]
			}
			if !need {
				continue
			}
			r := int(s.rows[i])
			s.scores(r, s.d, live)
			any := false
			for g := range G {
				s.delta[g] = 0
				if done[g] || sh[g] {
					continue
				}
				yi := s.y(i, g)
				a := s.alpha[i*G+g]
				gr := yi*s.d[g] - 1 + a*diag[i]
				pg := 0.0
				if a == 0 {
					if gr > pgMaxOld[g] {
						sh[g] = true
						active[g]--
						continue
					}
					if gr < 0 {
						pg = gr
					}
				} else {
					pg = gr
				}
				pgMax[g] = max(pgMax[g], pg)
				pgMin[g] = min(pgMin[g], pg)
				if pg > 1e-12 || pg < -1e-12 {
					na := max(a-gr/(s.qd[i]+diag[i]), 0)
					s.alpha[i*G+g] = na
					if na != a {
						s.delta[g] = (na - a) * yi
						any = true
					}
				}
			}
			if any {
				s.update(r, s.delta)
			}
		}
		for g := range G {
			if done[g] {
				continue
			}
			if pgMax[g]-pgMin[g] <= eps {
				if active[g] == n {
					done[g] = true
					left--
					continue
				}
				for i := range n {
					shrunk[i*G+g] = false
				}
				active[g] = n
				pgMaxOld[g], pgMinOld[g] = inf, -inf
				continue
			}
			pgMaxOld[g], pgMinOld[g] = pgMax[g], pgMin[g]
			if pgMaxOld[g] <= 0 {
				pgMaxOld[g] = inf
			}
			if pgMinOld[g] >= 0 {
				pgMinOld[g] = -inf
			}
		}
	}
	return nil
}

// solveLR optimises the L2-regularised logistic regressions for cost C in
// the dual by coordinate descent with a Newton step per coordinate (Yu,
// Huang and Lin 2011, "Dual coordinate descent methods for logistic
// regression and maximum entropy models"). The dual variables live
// strictly inside (0, C·cw); a previous solution for another cost is
// rescaled into the new box, which keeps it feasible and warm.
func (s *ovrSolver) solveLR(ctx context.Context, C, eps float64, maxIter int, step uint64) error {
	n, G := len(s.rows), s.G
	rng := rand.New(rand.NewPCG(s.seed1, s.seed2^(step+1)*0x9e3779b97f4a7c15))
	if s.lrC == 0 {
		clear(s.w)
		for i, r := range s.rows {
			for g := range G {
				a := min(0.001*C*s.cw[i], 1e-8)
				s.alpha[i*G+g] = a
				s.delta[g] = s.y(i, g) * a
			}
			s.update(int(r), s.delta)
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
	const innerEpsMin = 1e-8
	const maxInner = 100
	innerEps := make([]float64, G)
	newtonIter := make([]int, G)
	gmax := make([]float64, G)
	done := make([]bool, G)
	live := make([]bool, G)
	for g := range G {
		innerEps[g] = 1e-2
		live[g] = true
	}
	left := G
	for iter := 0; iter < maxIter && left > 0; iter++ {
		if iter%4 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		s.shuffle(rng)
		clear(newtonIter)
		clear(gmax)
		for _, k := range s.index {
			i := int(k)
			r := int(s.rows[i])
			c := C * s.cw[i]
			a := s.qd[i]
			s.scores(r, s.d, live)
			any := false
			for g := range G {
				s.delta[g] = 0
				if done[g] {
					continue
				}
				yi := s.y(i, g)
				b := yi * s.d[g]
				// alpha1 = alpha, alpha2 = c - alpha; work on whichever
				// the gradient moves away from its bound.
				a1 := s.alpha[i*G+g]
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
				gmax[g] = max(gmax[g], math.Abs(gp))
				inner := 0
				for inner <= maxInner {
					if math.Abs(gp) < innerEps[g] {
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
					newtonIter[g]++
					inner++
				}
				if inner > 0 {
					na := c - z
					if sign > 0 {
						na = z
					}
					s.alpha[i*G+g] = na
					if na != a1 {
						s.delta[g] = (na - a1) * yi
						any = true
					}
				}
			}
			if any {
				s.update(r, s.delta)
			}
		}
		for g := range G {
			if done[g] {
				continue
			}
			if gmax[g] < eps {
				done[g], live[g] = true, false
				left--
				continue
			}
			if newtonIter[g] <= n/10 {
				innerEps[g] = max(innerEpsMin, 0.1*innerEps[g])
			}
		}
	}
	return nil
}
