package classify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// datasetsDir is where the shared labelled datasets live.
func datasetsDir() string {
	if d := os.Getenv("AUTOTRIAGE_DATASETS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "..", "shared", "datasets")
}

func datasetDirs(tb testing.TB) []string {
	base := datasetsDir()
	var out []string
	for _, name := range []string{"banking77", "it-service-tickets"} {
		d := filepath.Join(base, name)
		if _, err := os.Stat(filepath.Join(d, "train.jsonl")); err == nil {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		tb.Skipf("no datasets under %s (set AUTOTRIAGE_DATASETS)", base)
	}
	return out
}

// TestDatasetQuality trains on every shared dataset and prints the test
// quality next to the scikit-learn baselines. It takes about a minute, so
// it runs only with AUTOTRIAGE_DATASETS_FULL=1 and never under -short.
func TestDatasetQuality(t *testing.T) {
	if testing.Short() || os.Getenv("AUTOTRIAGE_DATASETS_FULL") != "1" {
		t.Skip("set AUTOTRIAGE_DATASETS_FULL=1 (and no -short) to train on the shared datasets")
	}
	for _, dir := range datasetDirs(t) {
		r, err := BenchmarkDataset(context.Background(), dir, TrainOptions{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(FormatDatasetReport(r))
	}
}

// FormatDatasetReport renders a report as a small text table.
func FormatDatasetReport(r *DatasetReport) string {
	s := fmt.Sprintf("%s: train %d, test %d, train time %v, model %.1f MB, predict p50 %v p99 %v, id %.12s\n",
		r.Name, r.TrainExamples, r.TestExamples, r.TrainTime.Round(time.Millisecond), float64(r.ModelBytes)/1e6, r.PredictP50, r.PredictP99, r.ModelID)
	for _, f := range r.Test.Fields {
		s += fmt.Sprintf("  %-8s ours      acc %.4f macroF1 %.4f ECE %.4f cov@90 %.3f cov@95 %.3f\n",
			f.Field, f.Accuracy, f.MacroF1, f.ECE, f.CoverageAtPrecision(0.90), f.CoverageAtPrecision(0.95))
		for _, b := range r.Baselines[f.Field] {
			s += fmt.Sprintf("  %-8s %-9s acc %.4f macroF1 %.4f\n", f.Field, b.Model, b.Accuracy, b.MacroF1)
		}
	}
	return s
}
