package classify

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// SimilarTicket is a training example near a ticket.
type SimilarTicket struct {
	// ExampleID is the training example's ID; TicketID is it parsed when it
	// is a positive decimal number (a Freshdesk ticket id for a model
	// trained from the helpdesk's history), else 0.
	ExampleID string
	TicketID  int64
	// Subject is the example's subject as given (at most 512 bytes).
	Subject string
	// Labels are the values the example ended with, by field name (tags
	// joined by ", "); fields without a value are absent.
	Labels     map[string]string
	Similarity float64
}

// The similar-ticket index: every training example becomes a TF-IDF vector
// of its words (subject words count SubjectWeight times, placeholders and
// one-letter words are left out, sublinear TF, smoothed IDF over the
// training set), pruned to its similarTermsPerDoc strongest terms and
// L2-normalised. An inverted index maps each term kept by some example to
// the examples that kept it, with the weight quantised to 16 bits. Words
// in more than a tenth of the examples are left out first. A query
// is vectorised and pruned the same way (terms unknown to the index carry no
// evidence and are dropped before pruning) and scored exactly against every
// example sharing a term: the result is the exact top-k by cosine of the
// pruned vectors. Pruning is what makes this cheap: words frequent enough to
// be in most tickets have a low IDF and fall out of nearly every example's
// top terms, so the postings a query walks stay short.
const (
	similarTermsPerDoc = 32
	// Words in more than similarMaxDF of the examples are left out of the
	// index (scikit-learn's max_df): they say little about which tickets
	// are alike, and their postings would be most of every query's work.
	// Small histories keep every word.
	similarMaxDF           = 0.25
	similarMinDocsForMaxDF = 1000
	maxSimilarDocs         = 1 << 22
	maxSimilarTerms        = 1 << 24
	maxSimilarPostings     = 1 << 28
	maxSimilarStrings      = 1 << 20
	maxSimilarID           = 256
	maxSimilarSubject      = 512
	maxSimilarLabel        = 4096
	similarQuant           = 65535
)

type simDoc struct {
	id, subject string
	set         int32 // index of the label set
}

type similarIndex struct {
	termsPerDoc int
	docs        []simDoc
	strs        []string   // label strings
	sets        [][4]int32 // per label set, per Fields entry: index into strs, -1 none
	terms       []uint32   // sorted term hashes
	idf         []float32
	off         []uint32 // postings of terms[i]: off[i]..off[i+1]
	pdoc        []uint32
	pw          []uint16
	pool        sync.Pool // *simScratch
}

type simScratch struct {
	text    []byte
	tf      map[uint32]float32
	q       []termWeight
	scores  []float32
	touched []int32
}

type termWeight struct {
	term uint32
	w    float32
}

// simAddText adds the index terms of normalised text to tf with weight w.
func simAddText(tf map[uint32]float32, text []byte, w float32) {
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRune(text[i:])
		if !isWordRune(r) {
			i += size
			continue
		}
		j, runes := i+size, 1
		for j < len(text) {
			r2, s2 := utf8.DecodeRune(text[j:])
			if !isWordRune(r2) {
				break
			}
			j += s2
			runes++
		}
		tok := text[i:j]
		i = j
		if runes < 2 || tok[0] == '_' && tok[len(tok)-1] == '_' {
			continue
		}
		tf[uint32(mix64(hashString(seedWord, tok))>>32)] += w
	}
}

func simTerms(s *simScratch, subject, body string, sw float32) {
	clear(s.tf)
	if subject != "" {
		s.text = normalizeAppend(s.text[:0], subject)
		simAddText(s.tf, s.text, sw)
	}
	s.text = normalizeAppend(s.text[:0], body)
	simAddText(s.tf, s.text, 1)
}

