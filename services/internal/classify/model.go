package classify

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Metadata describes a model: everything in the artifact except the
// weight matrices. It is part of the content hash.
type Metadata struct {
	Features FeatureOptions  `json:"features"`
	Fields   []FieldInfo     `json:"fields"`
	Training TrainingSummary `json:"training"`
}

// FieldInfo describes the model of one label field.
type FieldInfo struct {
	Name       string   `json:"name"`
	Labels     []string `json:"labels"`
	MultiLabel bool     `json:"multi_label,omitempty"`
	// Loss and Cost are the loss and cost chosen by cross-validation
	// (single-label).
	Loss string  `json:"loss,omitempty"`
	Cost float64 `json:"cost,omitempty"`
	// Temperature scales the scores before the softmax (single-label).
	Temperature float64 `json:"temperature,omitempty"`
	// Per tag (multi-label): SVM cost, Platt sigmoid parameters and the
	// probability threshold maximising F1 on cross-validation.
	TagCosts      []float64 `json:"tag_costs,omitempty"`
	PlattA        []float64 `json:"platt_a,omitempty"`
	PlattB        []float64 `json:"platt_b,omitempty"`
	TagThresholds []float64 `json:"tag_thresholds,omitempty"`
	// HeldOut is the quality measured on cross-validation predictions of the
	// training set (calibrated as the final model is), nil when the field
	// had too few examples for cross-validation.
	HeldOut *FieldReport `json:"held_out,omitempty"`
}

// TrainingSummary describes the training data and procedure.
type TrainingSummary struct {
	Examples    int                       `json:"examples"`
	Languages   map[string]int            `json:"languages"`
	LabelCounts map[string]map[string]int `json:"label_counts"`
	Columns     int                       `json:"columns"`
	Folds       int                       `json:"folds"`
	Costs       []float64                 `json:"costs"`
	LogCosts    []float64                 `json:"logistic_costs"`
	Loss        string                    `json:"loss"`
	ClassWeight string                    `json:"class_weight"`
	Seed        uint64                    `json:"seed"`
}

// fieldModel holds one field's weights: W is ncol×K row-major (the K
// weights of a column are adjacent, so a feature costs one cache line), B
// the per-label bias.
type fieldModel struct {
	info *FieldInfo
	W    []float32
	B    []float32
}

// Model is a trained classifier for all label fields. It is immutable and
// safe for concurrent use.
type Model struct {
	meta    Metadata
	buckets []uint32 // sorted hash buckets kept, index = column
	vec     vectorizer
	fields  []fieldModel
	sim     *similarIndex // nil: no similar-ticket index (older artifact or none built)
	id      string
	created time.Time
	pool    sync.Pool
}

// ID is the hex SHA-256 content hash of the artifact (weights and metadata,
// without the creation time): equal IDs mean equal models.
func (m *Model) ID() string { return m.id }

// Created is when the model was trained.
func (m *Model) Created() time.Time { return m.created }

// Metadata returns the model's description. The caller must not modify it.
func (m *Model) Metadata() *Metadata { return &m.meta }

// FieldNames lists the fields the model predicts.
func (m *Model) FieldNames() []string {
	out := make([]string, len(m.fields))
	for i, f := range m.fields {
		out[i] = f.info.Name
	}
	return out
}

// HasField reports whether the model predicts field.
func (m *Model) HasField(field string) bool { return m.fieldInfo(field) != nil }

func (m *Model) fieldInfo(field string) *FieldInfo {
	for i := range m.meta.Fields {
		if m.meta.Fields[i].Name == field {
			return &m.meta.Fields[i]
		}
	}
	return nil
}

// HeldOut returns the held-out quality of field recorded at training, nil
// when unknown.
func (m *Model) HeldOut(field string) *FieldReport {
	if f := m.fieldInfo(field); f != nil {
		return f.HeldOut
	}
	return nil
}

// LabelProb is a label with its calibrated probability.
type LabelProb struct {
	Label       string
	Probability float64
}

// FieldResult is the prediction for one field. Labels are sorted by
// decreasing probability. For single-label fields the probabilities form a
// distribution and Selected is the top label; for tags each probability is
// independent and Selected holds the tags at or above their threshold.
type FieldResult struct {
	Field      string
	MultiLabel bool
	Labels     []LabelProb
	Selected   []string
	// Terms explain the chosen label (PredictExplain only; nil otherwise).
	Terms []Term
}

// Top returns the most probable label (zero when there is none).
func (f FieldResult) Top() LabelProb {
	if len(f.Labels) == 0 {
		return LabelProb{}
	}
	return f.Labels[0]
}

// Confidence is the probability behind Selected: the top label's for a
// single-label field, the lowest selected tag's for tags (0 when none).
func (f FieldResult) Confidence() float64 {
	if !f.MultiLabel {
		return f.Top().Probability
	}
	if len(f.Selected) == 0 {
		return 0
	}
	c := 1.0
	for _, lp := range f.Labels {
		if slices.Contains(f.Selected, lp.Label) {
			c = min(c, lp.Probability)
		}
	}
	return c
}

