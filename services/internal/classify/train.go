package classify

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// ClassWeight values of TrainOptions.
const (
	ClassWeightBalanced = "balanced" // cost per example inversely proportional to its class frequency
	ClassWeightNone     = "none"
)

// Loss values of TrainOptions.
const (
	LossAuto         = "auto"
	LossSquaredHinge = "squared_hinge"
	LossLogistic     = "logistic"
)

// Progress reports training progress; Done out of Total units of the stage.
type Progress struct {
	Stage string // "features", "similar", "cv", "fit"
	Field string
	Done  int
	Total int
}

// TrainOptions configure Train. The zero value gives the defaults noted.
type TrainOptions struct {
	Features FeatureOptions
	// Costs is the grid of SVM costs C tried by cross-validation (default
	// 0.4, 0.8), LogisticCosts the grid for logistic regression
	// (default 16, 32); the candidate with the best macro-F1 is kept.
	Costs         []float64
	LogisticCosts []float64
	// Folds of the stratified cross-validation (default 3; 1 disables it:
	// the first cost is used, no calibration and no held-out metrics).
	Folds int
	// Loss is LossAuto (default: both losses compete in cross-validation
	// for single-label fields; tags use the SVM), LossSquaredHinge (linear
	// SVM) or LossLogistic.
	Loss string
	// ClassWeight is ClassWeightBalanced (default) or ClassWeightNone.
	ClassWeight string
	// Seed makes training deterministic: same data, options and seed give a
	// byte-identical model.
	Seed uint64
	// Workers is the number of goroutines (default GOMAXPROCS).
	Workers int
	// Tolerance and MaxIter stop the dual coordinate descent (defaults 0.2
	// and 300 passes; 0.2 measured as good as 0.1 on the shared datasets'
	// macro-F1 and calibration at two thirds of the passes).
	Tolerance float64
	MaxIter   int
	// Fields restricts training to these fields (default: every field with
	// at least two labels in the data).
	Fields []string
	// MinTagCount drops tags seen on fewer tickets (default 3).
	MinTagCount int
	// NoSimilar skips the similar-ticket index (see Model.Similar), which is
	// otherwise built from the examples' ID, subject, body and labels and
	// stored in the model.
	NoSimilar bool
	// Progress, when set, is called as work completes, serially.
	Progress func(Progress)
}

func (o TrainOptions) withDefaults() TrainOptions {
	o.Features = o.Features.withDefaults()
	if len(o.Costs) == 0 {
		o.Costs = []float64{0.4, 0.8}
	}
	o.Costs = slices.Clone(o.Costs)
	slices.Sort(o.Costs)
	if len(o.LogisticCosts) == 0 {
		o.LogisticCosts = []float64{16, 32}
	}
	o.LogisticCosts = slices.Clone(o.LogisticCosts)
	slices.Sort(o.LogisticCosts)
	if o.Folds == 0 {
		o.Folds = 3
	}
	if o.ClassWeight == "" {
		o.ClassWeight = ClassWeightBalanced
	}
	if o.Loss == "" {
		o.Loss = LossAuto
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Tolerance == 0 {
		o.Tolerance = 0.2
	}
	if o.MaxIter == 0 {
		o.MaxIter = 300
	}
	if o.MinTagCount == 0 {
		o.MinTagCount = 3
	}
	return o
}

func (o TrainOptions) validate() error {
	if err := o.Features.validate(); err != nil {
		return err
	}
	for _, c := range append(slices.Clone(o.Costs), o.LogisticCosts...) {
		if !(c > 0) || c > 1e6 {
			return fmt.Errorf("cost %v outside (0, 1e6]", c)
		}
	}
	if o.Folds < 1 || o.Folds > 20 {
		return fmt.Errorf("folds %d outside 1..20", o.Folds)
	}
	if o.ClassWeight != ClassWeightBalanced && o.ClassWeight != ClassWeightNone {
		return fmt.Errorf("class weight %q: want %q or %q", o.ClassWeight, ClassWeightBalanced, ClassWeightNone)
	}
	if o.Loss != LossAuto && o.Loss != LossSquaredHinge && o.Loss != LossLogistic {
		return fmt.Errorf("loss %q: want %q, %q or %q", o.Loss, LossAuto, LossSquaredHinge, LossLogistic)
	}
	if !(o.Tolerance > 0) || o.MaxIter < 1 {
		return errors.New("tolerance and max iterations must be positive")
	}
	for _, f := range o.Fields {
		if !slices.Contains(Fields, f) {
			return fmt.Errorf("unknown field %q", f)
		}
	}
	return nil
}

// ErrNoData is returned when no field has enough labelled examples.
var ErrNoData = errors.New("classify: no field has examples of at least two labels")

// Train fits a model for every label field present in examples: TF-IDF
// features, one-vs-rest linear SVMs with the cost chosen by stratified
// cross-validation, temperature scaling (single-label) or Platt scaling
// and F1-optimal thresholds (tags) fitted on the cross-validation scores,
// held-out metrics from the same predictions, and a final refit on all
// examples. It uses opts.Workers goroutines and honours ctx.
func Train(ctx context.Context, examples []Example, opts TrainOptions) (*Model, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("classify: train options: %w", err)
	}
	t := &trainer{ctx: ctx, opts: opts, ex: examples}
	return t.run()
}

