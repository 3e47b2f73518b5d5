package trainer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/autotriage/autotriage/services/internal/classify"
)

// GateOptions tune the safety gate.
type GateOptions struct {
	// Resamples of the paired bootstrap (default 2000).
	Resamples int
	// Confidence of the two-sided interval of the accuracy difference
	// (default 0.95).
	Confidence float64
	// MinN is the fewest held-out tickets with a label for a field to be
	// judged; a field with fewer is reported and not judged.
	MinN int
	// Seed makes the bootstrap reproducible.
	Seed uint64
}

func (o GateOptions) withDefaults() GateOptions {
	if o.Resamples <= 0 {
		o.Resamples = 2000
	}
	if o.Confidence <= 0 || o.Confidence >= 1 {
		o.Confidence = 0.95
	}
	if o.MinN <= 0 {
		o.MinN = 20
	}
	return o
}

// FieldGate is the gate's finding for one field on the held-out tickets.
type FieldGate struct {
	Field string `json:"field"`
	// N is the held-out tickets with a label for the field.
	N int `json:"n"`
	// Challenger and Champion are the accuracies (tags: exact set match);
	// Champion is the majority-label baseline for a first model.
	Challenger float64 `json:"challenger_accuracy"`
	Champion   float64 `json:"champion_accuracy"`
	// Diff is Challenger - Champion; [Lo, Hi] its bootstrap interval.
	Diff float64 `json:"diff"`
	Lo   float64 `json:"diff_lo"`
	Hi   float64 `json:"diff_hi"`
	// Verdict: "better" (Lo > 0), "worse" (Hi < 0: worse beyond noise),
	// "same" (the interval holds 0), "unjudged" (too few tickets), "lost"
	// (the champion predicts the field, the challenger does not).
	Verdict string `json:"verdict"`
}

// GateResult is the gate's decision.
type GateResult struct {
	Pass bool `json:"pass"`
	// Against is "champion" or "baseline" (first model: the majority label
	// of the training tickets per field).
	Against string      `json:"against"`
	Reason  string      `json:"reason"`
	Fields  []FieldGate `json:"fields"`
}

// modelScorer scores a model's predictions; results are computed once per
// example and shared by every field.
func modelScorer(m *classify.Model, holdout []classify.Example) map[string][]int8 {
	res := m.PredictBatch(subjects(holdout), 0)
	out := map[string][]int8{}
	for _, field := range m.FieldNames() {
		s := make([]int8, len(holdout))
		for i := range holdout {
			truth, has := labelOf(&holdout[i], field)
			if !has {
				s[i] = -1
				continue
			}
			fr, ok := res[i].Field(field)
			if !ok {
				s[i] = 0
				continue
			}
			if field == classify.FieldTags {
				s[i] = b2i(sameSet(fr.Selected, truth))
			} else {
				s[i] = b2i(fr.Top().Label == truth[0])
			}
		}
		out[field] = s
	}
	return out
}

// baselineScorer predicts the most frequent training label of each
// single-label field (tags: the empty set), the sanity bar a first model
// must clear.
func baselineScorer(train, holdout []classify.Example, fields []string) map[string][]int8 {
	out := map[string][]int8{}
	for _, field := range fields {
		majority := ""
		if field != classify.FieldTags {
			counts := map[string]int{}
			for i := range train {
				if l, ok := labelOf(&train[i], field); ok {
					counts[l[0]]++
				}
			}
			best := -1
			for l, n := range counts {
				if n > best || (n == best && l < majority) {
					majority, best = l, n
				}
			}
		}
		s := make([]int8, len(holdout))
		for i := range holdout {
			truth, has := labelOf(&holdout[i], field)
			switch {
			case !has:
				s[i] = -1
			case field == classify.FieldTags:
				s[i] = b2i(len(truth) == 0)
			default:
				s[i] = b2i(truth[0] == majority)
			}
		}
		out[field] = s
	}
	return out
}

