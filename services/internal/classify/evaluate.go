package classify

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"time"
)

// Evaluate measures the model on labelled examples, per field it predicts
// (examples without a label for a field are left out of that field).
func Evaluate(m *Model, examples []Example) *Report {
	rep := &Report{}
	// One prediction per example, shared by all fields.
	res := make([]Result, len(examples))
	_ = parallel(context.Background(), 0, len(examples), func(i int) error {
		res[i] = m.Predict(examples[i].Subject, examples[i].Body)
		return nil
	})
	for fi, info := range m.meta.Fields {
		if info.MultiLabel {
			rep.Fields = append(rep.Fields, evalTags(&info, examples, res, fi))
			continue
		}
		labels := slices.Clone(info.Labels)
		for i := range examples {
			if l := examples[i].label(info.Name); l != "" && !slices.Contains(labels, l) {
				labels = append(labels, l) // a label the model never saw: always wrong
			}
		}
		index := map[string]int{}
		for k, l := range labels {
			index[l] = k
		}
		K := len(labels)
		var y []int
		var probs []float64
		for i := range examples {
			l := examples[i].label(info.Name)
			if l == "" {
				continue
			}
			y = append(y, index[l])
			row := make([]float64, K)
			for _, lp := range res[i].Fields[fi].Labels {
				row[index[lp.Label]] = lp.Probability
			}
			probs = append(probs, row...)
		}
		rep.Fields = append(rep.Fields, singleLabelReport(info.Name, labels, y, probs))
	}
	return rep
}

func evalTags(info *FieldInfo, examples []Example, res []Result, fi int) *FieldReport {
	K := len(info.Labels)
	var truth [][]bool
	var probs []float64
	for i := range examples {
		if examples[i].Tags == nil {
			continue
		}
		t := make([]bool, K)
		for _, tag := range examples[i].Tags {
			if k, ok := slices.BinarySearch(info.Labels, tag); ok {
				t[k] = true
			}
		}
		truth = append(truth, t)
		row := make([]float64, K)
		for _, lp := range res[i].Fields[fi].Labels {
			k, _ := slices.BinarySearch(info.Labels, lp.Label)
			row[k] = lp.Probability
		}
		probs = append(probs, row...)
	}
	return multiLabelReport(info.Name, info.Labels, truth, probs, info.TagThresholds)
}

// Baseline is a published reference figure for a dataset field.
type Baseline struct {
	Model    string
	Accuracy float64
	MacroF1  float64
}

// Baselines are the scikit-learn figures of the shared datasets' README
// (TF-IDF word 1–2 + char_wb 2–5 grams), keyed by dataset then field.
var Baselines = map[string]map[string][]Baseline{
	"banking77": {FieldGroup: {
		{"LinearSVC", 0.9117, 0.9118},
		{"LogReg", 0.9123, 0.9126},
	}},
	"it-service-tickets": {FieldGroup: {
		{"LinearSVC", 0.8618, 0.8652},
		{"LogReg", 0.8645, 0.8683},
	}},
}

// DatasetReport is the outcome of training on a dataset's train split and
// evaluating on its test split.
type DatasetReport struct {
	Name          string
	TrainExamples int
	TestExamples  int
	TrainTime     time.Duration
	ModelBytes    int
	ModelID       string
	Test          *Report
	// Single-ticket Predict latency over the test tickets.
	PredictP50 time.Duration
	PredictP99 time.Duration
	Baselines  map[string][]Baseline
}

// BenchmarkDataset trains on dir/train.jsonl, evaluates on dir/test.jsonl
// and times single-ticket prediction; the dataset name is dir's base name.
func BenchmarkDataset(ctx context.Context, dir string, opts TrainOptions) (*DatasetReport, error) {
	train, err := LoadJSONL(filepath.Join(dir, "train.jsonl"))
	if err != nil {
		return nil, err
	}
	test, err := LoadJSONL(filepath.Join(dir, "test.jsonl"))
	if err != nil {
		return nil, err
	}
	name := filepath.Base(dir)
	r := &DatasetReport{Name: name, TrainExamples: len(train), TestExamples: len(test), Baselines: Baselines[name]}
	start := time.Now()
	m, err := Train(ctx, train, opts)
	if err != nil {
		return nil, fmt.Errorf("benchmark %s: %w", name, err)
	}
	r.TrainTime = time.Since(start)
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		return nil, err
	}
	r.ModelBytes = buf.Len()
	r.ModelID = m.ID()
	r.Test = Evaluate(m, test)
	lat := make([]time.Duration, 0, len(test))
	for i := range test {
		t0 := time.Now()
		m.Predict(test[i].Subject, test[i].Body)
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	if len(lat) > 0 {
		r.PredictP50 = lat[len(lat)/2]
		r.PredictP99 = lat[len(lat)*99/100]
	}
	return r, nil
}