type trainer struct {
	ctx    context.Context
	opts   TrainOptions
	ex     []Example
	x      *csr
	colOf  []int32 // model column -> column of x
	bufs   f64Pool // solver buffers, reused across jobs
	progMu sync.Mutex
}

func (t *trainer) progress(p Progress) {
	if t.opts.Progress == nil {
		return
	}
	t.progMu.Lock()
	defer t.progMu.Unlock()
	t.opts.Progress(p)
}

func (t *trainer) run() (*Model, error) {
	fields := t.fieldsToTrain()
	if len(fields) == 0 {
		return nil, ErrNoData
	}
	m := &Model{}
	m.meta.Features = t.opts.Features
	if err := t.buildFeatures(m); err != nil {
		return nil, err
	}
	m.meta.Training = t.summary(fields)
	if !t.opts.NoSimilar {
		sim, err := buildSimilar(t.ctx, t.ex, t.opts.Features, t.opts.Workers)
		if err != nil {
			return nil, err
		}
		m.sim = sim
		t.progress(Progress{Stage: "similar", Done: len(t.ex), Total: len(t.ex)})
	}
	for _, f := range fields {
		var fm fieldModel
		var err error
		if f == FieldTags {
			fm, err = t.trainTags()
		} else {
			fm, err = t.trainSingle(f)
		}
		if err != nil {
			return nil, err
		}
		m.meta.Fields = append(m.meta.Fields, *fm.info)
		m.fields = append(m.fields, fm)
	}
	for i := range m.meta.Fields {
		m.fields[i].info = &m.meta.Fields[i]
	}
	if err := m.seal(time.Now()); err != nil {
		return nil, err
	}
	return m, nil
}

// fieldsToTrain lists the requested fields with at least two labels.
func (t *trainer) fieldsToTrain() []string {
	want := t.opts.Fields
	if len(want) == 0 {
		want = Fields
	}
	var out []string
	for _, f := range Fields {
		if !slices.Contains(want, f) {
			continue
		}
		seen := map[string]bool{}
		for i := range t.ex {
			if f == FieldTags {
				for _, tag := range t.ex[i].Tags {
					seen[tag] = true
				}
			} else if l := t.ex[i].label(f); l != "" {
				seen[l] = true
			}
			if len(seen) >= 2 {
				break
			}
		}
		if f == FieldTags && len(seen) >= 1 || len(seen) >= 2 {
			out = append(out, f)
		}
	}
	return out
}

func (t *trainer) summary(fields []string) TrainingSummary {
	s := TrainingSummary{
		Examples:    len(t.ex),
		Languages:   map[string]int{},
		LabelCounts: map[string]map[string]int{},
		Columns:     t.x.ncol,
		Folds:       t.opts.Folds,
		Costs:       t.opts.Costs,
		LogCosts:    t.opts.LogisticCosts,
		Loss:        t.opts.Loss,
		ClassWeight: t.opts.ClassWeight,
		Seed:        t.opts.Seed,
	}
	for _, f := range fields {
		s.LabelCounts[f] = map[string]int{}
	}
	for i := range t.ex {
		e := &t.ex[i]
		lang := e.Language
		if lang == "" {
			lang = "und"
		}
		s.Languages[lang]++
		for _, f := range fields {
			if f == FieldTags {
				for _, tag := range e.Tags {
					s.LabelCounts[f][tag]++
				}
			} else if l := e.label(f); l != "" {
				s.LabelCounts[f][l]++
			}
		}
	}
	return s
}

