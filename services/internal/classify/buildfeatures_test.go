package classify

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// referenceMatrix builds the training matrix the plain way: hash every
// document once and keep all the terms, count document frequencies, weight
// the rows, then renumber the columns by decreasing frequency and sort each
// row. buildFeatures must give exactly the same bits.
func referenceMatrix(ex []Example, fo FeatureOptions) (*Model, *csr, []int32) {
	m := &Model{}
	e := newExtractor(fo)
	var tab termTable
	var buf []byte
	var keys [][]uint32
	var tfs [][]float32
	df := make([]int32, 1<<fo.HashBits)
	for i := range ex {
		tab.reset()
		featurizeInto(e, &tab, &buf, ex[i].Subject, ex[i].Body)
		k, f := tab.entries(nil, nil)
		keys, tfs = append(keys, k), append(tfs, f)
		for _, key := range k {
			df[key&^blockBit]++
		}
	}
	m.vec.colOf = make([]int32, len(df))
	for b := range df {
		m.vec.colOf[b] = -1
		if int(df[b]) >= fo.MinDF {
			m.vec.colOf[b] = int32(len(m.buckets))
			m.buckets = append(m.buckets, uint32(b))
			m.vec.idf = append(m.vec.idf, float32(math.Log(float64(1+len(ex))/float64(1+df[b]))+1))
		}
	}
	m.vec.charWeight = float32(fo.CharWeight)
	x := &csr{ptr: []int{0}, ncol: len(m.buckets)}
	var v sparse
	for i := range ex {
		m.vec.vectorize(keys[i], tfs[i], &v)
		x.cols = append(x.cols, v.cols...)
		x.vals = append(x.vals, v.vals...)
		x.ptr = append(x.ptr, len(x.cols))
	}
	colDF := make([]int32, x.ncol)
	for _, c := range x.cols {
		colDF[c]++
	}
	order := make([]int32, x.ncol)
	for c := range order {
		order[c] = int32(c)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return int(colDF[b]) - int(colDF[a]) })
	colOf := make([]int32, x.ncol)
	for nc, c := range order {
		colOf[c] = int32(nc)
	}
	type entry struct {
		c int32
		v float32
	}
	for i := range len(x.ptr) - 1 {
		lo, hi := x.ptr[i], x.ptr[i+1]
		var row []entry
		for k := lo; k < hi; k++ {
			row = append(row, entry{colOf[x.cols[k]], x.vals[k]})
		}
		slices.SortFunc(row, func(a, b entry) int { return int(a.c) - int(b.c) })
		for k, e := range row {
			x.cols[lo+k], x.vals[lo+k] = e.c, e.v
		}
	}
	return m, x, colOf
}

func TestBuildFeaturesMatchesReference(t *testing.T) {
	data := genExamples(500, 11, 0.05)
	// A few documents with no text, and one far longer than the rest.
	data[3].Subject, data[3].Body = "", ""
	data[250].Subject, data[250].Body = "", " !! "
	long := data[100]
	for range 50 {
		long.Body += data[len(long.Body)%len(data)].Body
	}
	data[100] = long
	for _, c := range []struct {
		fo      FeatureOptions
		workers int
		n       int
	}{
		{FeatureOptions{HashBits: 16}, 1, 500},
		{FeatureOptions{HashBits: 16}, 3, 500},
		{FeatureOptions{HashBits: 12, NoWordBigrams: true, SubjectWeight: 1.5}, 2, 500},
		{FeatureOptions{HashBits: 14, MinDF: 60}, 4, 500}, // mostly pruned
		{FeatureOptions{HashBits: 14, MinDF: 1}, 2, 500},
		{FeatureOptions{HashBits: 14}, 8, 5}, // more workers than documents
	} {
		fo := c.fo.withDefaults()
		ex := data[:c.n]
		tr := &trainer{ctx: context.Background(), opts: TrainOptions{Features: fo, Workers: c.workers}.withDefaults(), ex: ex}
		m := &Model{}
		if err := tr.buildFeatures(m); err != nil {
			t.Fatal(err)
		}
		rm, rx, rcolOf := referenceMatrix(ex, fo)
		switch {
		case !slices.Equal(m.buckets, rm.buckets) || !slices.Equal(m.vec.colOf, rm.vec.colOf) ||
			!slices.Equal(m.vec.idf, rm.vec.idf) || m.vec.charWeight != rm.vec.charWeight:
			t.Errorf("%+v, %d workers: vectoriser differs from the reference", fo, c.workers)
		case !slices.Equal(tr.colOf, rcolOf):
			t.Errorf("%+v, %d workers: column order differs from the reference", fo, c.workers)
		case tr.x.ncol != rx.ncol || !slices.Equal(tr.x.ptr, rx.ptr) || !slices.Equal(tr.x.cols, rx.cols) ||
			!slices.Equal(tr.x.vals, rx.vals):
			t.Errorf("%+v, %d workers: matrix differs from the reference (%d vs %d entries)", fo, c.workers, len(tr.x.cols), len(rx.cols))
		}
	}
}

// TestDualSumsOrder checks that the sums of the cross-validation duals are
// the bits of a sequential loop over the folds whatever order the jobs
// finish in.
func TestDualSumsOrder(t *testing.T) {
	const folds, ng, ncand, size = 6, 3, 2, 50
	rng := rand.New(rand.NewPCG(1, 2))
	type job struct{ c, f, g int }
	var jobs []job
	alpha := map[job][]float64{}
	for c := range ncand {
		for f := range folds {
			for g := range ng {
				j := job{c, f, g}
				jobs = append(jobs, j)
				a := make([]float64, size)
				for i := range a {
					a[i] = rng.ExpFloat64() * math.Pow(10, float64(rng.IntN(12)-6))
				}
				alpha[j] = a
			}
		}
	}
	addTo := func(g int) func(sum, al []float64) {
		return func(sum, al []float64) {
			for i := g; i < size; i += ng {
				sum[i] += al[i] / float64(folds-1)
			}
		}
	}
	want := make([][]float64, ncand)
	for c := range ncand {
		want[c] = make([]float64, size)
		for f := range folds {
			for g := range ng {
				addTo(g)(want[c], alpha[job{c, f, g}])
			}
		}
	}
	for range 20 {
		rng.Shuffle(len(jobs), func(a, b int) { jobs[a], jobs[b] = jobs[b], jobs[a] })
		d := newDualSums(ncand, size, ng)
		for _, j := range jobs {
			al := slices.Clone(alpha[j])
			d.add(j.c, j.f, j.g, al, addTo(j.g))
			clear(al) // add must copy what it keeps
		}
		for c := range ncand {
			if !slices.Equal(d.sum[c], want[c]) {
				t.Fatalf("candidate %d: sums depend on the order the jobs finish in", c)
			}
		}
		if len(d.pending) != 0 {
			t.Fatalf("%d duals left pending", len(d.pending))
		}
	}
}
