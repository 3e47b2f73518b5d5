package classify

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"
)

// ExplainReport is what MeasureExplain measured.
type ExplainReport struct {
	HistoryTickets int `json:"history_tickets"`
	// IndexBuildSeconds is the wall time of building the index over the
	// history with every core (what Train adds for it).
	IndexBuildSeconds float64 `json:"index_build_seconds"`
	// IndexHeapBytes is the memory the index holds: the larger of the live
	// heap's growth across the build (after GC; noisy on small indexes) and
	// the sum of its slices and strings. IndexArtifactBytes is its size in
	// the model artifact.
	IndexHeapBytes     int64 `json:"index_heap_bytes"`
	IndexArtifactBytes int64 `json:"index_artifact_bytes"`
	IndexTerms         int   `json:"index_terms"`
	IndexPostings      int   `json:"index_postings"`
	// Per query ticket, single-threaded: PredictExplain with the default
	// terms plus Similar(3) ("explained"), against plain PredictTopK on
	// the same tickets in the same loop ("plain"); SimilarP50Us is the
	// lookup alone.
	Queries         int     `json:"queries"`
	ExplainedP50Us  float64 `json:"explained_p50_us"`
	ExplainedP99Us  float64 `json:"explained_p99_us"`
	PlainP50Us      float64 `json:"plain_p50_us"`
	SimilarP50Us    float64 `json:"similar_p50_us"`
	MeanTerms       float64 `json:"mean_terms"`
	MeanSimilar     float64 `json:"mean_similar"`
	MeanTopSimilar  float64 `json:"mean_top_similarity"`
	SameGroupTop1   float64 `json:"same_group_top1"` // share of queries whose nearest ticket has the query's group
	QueriesWithData int     `json:"queries_with_group"`
}

// MeasureExplain builds a similar-ticket index over history with m's
// feature settings, pairs it with m's weights, and times explanation plus
// similar-ticket lookup over the queries (at most maxQueries; 0: all).
// Nothing in m changes.
func MeasureExplain(ctx context.Context, m *Model, history, queries []Example, maxQueries int) (*ExplainReport, error) {
	if len(history) == 0 || len(queries) == 0 {
		return nil, fmt.Errorf("classify: measure explain: no history or no queries")
	}
	if maxQueries > 0 && len(queries) > maxQueries {
		queries = queries[:maxQueries]
	}
	r := &ExplainReport{HistoryTickets: len(history), Queries: len(queries)}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	t0 := time.Now()
	ix, err := buildSimilar(ctx, history, m.meta.Features, runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, err
	}
	r.IndexBuildSeconds = time.Since(t0).Seconds()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	r.IndexHeapBytes = max(int64(ms.HeapAlloc)-int64(before), int64(ix.bytes()))
	runtime.KeepAlive(ix)
	cw := &countWriter{}
	bw := bufio.NewWriter(cw)
	writeSimilar(bw, ix)
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	r.IndexArtifactBytes = cw.n
	r.IndexTerms, r.IndexPostings = len(ix.terms), len(ix.pdoc)

	mx := &Model{meta: m.meta, buckets: m.buckets, vec: m.vec, fields: m.fields, id: m.id, created: m.created, sim: ix}
	for i := range min(200, len(queries)) { // warm pools and caches
		mx.PredictExplain(queries[i].Subject, queries[i].Body, 3, 0)
		mx.Similar(queries[i].Subject, queries[i].Body, 3)
	}
	explained := make([]time.Duration, 0, len(queries))
	plain := make([]time.Duration, 0, len(queries))
	similar := make([]time.Duration, 0, len(queries))
	var terms, sims int
	var topSim float64
	var same int
	for i := range queries {
		if i%256 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		q := &queries[i]
		t0 := time.Now()
		mx.PredictTopK(q.Subject, q.Body, 3)
		t1 := time.Now()
		res := mx.PredictExplain(q.Subject, q.Body, 3, 0)
		t2 := time.Now()
		st := mx.Similar(q.Subject, q.Body, 3)
		t3 := time.Now()
		plain = append(plain, t1.Sub(t0))
		explained = append(explained, t3.Sub(t1))
		similar = append(similar, t3.Sub(t2))
		for _, f := range res.Fields {
			terms += len(f.Terms)
		}
		sims += len(st)
		if len(st) > 0 {
			topSim += st[0].Similarity
			if q.Group != "" {
				r.QueriesWithData++
				if st[0].Labels[FieldGroup] == q.Group {
					same++
				}
			}
		}
	}
	r.ExplainedP50Us, r.ExplainedP99Us = pct(explained, 50), pct(explained, 99)
	r.PlainP50Us, r.SimilarP50Us = pct(plain, 50), pct(similar, 50)
	n := float64(len(queries))
	r.MeanTerms = float64(terms) / n / float64(max(len(mx.fields), 1))
	r.MeanSimilar = float64(sims) / n
	r.MeanTopSimilar = topSim / n
	if r.QueriesWithData > 0 {
		r.SameGroupTop1 = float64(same) / float64(r.QueriesWithData)
	}
	return r, nil
}

func pct(d []time.Duration, p int) float64 {
	slices.Sort(d)
	return float64(d[min(len(d)-1, len(d)*p/100)]) / float64(time.Microsecond)
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)