// buildFeatures hashes all examples, keeps the buckets seen in at least
// MinDF documents, learns their IDF and builds the training matrix.
//
// It hashes every document twice rather than keep the hashed terms of the
// whole corpus between the passes: the first pass counts document
// frequencies and each document's distinct terms, the second writes the
// weighted, renumbered, sorted rows straight into a matrix allocated once
// at its final size. Hashing is cheap next to the memory (and garbage
// collection) the kept terms and their copies cost: on a large corpus they
// were several times the size of the matrix itself.
func (t *trainer) buildFeatures(m *Model) error {
	fo := t.opts.Features
	n := len(t.ex)
	W := max(min(t.opts.Workers, n), 1)
	bounds := make([]int, W+1)
	for w := range bounds {
		bounds[w] = n * w / W
	}
	var done atomic.Int64
	tick := func() {
		if d := done.Add(1); d%4096 == 0 {
			t.progress(Progress{Stage: "features", Done: int(d), Total: 2 * n})
		}
	}
	// Pass 1: df counts every key of a document (its word and character
	// keys of one bucket separately); nterms its distinct keys.
	size := 1 << fo.HashBits
	df := make([]int32, size)
	var dfMu sync.Mutex
	nterms := make([]int32, n)
	err := parallel(t.ctx, W, W, func(w int) error {
		var pend []uint32 // keys not yet counted in df
		flush := func() {
			dfMu.Lock()
			for _, k := range pend {
				df[k&^blockBit]++
			}
			dfMu.Unlock()
			pend = pend[:0]
		}
		err := t.hashRange(bounds[w], bounds[w+1], func(i int, tab *termTable) error {
			nterms[i] = int32(len(tab.used))
			for _, s := range tab.used {
				pend = append(pend, tab.keys[s]-1)
			}
			if len(pend) >= 1<<16 {
				flush()
			}
			tick()
			return nil
		})
		flush()
		return err
	})
	if err != nil {
		return err
	}
	m.vec.colOf = make([]int32, size)
	for b := range m.vec.colOf {
		if int(df[b]) >= fo.MinDF {
			m.vec.colOf[b] = int32(len(m.buckets))
			m.buckets = append(m.buckets, uint32(b))
			// Smoothed IDF as scikit-learn computes it.
			m.vec.idf = append(m.vec.idf, float32(math.Log(float64(1+n)/float64(1+df[b]))+1))
		} else {
			m.vec.colOf[b] = -1
		}
	}
	m.vec.charWeight = float32(fo.CharWeight)
	ncol := len(m.buckets)
	// A column's entries in the matrix are exactly its bucket's keys
	// counted in df, so the training order of the columns is known now.
	colDF := make([]int32, ncol)
	for c, b := range m.buckets {
		colDF[c] = df[b]
	}
	df = nil
	t.colOf = columnOrder(colDF)
	colDF = nil
	// Pass 2: each worker writes its documents' rows, pruned, weighted,
	// renumbered and sorted, from the start of its range of the matrix
	// (sized for the unpruned terms, so they always fit).
	start := make([]int, W+1)
	for w := range W {
		start[w+1] = start[w]
		for i := bounds[w]; i < bounds[w+1]; i++ {
			start[w+1] += int(nterms[i])
		}
	}
	nterms = nil
	x := &csr{ptr: make([]int, n+1), cols: make([]int32, start[W]), vals: make([]float32, start[W]), ncol: ncol}
	end := make([]int, W)
	err = parallel(t.ctx, W, W, func(w int) error {
		var keys []uint32
		var tfs []float32
		var v sparse
		var row []colVal
		at := start[w]
		err := t.hashRange(bounds[w], bounds[w+1], func(i int, tab *termTable) error {
			keys, tfs = tab.entries(keys[:0], tfs[:0])
			m.vec.vectorize(keys, tfs, &v)
			row = sortRow(row, v, t.colOf)
			if at+len(row) > start[w+1] {
				return errors.New("classify: features differ between passes (examples modified during training?)")
			}
			x.ptr[i] = at
			for k, cv := range row {
				x.cols[at+k], x.vals[at+k] = cv.c, cv.v
			}
			at += len(row)
			tick()
			return nil
		})
		end[w] = at
		return err
	})
	if err != nil {
		return err
	}
	// Close the gaps the pruned terms left between the workers' ranges.
	at := end[0]
	for w := 1; w < W; w++ {
		if shift := start[w] - at; shift > 0 {
			copy(x.cols[at:], x.cols[start[w]:end[w]])
			copy(x.vals[at:], x.vals[start[w]:end[w]])
			for i := bounds[w]; i < bounds[w+1]; i++ {
				x.ptr[i] -= shift
			}
		}
		at += end[w] - start[w]
	}
	x.ptr[n] = at
	x.cols, x.vals = x.cols[:at:at], x.vals[:at:at]
	if at < start[W]/4*3 {
		// Mostly pruned (a high MinDF): do not keep the slack.
		x.cols, x.vals = slices.Clone(x.cols), slices.Clone(x.vals)
	}
	t.x = x
	return nil
}

