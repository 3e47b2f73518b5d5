package classify

import (
	"fmt"
	"math"
	"unicode"
	"unicode/utf8"
)

// FeatureOptions configure how text becomes a feature vector. They are
// stored in the model so prediction repeats exactly what training did.
// Zero fields take the defaults noted.
type FeatureOptions struct {
	// HashBits is the log2 of the hash space (default 20, range 12..24).
	HashBits int `json:"hash_bits"`
	// CharMinN and CharMaxN bound the character n-grams taken within word
	// boundaries (defaults 2 and 5). They carry German compounds and
	// inflections without a language-specific stemmer.
	CharMinN int `json:"char_min_n"`
	CharMaxN int `json:"char_max_n"`
	// NoWordBigrams switches off word bigrams.
	NoWordBigrams bool `json:"no_word_bigrams,omitempty"`
	// SubjectWeight multiplies the term frequency of subject tokens
	// (default 2); subject words also get their own namespace, so a word
	// in the subject and the same word in the body are separate features.
	SubjectWeight float64 `json:"subject_weight"`
	// MinDF drops features seen in fewer training documents (default 2).
	MinDF int `json:"min_df"`
	// CharWeight scales the separately normalised character block against
	// the word block (default 1).
	CharWeight float64 `json:"char_weight"`
}

func (o FeatureOptions) withDefaults() FeatureOptions {
	if o.HashBits == 0 {
		o.HashBits = 20
	}
	if o.CharMinN == 0 {
		o.CharMinN = 2
	}
	if o.CharMaxN == 0 {
		o.CharMaxN = 5
	}
	if o.SubjectWeight == 0 {
		o.SubjectWeight = 2
	}
	if o.MinDF == 0 {
		o.MinDF = 2
	}
	if o.CharWeight == 0 {
		o.CharWeight = 1
	}
	return o
}

func (o FeatureOptions) validate() error {
	switch {
	case o.HashBits < 12 || o.HashBits > 24:
		return fmt.Errorf("hash bits %d outside 12..24", o.HashBits)
	case o.CharMinN < 1 || o.CharMaxN < o.CharMinN || o.CharMaxN > 8:
		return fmt.Errorf("char n-gram range %d..%d invalid (1 <= min <= max <= 8)", o.CharMinN, o.CharMaxN)
	case !(o.SubjectWeight > 0) || o.SubjectWeight > 100:
		return fmt.Errorf("subject weight %v outside (0, 100]", o.SubjectWeight)
	case o.MinDF < 1:
		return fmt.Errorf("min df %d < 1", o.MinDF)
	case !(o.CharWeight > 0) || o.CharWeight > 100:
		return fmt.Errorf("char weight %v outside (0, 100]", o.CharWeight)
	}
	return nil
}

// Namespaces keep word, bigram, subject and character features apart in
// the one hash space.
const (
	seedWord    uint64 = 0xcbf29ce484222325
	seedSubject uint64 = 0x84222325cbf29ce4
	seedChar    uint64 = 0x9e3779b97f4a7c15
	seedBigram  uint64 = 0xc2b2ae3d27d4eb4f
	fnvPrime    uint64 = 0x100000001b3
)

// Feature blocks are L2-normalised separately (as a union of a word and a
// character TF-IDF vectoriser would be), so the many character n-grams do
// not drown the few words.
const (
	blockWord = 0
	blockChar = 1
	blockBit  = 1 << 31
)