// pruneNormalize keeps the k strongest of tw (ties by term) and scales them
// to unit length.
func pruneNormalize(tw []termWeight, k int) []termWeight {
	slices.SortFunc(tw, func(a, b termWeight) int {
		if c := cmp.Compare(b.w, a.w); c != 0 {
			return c
		}
		return cmp.Compare(a.term, b.term)
	})
	if len(tw) > k {
		tw = tw[:k]
	}
	var ss float64
	for _, t := range tw {
		ss += float64(t.w) * float64(t.w)
	}
	if ss > 0 {
		inv := float32(1 / math.Sqrt(ss))
		for i := range tw {
			tw[i].w *= inv
		}
	}
	return tw
}

func simIDF(n, df int) float32 {
	return float32(math.Log(float64(1+n)/float64(1+df)) + 1)
}

// buildSimilar indexes the examples (see the index's description above).
func buildSimilar(ctx context.Context, ex []Example, fo FeatureOptions, workers int) (*similarIndex, error) {
	n := len(ex)
	sw := float32(fo.SubjectWeight)
	docTerms := make([][]termWeight, n)
	var pool sync.Pool
	err := parallel(ctx, workers, n, func(i int) error {
		s, _ := pool.Get().(*simScratch)
		if s == nil {
			s = &simScratch{tf: map[uint32]float32{}}
		}
		simTerms(s, ex[i].Subject, ex[i].Body, sw)
		tw := make([]termWeight, 0, len(s.tf))
		for t, f := range s.tf {
			tw = append(tw, termWeight{t, f})
		}
		docTerms[i] = tw
		pool.Put(s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	df := map[uint32]int32{}
	for _, tw := range docTerms {
		for _, t := range tw {
			df[t.term]++
		}
	}
	ix := &similarIndex{termsPerDoc: similarTermsPerDoc, docs: make([]simDoc, n)}
	maxDF := int32(n)
	if n >= similarMinDocsForMaxDF {
		maxDF = int32(float64(n) * similarMaxDF)
	}
	var kept []uint32
	for i, tw := range docTerms {
		j := 0
		for _, t := range tw {
			if df[t.term] > maxDF {
				continue
			}
			t.w = (1 + float32(math.Log(float64(t.w)))) * simIDF(n, int(df[t.term]))
			tw[j] = t
			j++
		}
		tw = pruneNormalize(tw[:j], ix.termsPerDoc)
		docTerms[i] = tw
		for _, t := range tw {
			kept = append(kept, t.term)
		}
	}
	slices.Sort(kept)
	ix.terms = slices.Clip(slices.Compact(kept))
	ix.idf = make([]float32, len(ix.terms))
	ix.off = make([]uint32, len(ix.terms)+1)
	for i, t := range ix.terms {
		ix.idf[i] = simIDF(n, int(df[t]))
	}
	for _, tw := range docTerms {
		for _, t := range tw {
			ti, _ := slices.BinarySearch(ix.terms, t.term)
			ix.off[ti+1]++
		}
	}
	for i := range ix.terms {
		ix.off[i+1] += ix.off[i]
	}
	total := ix.off[len(ix.terms)]
	ix.pdoc = make([]uint32, total)
	ix.pw = make([]uint16, total)
	fill := slices.Clone(ix.off[:len(ix.terms)])
	for d, tw := range docTerms {
		for _, t := range tw {
			ti, _ := slices.BinarySearch(ix.terms, t.term)
			p := fill[ti]
			fill[ti]++
			ix.pdoc[p] = uint32(d)
			ix.pw[p] = uint16(math.Round(float64(min(max(t.w, 0), 1)) * similarQuant))
		}
	}
	strOf := map[string]int32{}
	setOf := map[[4]int32]int32{}
	for i := range ex {
		e := &ex[i]
		var set [4]int32
		for fi, f := range Fields {
			v := e.label(f)
			if f == FieldTags {
				v = strings.Join(e.Tags, ", ")
			}
			v = clipString(v, maxSimilarLabel)
			if v == "" {
				set[fi] = -1
				continue
			}
			si, ok := strOf[v]
			if !ok {
				si = int32(len(ix.strs))
				ix.strs = append(ix.strs, v)
				strOf[v] = si
			}
			set[fi] = si
		}
		si, ok := setOf[set]
		if !ok {
			si = int32(len(ix.sets))
			ix.sets = append(ix.sets, set)
			setOf[set] = si
		}
		ix.docs[i] = simDoc{id: clipString(e.ID, maxSimilarID), subject: clipString(e.Subject, maxSimilarSubject), set: si}
	}
	return ix, nil
}

// clipString makes s valid UTF-8 and at most n bytes, cut at a rune
// boundary.
func clipString(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	return truncateUTF8(s, n)
}

// HasSimilar reports whether the model carries a similar-ticket index
// (models saved before the index existed do not).
func (m *Model) HasSimilar() bool { return m.sim != nil }

// SimilarDocs is the number of examples in the similar-ticket index.
func (m *Model) SimilarDocs() int {
	if m.sim == nil {
		return 0
	}
	return len(m.sim.docs)
}

// Similar returns the k training examples most similar to the ticket, most
// similar first, leaving out those with no term in common; nil when the
// model has no index. It is safe for concurrent use.
func (m *Model) Similar(subject, body string, k int) []SimilarTicket {
	ix := m.sim
	if ix == nil || k <= 0 {
		return nil
	}
	s, _ := ix.pool.Get().(*simScratch)
	if s == nil {
		s = &simScratch{tf: map[uint32]float32{}, scores: make([]float32, len(ix.docs))}
	}
	defer ix.pool.Put(s)
	simTerms(s, subject, body, float32(m.meta.Features.SubjectWeight))
	s.q = s.q[:0]
	for t, f := range s.tf {
		if i, ok := slices.BinarySearch(ix.terms, t); ok {
			s.q = append(s.q, termWeight{uint32(i), (1 + float32(math.Log(float64(f)))) * ix.idf[i]})
		}
	}
	s.q = pruneNormalize(s.q, ix.termsPerDoc)
	s.touched = s.touched[:0]
	for _, q := range s.q {
		qw := q.w / similarQuant
		for p := ix.off[q.term]; p < ix.off[q.term+1]; p++ {
			d := ix.pdoc[p]
			if ix.pw[p] == 0 {
				continue
			}
			if s.scores[d] == 0 {
				s.touched = append(s.touched, int32(d))
			}
			s.scores[d] += qw * float32(ix.pw[p])
		}
	}
	type hit struct {
		doc   int32
		score float32
	}
	top := make([]hit, 0, k+1)
	for _, d := range s.touched {
		sc := s.scores[d]
		s.scores[d] = 0
		if len(top) == k && (sc < top[k-1].score || sc == top[k-1].score && d > top[k-1].doc) {
			continue
		}
		h := hit{d, sc}
		i, _ := slices.BinarySearchFunc(top, h, func(a, b hit) int {
			if c := cmp.Compare(b.score, a.score); c != 0 {
				return c
			}
			return cmp.Compare(a.doc, b.doc)
		})
		top = slices.Insert(top, i, h)
		if len(top) > k {
			top = top[:k]
		}
	}
	out := make([]SimilarTicket, len(top))
	for i, h := range top {
		doc := &ix.docs[h.doc]
		st := SimilarTicket{ExampleID: doc.id, Subject: doc.subject, Similarity: min(float64(h.score), 1),
			Labels: make(map[string]string, 4)}
		if id, err := strconv.ParseInt(doc.id, 10, 64); err == nil && id > 0 {
			st.TicketID = id
		}
		for fi, si := range ix.sets[doc.set] {
			if si >= 0 {
				st.Labels[Fields[fi]] = ix.strs[si]
			}
		}
		out[i] = st
	}
	return out
}

// bytes is the memory the index holds (slices and strings, not map or
// slice headers).
func (ix *similarIndex) bytes() int {
	b := 4*len(ix.terms) + 4*len(ix.idf) + 4*len(ix.off) + 4*len(ix.pdoc) + 2*len(ix.pw) + 16*len(ix.sets)
	for _, d := range ix.docs {
		b += 40 + len(d.id) + len(d.subject)
	}
	for _, s := range ix.strs {
		b += 16 + len(s)
	}
	return b
}