// hashRange hashes the examples [from, to) in order, each into the same
// term table, and calls fn with its index and terms; both passes of
// buildFeatures go through it, so they see the same terms. It stops when
// training is cancelled or fn fails.
func (t *trainer) hashRange(from, to int, fn func(i int, tab *termTable) error) error {
	e := newExtractor(t.opts.Features)
	var tab termTable
	var buf []byte
	for i := from; i < to; i++ {
		if (i-from)%1024 == 0 {
			if err := t.ctx.Err(); err != nil {
				return err
			}
		}
		tab.reset()
		featurizeInto(e, &tab, &buf, t.ex[i].Subject, t.ex[i].Body)
		if err := fn(i, &tab); err != nil {
			return err
		}
	}
	return nil
}

// columnOrder numbers the columns by decreasing document frequency df
// (ties by column), so the weights of the frequent features, which the
// solvers touch on every row, share a small block of memory that stays in
// cache. It returns the training column of every model column.
func columnOrder(df []int32) []int32 {
	order := make([]int32, len(df))
	for c := range order {
		order[c] = int32(c)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return int(df[b]) - int(df[a]) })
	colOf := make([]int32, len(df))
	for nc, c := range order {
		colOf[c] = int32(nc)
	}
	return colOf
}

// colVal is one entry of a training row.
type colVal struct {
	c int32
	v float32
}

// sortRow renumbers the model columns of v to training columns (colOf)
// and sorts them into buf. A row may hold a column twice (a word and a
// character key of one bucket); those keep the order the sort gives them,
// which depends only on v.
func sortRow(buf []colVal, v sparse, colOf []int32) []colVal {
	buf = buf[:0]
	for k, c := range v.cols {
		buf = append(buf, colVal{colOf[c], v.vals[k]})
	}
	slices.SortFunc(buf, func(a, b colVal) int { return int(a.c) - int(b.c) })
	return buf
}

// folds assigns each of the rows to a fold, stratified by class (cls may be
// nil for unstratified), deterministically from the seed.
func (t *trainer) folds(n int, cls []int, salt uint64) []int {
	k := t.opts.Folds
	rng := rand.New(rand.NewPCG(t.opts.Seed, salt))
	fold := make([]int, n)
	groups := map[int][]int{}
	var keys []int
	for i := range n {
		c := 0
		if cls != nil {
			c = cls[i]
		}
		if _, ok := groups[c]; !ok {
			keys = append(keys, c)
		}
		groups[c] = append(groups[c], i)
	}
	sort.Ints(keys)
	next := 0
	for _, c := range keys {
		g := groups[c]
		rng.Shuffle(len(g), func(a, b int) { g[a], g[b] = g[b], g[a] })
		for _, i := range g {
			fold[i] = next % k
			next++
		}
	}
	return fold
}

func fieldSalt(field string) uint64 {
	h := seedWord
	for i := 0; i < len(field); i++ {
		h ^= uint64(field[i])
		h *= fnvPrime
	}
	return h
}

// ovrJob trains a group of G one-vs-rest problems along the cost path and
// records the decision values of the rows it did not train on.
type ovrJob struct {
	train []int32   // rows of x
	G     int       // problems
	pos   []bool    // len(train)×G: positive for problem g
	cw    []float64 // cost multiplier per train row
	test  []int32   // rows to score (held out)
	// out[ci][outAt[j]+g] (outAt[j] = j*G when outAt is nil) receives the
	// score of test[j] for problem g under costs[ci].
	out   [][]float64
	outAt []int
	// final, when wanted, receives the (ncol+1)×G weights at the last cost;
	// the caller hands them back with t.bufs.put.
	wantFinal bool
	final     []float64
	// salt picks the random stream; it must not depend on the grouping.
	salt uint64
	// alpha, when set, is called with the len(train)×G dual variables after
	// each cost; they are the solver's, valid only during the call.
	alpha func(ci int, alpha []float64)
	// init, when set, warm-starts the first cost from these duals.
	init []float64
}

func (t *trainer) runJob(j *ovrJob, loss string, costs []float64) error {
	s := newOVR(&t.bufs, t.x, j.train, j.G, j.pos, j.cw, t.opts.Seed, j.salt)
	if j.init != nil {
		s.warm(j.init, loss == LossLogistic, costs[0])
	}
	for ci, c := range costs {
		var err error
		if loss == LossLogistic {
			err = s.solveLR(t.ctx, c, t.opts.Tolerance, t.opts.MaxIter, uint64(ci))
		} else {
			err = s.solve(t.ctx, c, t.opts.Tolerance, t.opts.MaxIter, uint64(ci))
		}
		if err != nil {
			s.release(true)
			return err
		}
		if j.alpha != nil {
			j.alpha(ci, s.alpha)
		}
		if j.out != nil {
			G := j.G
			for k, r := range j.test {
				at := k * G
				if j.outAt != nil {
					at = j.outAt[k]
				}
				s.scores(int(r), j.out[ci][at:at+G:at+G], nil)
			}
		}
	}
	if j.wantFinal {
		j.final = s.w
	}
	s.release(!j.wantFinal)
	return nil
}

