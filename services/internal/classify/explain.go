package classify

import (
	"cmp"
	"slices"
	"unicode/utf8"
)

// DefaultExplainTerms is the number of terms an explanation keeps per field
// when the caller asks for 0 or fewer.
const DefaultExplainTerms = 5

// Term is a word or a two-word phrase of the ticket (as normalised: case
// folded) with the sum of the contributions (document value × weight of the
// chosen label) of every feature cut from it: the word itself, its subject
// namespace feature, its character n-grams and, for a phrase, the word
// bigram. Positive pushes towards the label.
type Term struct {
	Text   string
	Weight float64
}

// PredictExplain is PredictTopK that also fills each field's Terms with the
// n (DefaultExplainTerms when n <= 0) terms that weighed most for the chosen
// label, strongest first: the top label of a single-label field, the most
// probable selected tag (none when no tag is selected). Only terms with a
// positive contribution are kept, so a term always weighs for the label.
//
// The attribution is exact: a feature's contribution is shared among the
// words it was cut from in proportion to their term frequency, so the
// weights of all terms (before the cut to n) add up to the field's score
// minus the bias and the features of placeholders (numbers, URLs, e-mail
// addresses: no words of the ticket). Predict does none of this work.
func (m *Model) PredictExplain(subject, body string, topK, n int) Result {
	if n <= 0 {
		n = DefaultExplainTerms
	}
	s := m.getScratch()
	defer m.pool.Put(s)
	s.table.reset()
	s.text = normalizeAppend(s.text[:0], subject)
	s.text2 = normalizeAppend(s.text2[:0], body)
	if subject != "" {
		s.ext.addText(&s.table, s.text, float32(s.ext.opt.SubjectWeight), true)
	}
	s.ext.addText(&s.table, s.text2, 1, false)
	s.keys, s.tfs = s.table.entries(s.keys[:0], s.tfs[:0])
	m.vec.vectorize(s.keys, s.tfs, &s.vec)
	res := m.predictVec(s, topK)
	if res.Empty {
		return res
	}
	m.explain(s, subject != "", &res, n)
	return res
}

// occurrence is one feature cut from one term of the ticket.
type occurrence struct {
	key  int32 // index into the ticket's kept features
	term int32 // index into the ticket's terms, -1 for a placeholder's
	w    float32
}

// explainer collects the occurrences of a ticket's kept features.
type explainer struct {
	keyIdx map[uint32]int32 // feature key -> index of kept features
	col    []int32
	val    []float32
	tf     []float32
	terms  []string
	termOf map[string]int32
	occ    []occurrence
}

func (x *explainer) term(s string) int32 {
	if i, ok := x.termOf[s]; ok {
		return i
	}
	i := int32(len(x.terms))
	x.terms = append(x.terms, s)
	x.termOf[s] = i
	return i
}

func (x *explainer) add(key uint32, w float32, term int32) {
	if i, ok := x.keyIdx[key]; ok {
		x.occ = append(x.occ, occurrence{key: i, term: term, w: w})
	}
}

func (m *Model) explain(s *scratch, hasSubject bool, res *Result, n int) {
	x := &explainer{keyIdx: make(map[uint32]int32, len(s.vec.cols)), termOf: map[string]int32{}}
	j := 0
	for i, key := range s.keys {
		col := m.vec.colOf[key&^blockBit]
		if col < 0 {
			continue
		}
		x.keyIdx[key] = int32(len(x.col))
		x.col = append(x.col, col)
		x.val = append(x.val, s.vec.vals[j])
		x.tf = append(x.tf, s.tfs[i])
		j++
	}
	if hasSubject {
		walkTerms(s.ext, x, s.text, float32(s.ext.opt.SubjectWeight), true)
	}
	walkTerms(s.ext, x, s.text2, 1, false)
	contrib := make([]float64, len(x.col))
	acc := make([]float64, len(x.terms))
	for fi := range m.fields {
		f := &m.fields[fi]
		fr := &res.Fields[fi]
		k := chosenLabel(f.info, fr)
		if k < 0 {
			continue
		}
		K := len(f.info.Labels)
		for i, c := range x.col {
			contrib[i] = float64(x.val[i]) * float64(f.W[int(c)*K+k]) / float64(x.tf[i])
		}
		clear(acc)
		for _, o := range x.occ {
			if o.term >= 0 {
				acc[o.term] += contrib[o.key] * float64(o.w)
			}
		}
		fr.Terms = topTerms(x.terms, acc, n)
	}
}