// Gate compares the challenger with the champion (or, when champion is nil,
// with the majority-label baseline) on the held-out tickets, field by field,
// with a paired bootstrap interval of the accuracy difference. It passes
// when no field is worse beyond noise (the interval's upper end below 0) and
// the challenger predicts every field the champion does.
//
// Paired, because both models answer the same tickets: resampling tickets
// (not each model's accuracy separately) keeps the strong correlation
// between the two and gives a far narrower, honest interval. A bootstrap
// rather than McNemar's test, because it yields an interval of the
// difference (how much worse, not only whether) that the lineage records,
// and works unchanged for the tags field's set-match score.
func Gate(challenger, champion *classify.Model, train, holdout []classify.Example, o GateOptions) GateResult {
	o = o.withDefaults()
	fields := challenger.FieldNames()
	ch := modelScorer(challenger, holdout)
	var base map[string][]int8
	res := GateResult{Against: "champion"}
	if champion == nil {
		res.Against = "baseline"
		base = baselineScorer(train, holdout, fields)
	} else {
		base = modelScorer(champion, holdout)
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x9a7e))
	var worse, lost []string
	for _, field := range fields {
		fg := pairedBootstrap(field, ch[field], base[field], o, rng)
		if base[field] == nil { // a field the champion lacks: judged against nothing
			fg.Verdict = "new"
		}
		if fg.Verdict == "worse" {
			worse = append(worse, fmt.Sprintf("%s %.3f vs %.3f (difference %+.3f, %.0f%% interval [%+.3f, %+.3f], n=%d)",
				field, fg.Challenger, fg.Champion, fg.Diff, 100*o.Confidence, fg.Lo, fg.Hi, fg.N))
		}
		res.Fields = append(res.Fields, fg)
	}
	if champion != nil {
		for _, field := range champion.FieldNames() {
			if !slices.Contains(fields, field) {
				lost = append(lost, field)
				res.Fields = append(res.Fields, FieldGate{Field: field, Verdict: "lost"})
			}
		}
	}
	sort.Slice(res.Fields, func(i, j int) bool { return res.Fields[i].Field < res.Fields[j].Field })
	switch {
	case len(worse) > 0:
		res.Reason = "worse than the " + res.Against + " beyond noise on " + strings.Join(worse, "; ")
	case len(lost) > 0:
		res.Reason = "no longer predicts " + strings.Join(lost, ", ") + " (too few labelled tickets to train it)"
	default:
		res.Pass = true
		res.Reason = "not worse than the " + res.Against + " beyond noise on any field"
	}
	return res
}

// pairedBootstrap resamples the tickets both scorers judged (score >= 0).
func pairedBootstrap(field string, a, b []int8, o GateOptions, rng *rand.Rand) FieldGate {
	fg := FieldGate{Field: field}
	var d []int8
	var sa, sb int
	for i := range a {
		if a[i] < 0 || b == nil || b[i] < 0 {
			continue
		}
		d = append(d, a[i]-b[i])
		sa += int(a[i])
		sb += int(b[i])
	}
	fg.N = len(d)
	if fg.N == 0 {
		fg.Verdict = "unjudged"
		return fg
	}
	n := float64(fg.N)
	fg.Challenger, fg.Champion = float64(sa)/n, float64(sb)/n
	fg.Diff = fg.Challenger - fg.Champion
	if fg.N < o.MinN {
		fg.Verdict = "unjudged"
		fg.Lo, fg.Hi = -1, 1
		return fg
	}
	means := make([]float64, o.Resamples)
	for r := range means {
		s := 0
		for range fg.N {
			s += int(d[rng.IntN(fg.N)])
		}
		means[r] = float64(s) / n
	}
	slices.Sort(means)
	alpha := (1 - o.Confidence) / 2
	fg.Lo = means[int(alpha*float64(o.Resamples-1))]
	fg.Hi = means[int((1-alpha)*float64(o.Resamples-1)+0.5)]
	switch {
	case fg.Hi < 0:
		fg.Verdict = "worse"
	case fg.Lo > 0:
		fg.Verdict = "better"
	default:
		fg.Verdict = "same"
	}
	return fg
}

func labelOf(ex *classify.Example, field string) ([]string, bool) {
	switch field {
	case classify.FieldGroup:
		return []string{ex.Group}, ex.Group != ""
	case classify.FieldPriority:
		return []string{ex.Priority}, ex.Priority != ""
	case classify.FieldType:
		return []string{ex.Type}, ex.Type != ""
	case classify.FieldTags:
		return ex.Tags, ex.Tags != nil
	}
	return nil, false
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func b2i(b bool) int8 {
	if b {
		return 1
	}
	return 0
}

func subjects(exs []classify.Example) [][2]string {
	out := make([][2]string, len(exs))
	for i := range exs {
		out[i] = [2]string{exs[i].Subject, exs[i].Body}
	}
	return out
}