// dualSums sums the dual variables of the cross-validation jobs per
// candidate (loss and cost) and row, adding the folds of each group of
// classes in fold order whatever order the jobs finish in, so the sums are
// the same bits as a sequential loop over the folds would give.
type dualSums struct {
	mu      sync.Mutex
	sum     [][]float64 // per candidate
	ng      int
	next    []int // per candidate×group: the fold to add next
	pending map[[3]int]pendingDuals
}

type pendingDuals struct {
	alpha []float64
	addTo func(sum, alpha []float64)
}

func newDualSums(ncand, size, ng int) *dualSums {
	d := &dualSums{sum: make([][]float64, ncand), ng: ng, next: make([]int, ncand*ng), pending: map[[3]int]pendingDuals{}}
	for c := range d.sum {
		d.sum[c] = make([]float64, size)
	}
	return d
}

// add adds the duals alpha of fold f and group g of candidate c to its
// sum with addTo, now if every earlier fold is in, else (on a copy of
// alpha) when they are.
func (d *dualSums) add(c, f, g int, alpha []float64, addTo func(sum, alpha []float64)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	q := c*d.ng + g
	if d.next[q] != f {
		d.pending[[3]int{c, g, f}] = pendingDuals{slices.Clone(alpha), addTo}
		return
	}
	addTo(d.sum[c], alpha)
	for d.next[q]++; ; d.next[q]++ {
		k := [3]int{c, g, d.next[q]}
		p, ok := d.pending[k]
		if !ok {
			return
		}
		delete(d.pending, k)
		p.addTo(d.sum[c], p.alpha)
	}
}

// maxGroup bounds the problems solved together: beyond it the interleaved
// weights of one feature span too many cache lines to gain more.
const maxGroup = 32

// groups splits K problems into at least minGroups contiguous groups of at
// most maxGroup, as even as possible; it returns the group boundaries.
func groups(K, minGroups int) []int {
	ng := max((K+maxGroup-1)/maxGroup, minGroups)
	ng = max(min(ng, K), 1)
	b := make([]int, ng+1)
	for g := range b {
		b[g] = K * g / ng
	}
	return b
}

// singleLosses lists the losses competing for single-label fields.
func (t *trainer) singleLosses() []string {
	if t.opts.Loss == LossAuto {
		return []string{LossLogistic, LossSquaredHinge}
	}
	return []string{t.opts.Loss}
}

// tagLoss is the loss of the per-tag binary problems: Platt scaling and
// thresholds fix the calibration, so the cheaper SVM serves unless the
// logistic loss was asked for.
func (t *trainer) tagLoss() string {
	if t.opts.Loss == LossLogistic {
		return LossLogistic
	}
	return LossSquaredHinge
}

// grid is the cost grid of a loss.
func (t *trainer) grid(loss string) []float64 {
	if loss == LossLogistic {
		return t.opts.LogisticCosts
	}
	return t.opts.Costs
}

