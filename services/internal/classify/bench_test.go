package classify

import (
	"context"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

var (
	benchMu     sync.Mutex
	benchModels = map[string]*Model{}
	benchTests  = map[string][]Example{}
)

// datasetModel trains (once per process) a model on a shared dataset.
func datasetModel(b *testing.B, dir string) (*Model, []Example) {
	benchMu.Lock()
	defer benchMu.Unlock()
	if m, ok := benchModels[dir]; ok {
		return m, benchTests[dir]
	}
	train, err := LoadJSONL(filepath.Join(dir, "train.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	test, err := LoadJSONL(filepath.Join(dir, "test.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	m, err := Train(context.Background(), train, TrainOptions{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	benchModels[dir], benchTests[dir] = m, test
	return m, test
}

// BenchmarkPredictSingle times one ticket through Predict (normalisation,
// features, all fields), cycling over the dataset's test tickets.
func BenchmarkPredictSingle(b *testing.B) {
	for _, dir := range datasetDirs(b) {
		b.Run(filepath.Base(dir), func(b *testing.B) {
			m, test := datasetModel(b, dir)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				e := &test[i%len(test)]
				m.Predict(e.Subject, e.Body)
			}
		})
	}
}

// BenchmarkPredictBatch times PredictBatch over the whole test split; the
// reported time is per ticket.
func BenchmarkPredictBatch(b *testing.B) {
	for _, dir := range datasetDirs(b) {
		b.Run(filepath.Base(dir), func(b *testing.B) {
			m, test := datasetModel(b, dir)
			in := make([][2]string, len(test))
			for i, e := range test {
				in[i] = [2]string{e.Subject, e.Body}
			}
			b.ResetTimer()
			for b.Loop() {
				m.PredictBatch(in, 0)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/ticket")
		})
	}
}

// BenchmarkTrain trains on each shared dataset, cross-validation
// included; run with -benchtime=1x. cpu-s/op is the process CPU time per
// training, which separates the work from the load of a shared machine.
func BenchmarkTrain(b *testing.B) {
	for _, dir := range datasetDirs(b) {
		b.Run(filepath.Base(dir), func(b *testing.B) {
			train, err := LoadJSONL(filepath.Join(dir, "train.jsonl"))
			if err != nil {
				b.Fatal(err)
			}
			c0 := cpuSeconds()
			for b.Loop() {
				if _, err := Train(context.Background(), train, TrainOptions{Seed: 1}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((cpuSeconds()-c0)/float64(b.N), "cpu-s/op")
		})
	}
}

// cpuSeconds is the user and system CPU time of the process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
