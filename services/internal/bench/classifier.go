package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/autotriage/autotriage/services/internal/classify"
)

// runClassifier is sections 1 and 2: per dataset, a child process trains on
// train.jsonl (time, model size, peak memory) and saves the model; this
// process loads it, evaluates it on test.jsonl and times prediction. A last
// child loads the largest model to measure what holding it costs.
func runClassifier(ctx context.Context, o *Options, rep *Report, logf func(string, ...any)) error {
	dirs, err := datasetDirs(o.Datasets)
	if err != nil {
		return err
	}
	baselines, bErr := parseBaselines(filepath.Join(o.Datasets, "README.md"))
	if bErr != nil {
		rep.Notes = append(rep.Notes, "scikit-learn figures unavailable: "+bErr.Error())
	}
	rep.Sklearn = "from datasets/README.md (Debian's python3-sklearn is not importable by /usr/bin/python3 here)"
	if py := sklearnPython(ctx); py != "" && o.want(SecQuality) {
		logf("quality: scikit-learn importable; recomputing the baselines (this takes minutes)")
		if re, err := recomputeSklearn(ctx, py, dirs, o.DatasetLimit); err == nil {
			baselines = append(baselines, re...)
			rep.Sklearn = "recomputed in this run with /usr/bin/python3 and scikit-learn (rows marked recomputed), beside datasets/README.md"
		} else {
			rep.Notes = append(rep.Notes, "recomputing scikit-learn failed: "+err.Error())
		}
	}
	tmp, err := os.MkdirTemp("", "autotriage-bench-models-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var lastModel *classify.Model
	var lastTest []classify.Example
	var lastName string
	var largest string
	var largestBytes int64
	var largestName string
	for _, dir := range dirs {
		name := filepath.Base(dir)
		modelPath := filepath.Join(tmp, name+".model")
		logf("classifier: training on %s (child process)", name)
		tr, err := runChildProc(ctx, o, envChild+"=train", envDir+"="+dir, envLimit+"="+fmt.Sprint(o.DatasetLimit), envModel+"="+modelPath)
		if err != nil {
			return err
		}
		if tr.ModelBytes > largestBytes {
			largest, largestBytes, largestName = modelPath, tr.ModelBytes, name
		}
		f, err := os.Open(modelPath)
		if err != nil {
			return err
		}
		m, err := classify.Load(f)
		f.Close()
		if err != nil {
			return err
		}
		testLimit := 0
		if o.DatasetLimit > 0 {
			testLimit = max(o.DatasetLimit/3, 50)
		}
		test, err := loadSample(filepath.Join(dir, "test.jsonl"), testLimit)
		if err != nil {
			return err
		}
		logf("classifier: evaluating %s on %d test tickets", name, len(test))
		ev := classify.Evaluate(m, test)
		for _, f := range ev.Fields {
			row := QualityRow{
				Dataset: name, Label: f.Field, Classes: len(f.Classes), Train: tr.Examples, Test: f.N,
				Accuracy: f.Accuracy, MacroF1: f.MacroF1, ECE: f.ECE,
				Cov90: f.CoverageAtPrecision(0.90), Cov95: f.CoverageAtPrecision(0.95),
			}
			for _, b := range baselines {
				if b.Dataset == name && b.Label == f.Field {
					row.Sklearn = append(row.Sklearn, b)
				}
			}
			if o.want(SecQuality) {
				rep.Quality = append(rep.Quality, row)
			}
		}
		if !o.want(SecSpeed) {
			continue
		}
		sp := SpeedRow{
			Dataset: name, TrainSeconds: tr.TrainSeconds, ModelBytes: tr.ModelBytes, TrainPeakRSS: tr.HWM,
			FieldsTrained: tr.Fields, ModelID: short(tr.ModelID), Workers: tr.Workers,
		}
		if tr.Examples > 0 {
			sp.TrainUsPerTick = tr.TrainSeconds * 1e6 / float64(tr.Examples)
			sp.OneFitUsPerTick = tr.OneFitSeconds * 1e6 / float64(tr.Examples)
		}
		sklearnSpeed(&sp, baselines)
		logf("classifier: timing prediction on %s", name)
		sp.PredictP50Us, sp.PredictP99Us, sp.PredictN = predictLatency(m, test, o.Quick)
		texts := make([][2]string, len(test))
		for i, e := range test {
			texts[i] = [2]string{e.Subject, e.Body}
		}
		sp.Batch1PerSec = batchRate(m, texts, 1)
		sp.BatchAllPerSec = batchRate(m, texts, gomaxprocs())
		sp.BatchPerCoreSec = sp.BatchAllPerSec / float64(gomaxprocs())
		rep.Speed = append(rep.Speed, sp)
		logf("classifier: timing explanations and similar tickets on %s", name)
		train, err := loadSample(filepath.Join(dir, "train.jsonl"), o.DatasetLimit)
		if err != nil {
			return err
		}
		ex, err := classify.MeasureExplain(ctx, m, train, test, explainQueries(o))
		if err != nil {
			return err
		}
		row := ExplainRow{Dataset: name, History: "its train split", ExplainReport: *ex}
		if rest := tr.TrainSeconds - ex.IndexBuildSeconds; rest > 0 {
			row.TrainGrowth = ex.IndexBuildSeconds / rest
		}
		rep.Explain = append(rep.Explain, row)
		lastModel, lastTest, lastName = m, test, name
	}
	if o.want(SecSpeed) && lastModel != nil {
		history, err := explainHistory(dirs, lastName, explainHistoryTickets)
		if err != nil {
			return err
		}
		logf("classifier: timing explanations and similar tickets over %d history tickets", len(history))
		ex, err := classify.MeasureExplain(ctx, lastModel, history, lastTest, explainQueries(o))
		if err != nil {
			return err
		}
		rep.Explain = append(rep.Explain, ExplainRow{Dataset: lastName, History: fmt.Sprintf("%d tickets of every dataset", len(history)), Scale: true, ExplainReport: *ex})
	}
	if o.want(SecSpeed) && largest != "" {
		logf("classifier: memory of a process holding the %s model (child process)", largestName)
		h, err := runChildProc(ctx, o, envChild+"=hold", envModel+"="+largest)
		if err != nil {
			return err
		}
		rep.HoldMem = &HoldMem{Dataset: largestName, ModelBytes: largestBytes, BaselineRSS: h.BaselineRSS, RSS: h.RSS, HWM: h.HWM}
	}
	return nil
}

// datasetDirs lists the subdirectories of base with both split files.
func datasetDirs(base string) ([]string, error) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return nil, fmt.Errorf("datasets: %w (set AUTOTRIAGE_DATASETS)", err)
	}
	var out []string
	for _, e := range ents {
		d := filepath.Join(base, e.Name())
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "train.jsonl")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "test.jsonl")); err != nil {
			continue
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no dataset (train.jsonl + test.jsonl) under %s", base)
	}
	sort.Strings(out)
	return out, nil
}