// trainSingle trains a single-label field.
func (t *trainer) trainSingle(field string) (fieldModel, error) {
	var rows []int32
	var labelsOf []string
	for i := range t.ex {
		if l := t.ex[i].label(field); l != "" {
			rows = append(rows, int32(i))
			labelsOf = append(labelsOf, l)
		}
	}
	labels := sortedUnique(labelsOf)
	K := len(labels)
	cls := make([]int, len(rows))
	counts := make([]int, K)
	for i, l := range labelsOf {
		cls[i], _ = slices.BinarySearch(labels, l)
		counts[cls[i]]++
	}
	n := len(rows)
	weight := make([]float64, K)
	for k := range K {
		weight[k] = 1
		if t.opts.ClassWeight == ClassWeightBalanced {
			weight[k] = float64(n) / float64(K*counts[k])
		}
	}
	losses := t.singleLosses()
	info := &FieldInfo{Name: field, Labels: labels, Loss: losses[0], Cost: t.grid(losses[0])[0], Temperature: 1}
	var init []float64 // n×K duals to start the final fit from
	salt := fieldSalt(field)
	folds := t.opts.Folds
	if folds > 1 && n >= 2*folds {
		fold := t.folds(n, cls, salt)
		// Jobs by loss, fold, group of classes; the slower logistic ones
		// first.
		bounds := groups(K, (t.opts.Workers+len(losses)*folds-1)/(len(losses)*folds))
		ng := len(bounds) - 1
		jobs := make([]ovrJob, len(losses)*folds*ng)
		// The cross-validation scores of every (loss, cost) candidate,
		// n×K row-major over positions in rows, which the jobs fill in.
		type candidate struct {
			loss   string
			cost   float64
			scores []float64
		}
		var cands []candidate
		candOf := make([][]int, len(losses)) // [li][ci] -> index in cands
		for li, loss := range losses {
			for _, c := range t.grid(loss) {
				candOf[li] = append(candOf[li], len(cands))
				cands = append(cands, candidate{loss: loss, cost: c, scores: make([]float64, n*K)})
			}
		}
		// The final fit starts from the mean of the duals each row had in
		// the folds that trained on it: close to the full-data solution,
		// feasible for the same cost, and far fewer passes than from zero.
		// Every candidate's mean is summed as its jobs finish (rather than
		// keep every job's duals until the best candidate is known), in
		// fold order as a plain loop over the folds would, so the sums do
		// not depend on the scheduling.
		sums := newDualSums(len(cands), n*K, ng)
		for f := range folds {
			var train, test []int32
			var trainPos, testPos []int
			for i, r := range rows {
				if fold[i] == f {
					test = append(test, r)
					testPos = append(testPos, i)
				} else {
					train = append(train, r)
					trainPos = append(trainPos, i)
				}
			}
			cw := make([]float64, len(train))
			for a, p := range trainPos {
				cw[a] = weight[cls[p]]
			}
			for gi := range ng {
				lo, hi := bounds[gi], bounds[gi+1]
				G := hi - lo
				pos := make([]bool, len(train)*G)
				for a, p := range trainPos {
					if c := cls[p]; c >= lo && c < hi {
						pos[a*G+c-lo] = true
					}
				}
				outAt := make([]int, len(test))
				for a, p := range testPos {
					outAt[a] = p*K + lo
				}
				for li, loss := range losses {
					j := &jobs[(li*folds+f)*ng+gi]
					j.train, j.test, j.G, j.cw, j.pos = train, test, G, cw, pos
					j.salt = salt + uint64(li*folds+f)
					j.out, j.outAt = make([][]float64, len(t.grid(loss))), outAt
					for ci := range j.out {
						j.out[ci] = cands[candOf[li][ci]].scores
					}
					j.alpha = func(ci int, al []float64) {
						sums.add(candOf[li][ci], f, gi, al, func(sum []float64, al []float64) {
							for a, p := range trainPos {
								for g := range G {
									sum[p*K+lo+g] += al[a*G+g] / float64(folds-1)
								}
							}
						})
					}
				}
			}
		}
		var done atomic.Int64
		err := parallel(t.ctx, t.opts.Workers, len(jobs), func(ji int) error {
			loss := losses[ji/(folds*ng)]
			if err := t.runJob(&jobs[ji], loss, t.grid(loss)); err != nil {
				return err
			}
			jobs[ji] = ovrJob{}
			t.progress(Progress{Stage: "cv", Field: field, Done: int(done.Add(1)), Total: len(jobs)})
			return nil
		})
		if err != nil {
			return fieldModel{}, err
		}
		best, bestF1 := 0, -1.0
		for ci := range cands {
			if f1 := argmaxMacroF1(cands[ci].scores, cls, K); f1 > bestF1 {
				best, bestF1 = ci, f1
			}
		}
		info.Loss, info.Cost = cands[best].loss, cands[best].cost
		li := slices.Index(losses, info.Loss)
		ci := slices.Index(t.grid(info.Loss), info.Cost)
		init = sums.sum[candOf[li][ci]]
		sums = nil
		scores := cands[best].scores
		info.Temperature = fitTemperature(scores, cls, K)
		probs := make([]float64, n*K)
		for i := range n {
			softmaxInto(probs[i*K:(i+1)*K], scores[i*K:(i+1)*K], 1/info.Temperature)
		}
		info.HeldOut = singleLabelReport(field, labels, cls, probs)
	}
	// Final fit on all rows at the chosen cost.
	fm := fieldModel{info: info}
	cw := make([]float64, n)
	for i := range n {
		cw[i] = weight[cls[i]]
	}
	err := t.fitFinal(&fm, field, rows, K, cw, func(i, k int) bool { return cls[i] == k },
		func(int) (string, float64) { return info.Loss, info.Cost }, init, salt^0xf1a1)
	if err != nil {
		return fieldModel{}, err
	}
	return fm, nil
}