// chosenLabel is the index of the label a field's explanation is for, -1
// when there is none.
func chosenLabel(info *FieldInfo, fr *FieldResult) int {
	var want string
	if info.MultiLabel {
		for _, lp := range fr.Labels {
			if slices.Contains(fr.Selected, lp.Label) {
				want = lp.Label
				break
			}
		}
	} else if len(fr.Labels) > 0 {
		want = fr.Labels[0].Label
	}
	if want == "" {
		return -1
	}
	return slices.Index(info.Labels, want)
}

func topTerms(terms []string, acc []float64, n int) []Term {
	var out []Term
	for i, w := range acc {
		if w > 0 {
			out = append(out, Term{Text: terms[i], Weight: w})
		}
	}
	slices.SortFunc(out, func(a, b Term) int {
		if c := cmp.Compare(b.Weight, a.Weight); c != 0 {
			return c
		}
		return cmp.Compare(a.Text, b.Text)
	})
	if len(out) > n {
		out = out[:n]
	}
	return slices.Clip(out)
}

// walkTerms repeats extractor.addText, recording which term each feature
// comes from instead of counting it: a word's unigram, subject and
// character features come from the word, a bigram from the two words (from
// the other word alone when one is a placeholder, which is no word of the
// ticket). Placeholder unigrams are dropped. TestWalkTermsMatchesAddText
// holds the two in step.
func walkTerms(e *extractor, x *explainer, text []byte, w float32, subject bool) {
	var prev uint64
	var prevTok []byte
	havePrev := false
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRune(text[i:])
		if !isWordRune(r) {
			i += size
			havePrev = havePrev && r != '.' && r != '!' && r != '?' && r != ';'
			continue
		}
		j := i + size
		for j < len(text) {
			r2, s2 := utf8.DecodeRune(text[j:])
			if !isWordRune(r2) {
				break
			}
			j += s2
		}
		tok := text[i:j]
		i = j
		placeholder := tok[0] == '_' && len(tok) > 1 && tok[len(tok)-1] == '_'
		term := int32(-1)
		if !placeholder {
			term = x.term(string(tok))
		}
		h := hashString(seedWord, tok)
		x.add(e.bucket(h), w, term)
		if subject {
			x.add(e.bucket(hashString(seedSubject, tok)), w, term)
		}
		if !e.opt.NoWordBigrams && havePrev {
			prevPlaceholder := prevTok[0] == '_' && len(prevTok) > 1 && prevTok[len(prevTok)-1] == '_'
			bt := term
			switch {
			case placeholder && prevPlaceholder:
				bt = -1
			case placeholder:
				bt = x.term(string(prevTok))
			case !prevPlaceholder:
				bt = x.term(string(prevTok) + " " + string(tok))
			}
			x.add(e.bucket(seedBigram^(prev*fnvPrime+h)), w, bt)
		}
		prev, prevTok, havePrev = h, tok, true
		if placeholder {
			continue
		}
		walkChars(e, x, tok, w, term)
	}
}

// walkChars repeats extractor.addChars for one word.
func walkChars(e *extractor, x *explainer, tok []byte, w float32, term int32) {
	e.pad = append(append(append(e.pad[:0], ' '), tok...), ' ')
	e.roff = e.roff[:0]
	for i := 0; i < len(e.pad); {
		e.roff = append(e.roff, i)
		_, size := utf8.DecodeRune(e.pad[i:])
		i += size
	}
	nr := len(e.roff)
	e.roff = append(e.roff, len(e.pad))
	minN, maxN := e.opt.CharMinN, e.opt.CharMaxN
	for s := 0; s < nr; s++ {
		h := seedChar
		for n := 1; n <= maxN && s+n <= nr; n++ {
			for _, c := range e.pad[e.roff[s+n-1]:e.roff[s+n]] {
				h ^= uint64(c)
				h *= fnvPrime
			}
			if n >= minN {
				x.add(e.bucket(h)|blockBit, w, term)
			}
		}
	}
}