// predictLatency times single-ticket Predict calls over the test texts,
// cycling through them for at least 20,000 calls (quick: 3,000) or 10 s.
func predictLatency(m *classify.Model, test []classify.Example, quick bool) (p50, p99 float64, n int) {
	want := 20000
	if quick {
		want = 3000
	}
	want = max(want, len(test))
	for i := range min(200, len(test)) { // warm the pools and caches
		m.Predict(test[i].Subject, test[i].Body)
	}
	lat := make([]time.Duration, 0, want)
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < want; i++ {
		e := &test[i%len(test)]
		t0 := time.Now()
		m.Predict(e.Subject, e.Body)
		lat = append(lat, time.Since(t0))
		if i%1000 == 999 && time.Now().After(deadline) {
			break
		}
	}
	slices.Sort(lat)
	return us(lat[len(lat)/2]), us(lat[min(len(lat)-1, len(lat)*99/100)]), len(lat)
}

// batchRate is tickets per second through PredictBatch with workers, the
// median of three passes over the texts.
func batchRate(m *classify.Model, texts [][2]string, workers int) float64 {
	var rates []float64
	for range 3 {
		t0 := time.Now()
		m.PredictBatch(texts, workers)
		rates = append(rates, float64(len(texts))/time.Since(t0).Seconds())
	}
	slices.Sort(rates)
	return rates[1]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// sklearnSpeed fills a speed row's scikit-learn times from the rows of its
// dataset: the ones recomputed in this run when there are any (same
// machine, same moment), else the README's.
func sklearnSpeed(sp *SpeedRow, baselines []SklearnRow) {
	src := "datasets/README.md"
	for _, b := range baselines {
		if b.Dataset == sp.Dataset && b.Source == "recomputed" && b.TrainUsPerTicket > 0 {
			src = "recomputed"
		}
	}
	bestF1 := 0.0
	for _, b := range baselines {
		if b.Dataset != sp.Dataset || b.Source != src {
			continue
		}
		sp.SklearnSource = src
		if sp.SklearnPredUs == 0 || b.PredictUsPerTick < sp.SklearnPredUs {
			sp.SklearnPredUs = b.PredictUsPerTick
		}
		if sp.SklearnTrainUs == 0 || b.TrainUsPerTicket < sp.SklearnTrainUs {
			sp.SklearnTrainUs = b.TrainUsPerTicket
		}
		if b.MacroF1 > bestF1 {
			bestF1, sp.SklearnBestTrainUs = b.MacroF1, b.TrainUsPerTicket
		}
	}
}

// explainHistoryTickets is the history size the similar-ticket targets are
// stated for.
const explainHistoryTickets = 50_000

func explainQueries(o *Options) int {
	if o.Quick {
		return 1000
	}
	return 5000
}

// explainHistory is up to n tickets for the similar-ticket index at scale:
// every dataset's train split, then the test splits of the datasets other
// than the one whose test tickets are the queries.
func explainHistory(dirs []string, queryName string, n int) ([]classify.Example, error) {
	var out []classify.Example
	for _, split := range []string{"train.jsonl", "test.jsonl"} {
		for _, dir := range dirs {
			if split == "test.jsonl" && filepath.Base(dir) == queryName {
				continue
			}
			ex, err := classify.LoadJSONL(filepath.Join(dir, split))
			if err != nil {
				return nil, err
			}
			out = append(out, ex...)
			if len(out) >= n {
				return out[:n], nil
			}
		}
	}
	return out, nil
}