// fitFinal fits the K problems of a field on all its rows (pos tells
// whether row i is positive for problem k, lossCost the loss and cost of
// problem k) in groups of equal loss and cost, and stores the weights in fm.
// init, when not nil, holds n×K duals to start from.
func (t *trainer) fitFinal(fm *fieldModel, field string, rows []int32, K int, cw []float64,
	pos func(i, k int) bool, lossCost func(k int) (string, float64), init []float64, salt uint64) error {
	n, ncol := len(rows), t.x.ncol
	fm.W, fm.B = make([]float32, ncol*K), make([]float32, K)
	type key struct {
		loss string
		cost float64
	}
	var keys []key
	members := map[key][]int{}
	for k := range K {
		l, c := lossCost(k)
		kk := key{l, c}
		if _, ok := members[kk]; !ok {
			keys = append(keys, kk)
		}
		members[kk] = append(members[kk], k)
	}
	type group struct {
		key key
		ks  []int
	}
	var gs []group
	for _, kk := range keys {
		ks := members[kk]
		b := groups(len(ks), (t.opts.Workers+len(keys)-1)/len(keys))
		for gi := range len(b) - 1 {
			gs = append(gs, group{kk, ks[b[gi]:b[gi+1]]})
		}
	}
	var done atomic.Int64
	return parallel(t.ctx, t.opts.Workers, len(gs), func(gi int) error {
		g := &gs[gi]
		G := len(g.ks)
		j := &ovrJob{train: rows, G: G, pos: make([]bool, n*G), cw: cw, wantFinal: true, salt: salt}
		if init != nil {
			j.init = t.bufs.get(n * G)
		}
		for i := range n {
			for a, k := range g.ks {
				j.pos[i*G+a] = pos(i, k)
				if init != nil {
					j.init[i*G+a] = init[i*K+k]
				}
			}
		}
		err := t.runJob(j, g.key.loss, []float64{g.key.cost})
		t.bufs.put(j.init)
		if err != nil {
			return err
		}
		for a, k := range g.ks {
			for c := range ncol {
				fm.W[c*K+k] = float32(j.final[int(t.colOf[c])*G+a])
			}
			fm.B[k] = float32(j.final[ncol*G+a])
		}
		t.bufs.put(j.final)
		t.progress(Progress{Stage: "fit", Field: field, Done: int(done.Add(int64(G))), Total: K})
		return nil
	})
}