func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func hashString(seed uint64, s []byte) uint64 {
	h := seed
	for _, c := range s {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// termTable accumulates term frequencies per feature key (bucket | block
// bit) in an open-addressing table that is reused across documents.
type termTable struct {
	keys []uint32 // key+1; 0 = empty
	vals []float32
	used []int32
}

func (t *termTable) reset() {
	for _, s := range t.used {
		t.keys[s] = 0
		t.vals[s] = 0
	}
	t.used = t.used[:0]
}

func (t *termTable) add(key uint32, w float32) {
	if 2*(len(t.used)+1) > len(t.keys) {
		t.grow()
	}
	mask := uint32(len(t.keys) - 1)
	k := key + 1
	s := (k * 0x9e3779b1) & mask
	for {
		switch t.keys[s] {
		case k:
			t.vals[s] += w
			return
		case 0:
			t.keys[s] = k
			t.vals[s] = w
			t.used = append(t.used, int32(s))
			return
		}
		s = (s + 1) & mask
	}
}

func (t *termTable) grow() {
	n := 2 * len(t.keys)
	if n < 1024 {
		n = 1024
	}
	oldKeys, oldVals, oldUsed := t.keys, t.vals, t.used
	t.keys = make([]uint32, n)
	t.vals = make([]float32, n)
	t.used = make([]int32, 0, n/2)
	for _, s := range oldUsed {
		t.add(oldKeys[s]-1, oldVals[s])
	}
}

// extractor turns normalised text into hashed term frequencies.
type extractor struct {
	opt   FeatureOptions
	shift uint
	pad   []byte
	roff  []int
}

func newExtractor(opt FeatureOptions) *extractor {
	return &extractor{opt: opt, shift: uint(64 - opt.HashBits)}
}

func (e *extractor) bucket(h uint64) uint32 { return uint32(mix64(h) >> e.shift) }

// addText adds the features of normalised text to t with weight w; subject
// marks the subject, whose words are also hashed into their own namespace.
func (e *extractor) addText(t *termTable, text []byte, w float32, subject bool) {
	var prev uint64
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
		h := hashString(seedWord, tok)
		t.add(e.bucket(h), w)
		if subject {
			t.add(e.bucket(hashString(seedSubject, tok)), w)
		}
		if !e.opt.NoWordBigrams && havePrev {
			t.add(e.bucket(seedBigram^(prev*fnvPrime+h)), w)
		}
		prev, havePrev = h, true
		if tok[0] == '_' && len(tok) > 1 && tok[len(tok)-1] == '_' {
			continue // placeholder: a word feature only
		}
		e.addChars(t, tok, w)
	}
}

// addChars adds the character n-grams of one word padded with a space on
// both sides, like scikit-learn's char_wb analyser.
func (e *extractor) addChars(t *termTable, tok []byte, w float32) {
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
				t.add(e.bucket(h)|blockBit, w)
			}
		}
	}
}

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
}

// vectorizer maps hashed term frequencies to the model's columns and
// weights them: sublinear TF times IDF, each block L2-normalised.
type vectorizer struct {
	colOf      []int32 // bucket -> column, -1 when the bucket was pruned
	idf        []float32
	charWeight float32
}

// sparse is one weighted document vector.
type sparse struct {
	cols []int32
	vals []float32
}

// vectorize weights hashed term frequencies (keys[i] = bucket | block bit,
// tfs[i] its frequency) into out. Training and prediction both go through
// here, so a document gets the same vector in both.
func (v *vectorizer) vectorize(keys []uint32, tfs []float32, out *sparse) {
	out.cols, out.vals = out.cols[:0], out.vals[:0]
	var ss [2]float64
	for i, key := range keys {
		col := v.colOf[key&^blockBit]
		if col < 0 {
			continue
		}
		tf := tfs[i]
		x := v.idf[col]
		if tf != 1 {
			x *= 1 + float32(math.Log(float64(tf)))
		}
		if key&blockBit != 0 {
			ss[1] += float64(x) * float64(x)
			col |= math.MinInt32 // mark the block in the sign bit until scaled
		} else {
			ss[0] += float64(x) * float64(x)
		}
		out.cols = append(out.cols, col)
		out.vals = append(out.vals, x)
	}
	var scale [2]float32
	if ss[0] > 0 {
		scale[0] = float32(1 / math.Sqrt(ss[0]))
	}
	if ss[1] > 0 {
		scale[1] = v.charWeight * float32(1/math.Sqrt(ss[1]))
	}
	for i, c := range out.cols {
		if c < 0 {
			out.cols[i] = c & math.MaxInt32
			out.vals[i] *= scale[1]
		} else {
			out.vals[i] *= scale[0]
		}
	}
}

// entries appends the table's keys and frequencies in insertion order.
func (t *termTable) entries(keys []uint32, tfs []float32) ([]uint32, []float32) {
	for _, s := range t.used {
		keys = append(keys, t.keys[s]-1)
		tfs = append(tfs, t.vals[s])
	}
	return keys, tfs
}