// Result is the prediction for one ticket, one entry per model field.
// Empty reports that the ticket had no usable text (every field then holds
// the label priors the bias alone gives and should not be acted on).
type Result struct {
	Fields []FieldResult
	Empty  bool
}

// Field returns the result for field.
func (r Result) Field(name string) (FieldResult, bool) {
	for _, f := range r.Fields {
		if f.Field == name {
			return f, true
		}
	}
	return FieldResult{}, false
}

// scratch is the per-call working memory of prediction, pooled.
type scratch struct {
	text   []byte
	text2  []byte // the normalised body, kept for explanations
	table  termTable
	ext    *extractor
	keys   []uint32
	tfs    []float32
	vec    sparse
	scores []float64
	probs  []float64
}

func (m *Model) getScratch() *scratch {
	if s, ok := m.pool.Get().(*scratch); ok {
		return s
	}
	return &scratch{ext: newExtractor(m.meta.Features)}
}

// featurize computes the weighted document vector of a ticket into s.vec.
func (m *Model) featurize(s *scratch, subject, body string) {
	s.table.reset()
	featurizeInto(s.ext, &s.table, &s.text, subject, body)
	s.keys, s.tfs = s.table.entries(s.keys[:0], s.tfs[:0])
	m.vec.vectorize(s.keys, s.tfs, &s.vec)
}

// featurizeInto adds the hashed terms of a ticket to t.
func featurizeInto(e *extractor, t *termTable, buf *[]byte, subject, body string) {
	if subject != "" {
		*buf = normalizeAppend((*buf)[:0], subject)
		e.addText(t, *buf, float32(e.opt.SubjectWeight), true)
	}
	*buf = normalizeAppend((*buf)[:0], body)
	e.addText(t, *buf, 1, false)
}

// Predict classifies one ticket. It is safe for concurrent use.
func (m *Model) Predict(subject, body string) Result {
	s := m.getScratch()
	defer m.pool.Put(s)
	m.featurize(s, subject, body)
	return m.predictVec(s, 0)
}

// PredictTopK is Predict keeping only the k most probable labels per field
// (all when k <= 0); Selected tags are never dropped.
func (m *Model) PredictTopK(subject, body string, k int) Result {
	s := m.getScratch()
	defer m.pool.Put(s)
	m.featurize(s, subject, body)
	return m.predictVec(s, k)
}

// PredictBatch classifies tickets given as (subject, body) pairs, using
// up to workers goroutines (GOMAXPROCS when <= 0).
func (m *Model) PredictBatch(tickets [][2]string, workers int) []Result {
	out := make([]Result, len(tickets))
	_ = parallel(context.Background(), workers, len(tickets), func(i int) error {
		out[i] = m.Predict(tickets[i][0], tickets[i][1])
		return nil
	})
	return out
}

func (m *Model) predictVec(s *scratch, topK int) Result {
	res := Result{Fields: make([]FieldResult, len(m.fields)), Empty: len(s.vec.cols) == 0}
	for fi := range m.fields {
		f := &m.fields[fi]
		K := len(f.info.Labels)
		s.scores = append(s.scores[:0], make([]float64, K)...)
		scores := s.scores
		for k := range K {
			scores[k] = float64(f.B[k])
		}
		for j, c := range s.vec.cols {
			v := s.vec.vals[j]
			row := f.W[int(c)*K : int(c)*K+K]
			for k, w := range row {
				scores[k] += float64(v * w)
			}
		}
		s.probs = append(s.probs[:0], make([]float64, K)...)
		probs := s.probs
		fr := FieldResult{Field: f.info.Name, MultiLabel: f.info.MultiLabel}
		if f.info.MultiLabel {
			for k := range K {
				probs[k] = plattProb(scores[k], f.info.PlattA[k], f.info.PlattB[k])
				if probs[k] >= f.info.TagThresholds[k] {
					fr.Selected = append(fr.Selected, f.info.Labels[k])
				}
			}
		} else {
			softmaxInto(probs, scores, 1/f.info.Temperature)
		}
		fr.Labels = topLabels(f.info.Labels, probs, topK)
		if !f.info.MultiLabel && len(fr.Labels) > 0 {
			fr.Selected = []string{fr.Labels[0].Label}
		}
		res.Fields[fi] = fr
	}
	return res
}

// topLabels returns the k most probable labels, best first (ties by label
// order, so results are deterministic).
func topLabels(labels []string, probs []float64, k int) []LabelProb {
	if k <= 0 || k > len(labels) {
		k = len(labels)
	}
	out := make([]LabelProb, 0, k)
	for i, p := range probs {
		lp := LabelProb{labels[i], p}
		if len(out) < k {
			out = append(out, lp)
		} else if p > out[k-1].Probability {
			out[k-1] = lp
		} else {
			continue
		}
		for j := len(out) - 1; j > 0 && out[j].Probability > out[j-1].Probability; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