// trainTags trains the multi-label tags field: one binary SVM per tag with
// its own cost, Platt-calibrated, thresholded for the best F1.
func (t *trainer) trainTags() (fieldModel, error) {
	var rows []int32
	counts := map[string]int{}
	for i := range t.ex {
		if t.ex[i].Tags != nil {
			rows = append(rows, int32(i))
			for _, tag := range sortedUnique(t.ex[i].Tags) {
				counts[tag]++
			}
		}
	}
	var labels []string
	for tag, c := range counts {
		if c >= t.opts.MinTagCount {
			labels = append(labels, tag)
		}
	}
	sort.Strings(labels)
	K := len(labels)
	n := len(rows)
	if K == 0 {
		return fieldModel{}, fmt.Errorf("classify: tags: no tag on at least %d tickets", t.opts.MinTagCount)
	}
	truth := make([][]bool, n)
	for i, r := range rows {
		truth[i] = make([]bool, K)
		for _, tag := range t.ex[r].Tags {
			if k, ok := slices.BinarySearch(labels, tag); ok {
				truth[i][k] = true
			}
		}
	}
	info := &FieldInfo{Name: FieldTags, Labels: labels, MultiLabel: true,
		TagCosts: make([]float64, K), PlattA: make([]float64, K), PlattB: make([]float64, K), TagThresholds: make([]float64, K)}
	costs := t.grid(t.tagLoss())
	folds := t.opts.Folds
	salt := fieldSalt(FieldTags)
	for k := range K {
		info.TagCosts[k] = costs[0]
		info.PlattA[k], info.PlattB[k] = -1, 0
		info.TagThresholds[k] = 0.5
	}
	if folds > 1 && n >= 2*folds {
		fold := t.folds(n, nil, salt)
		bounds := groups(K, (t.opts.Workers+folds-1)/folds)
		ng := len(bounds) - 1
		jobs := make([]ovrJob, folds*ng)
		var testPos [][]int
		for f := range folds {
			var train, test []int32
			var trainPos, tp []int
			for i, r := range rows {
				if fold[i] == f {
					test, tp = append(test, r), append(tp, i)
				} else {
					train, trainPos = append(train, r), append(trainPos, i)
				}
			}
			testPos = append(testPos, tp)
			cw := make([]float64, len(train))
			for a := range cw {
				cw[a] = 1
			}
			for gi := range ng {
				lo, hi := bounds[gi], bounds[gi+1]
				G := hi - lo
				j := &jobs[f*ng+gi]
				j.train, j.test, j.G, j.cw = train, test, G, cw
				j.salt = salt + uint64(f)
				j.pos = make([]bool, len(train)*G)
				for a, p := range trainPos {
					copy(j.pos[a*G:(a+1)*G], truth[p][lo:hi])
				}
				j.out = make([][]float64, len(costs))
				for ci := range costs {
					j.out[ci] = make([]float64, len(test)*G)
				}
			}
		}
		var done atomic.Int64
		err := parallel(t.ctx, t.opts.Workers, len(jobs), func(ji int) error {
			if err := t.runJob(&jobs[ji], t.tagLoss(), costs); err != nil {
				return err
			}
			t.progress(Progress{Stage: "cv", Field: FieldTags, Done: int(done.Add(1)), Total: len(jobs)})
			return nil
		})
		if err != nil {
			return fieldModel{}, err
		}
		probs := make([]float64, n*K)
		scores := make([]float64, n)
		pos := make([]bool, n)
		for k := range K {
			bestF1 := -1.0
			var bestScores []float64
			for ci := range costs {
				s := make([]float64, n)
				gi := sort.SearchInts(bounds, k+1) - 1
				for f := range folds {
					j := &jobs[f*ng+gi]
					for a, p := range testPos[f] {
						s[p] = j.out[ci][a*j.G+k-bounds[gi]]
					}
				}
				for i := range n {
					pos[i] = truth[i][k]
				}
				if f1, _ := bestThresholdF1(s, pos); f1 > bestF1 {
					bestF1, bestScores = f1, s
					info.TagCosts[k] = costs[ci]
				}
			}
			copy(scores, bestScores)
			A, B := fitPlatt(scores, pos)
			info.PlattA[k], info.PlattB[k] = A, B
			p := make([]float64, n)
			for i := range n {
				p[i] = plattProb(scores[i], A, B)
				probs[i*K+k] = p[i]
			}
			_, th := bestThresholdF1(p, pos)
			info.TagThresholds[k] = th
		}
		info.HeldOut = multiLabelReport(FieldTags, labels, truth, probs, info.TagThresholds)
	}
	fm := fieldModel{info: info}
	cw := make([]float64, n)
	for i := range cw {
		cw[i] = 1
	}
	err := t.fitFinal(&fm, FieldTags, rows, K, cw, func(i, k int) bool { return truth[i][k] },
		func(k int) (string, float64) { return t.tagLoss(), info.TagCosts[k] }, nil, salt^0xf1a1)
	if err != nil {
		return fieldModel{}, err
	}
	return fm, nil
}

// bestThresholdF1 returns the best F1 over thresholds on s and the
// threshold reaching it (midway between neighbouring values).
func bestThresholdF1(s []float64, pos []bool) (float64, float64) {
	idx := make([]int, len(s))
	total := 0
	for i := range idx {
		idx[i] = i
		if pos[i] {
			total++
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return s[idx[a]] > s[idx[b]] })
	best, th := 0.0, math.Inf(1)
	if len(s) > 0 {
		th = s[idx[0]] + 1
	}
	tp := 0
	for r, i := range idx {
		if pos[i] {
			tp++
		}
		if r+1 < len(idx) && s[idx[r+1]] == s[i] {
			continue
		}
		if f1 := 2 * float64(tp) / float64(r+1+total); f1 > best {
			best = f1
			th = s[i]
			if r+1 < len(idx) {
				th = (s[i] + s[idx[r+1]]) / 2
			}
		}
	}
	return best, th
}

func argmaxMacroF1(scores []float64, cls []int, K int) float64 {
	conf := make([][]int, K)
	for k := range conf {
		conf[k] = make([]int, K)
	}
	for i, c := range cls {
		row := scores[i*K : (i+1)*K]
		best := 0
		for k := 1; k < K; k++ {
			if row[k] > row[best] {
				best = k
			}
		}
		conf[c][best]++
	}
	_, f1 := classReports(make([]string, K), conf)
	return f1
}

func sortedUnique(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// parallel runs fn(0..n-1) on up to workers goroutines, stopping at the
// first error or when ctx is done. Every index runs in
// its own call, so results written per index are deterministic.
func parallel(ctx context.Context, workers, n int, fn func(int) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if ctx.Err() != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = ctx.Err()
					}
					mu.Unlock()
					failed.Store(true)
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}
