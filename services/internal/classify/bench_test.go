package classify

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
// peak-heap-MiB is the largest Go heap (live and not yet collected objects)
// and peak-rss-MiB the largest resident size of the process, both sampled
// every few milliseconds during the trainings (the RSS includes the test
// binary, the dataset and earlier sub-benchmarks' freed pages; the bench
// command's child-process figure is the one to compare across changes).
func BenchmarkTrain(b *testing.B) {
	for _, dir := range datasetDirs(b) {
		b.Run(filepath.Base(dir), func(b *testing.B) {
			train, err := LoadJSONL(filepath.Join(dir, "train.jsonl"))
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			peak := sampleMemory(5 * time.Millisecond)
			c0 := cpuSeconds()
			for b.Loop() {
				if _, err := Train(context.Background(), train, TrainOptions{Seed: 1}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((cpuSeconds()-c0)/float64(b.N), "cpu-s/op")
			heap, rss := peak()
			b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
			if rss > 0 {
				b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
			}
		})
	}
}

// sampleMemory samples the Go heap and the resident size every interval
// until the returned function is called, which reports their maxima.
func sampleMemory(interval time.Duration) func() (heap, rss uint64) {
	stop, done := make(chan struct{}), make(chan struct{})
	var maxHeap, maxRSS uint64
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	sample := func() {
		metrics.Read(s)
		maxHeap = max(maxHeap, s[0].Value.Uint64())
		maxRSS = max(maxRSS, residentBytes())
	}
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			sample()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		close(stop)
		<-done
		sample()
		return maxHeap, maxRSS
	}
}

// residentBytes is VmRSS from /proc/self/status, 0 where there is none.
func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuSeconds is the user and system CPU time of the process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkPredictExplain is BenchmarkPredictSingle with the explanation
// (PredictExplain, default terms): compare the two for its cost.
func BenchmarkPredictExplain(b *testing.B) {
	for _, dir := range datasetDirs(b) {
		b.Run(filepath.Base(dir), func(b *testing.B) {
			m, test := datasetModel(b, dir)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				e := &test[i%len(test)]
				m.PredictExplain(e.Subject, e.Body, 3, 0)
			}
		})
	}
}

// historyTickets is the 50,000-ticket history of the similar-ticket
// benchmarks: every shared dataset's train split, topped up with generated
// tickets.
func historyTickets(b *testing.B, n int) []Example {
	var out []Example
	for _, dir := range datasetDirs(b) {
		train, err := LoadJSONL(filepath.Join(dir, "train.jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, train...)
	}
	if len(out) < n {
		out = append(out, genExamples(n-len(out), 77, 0)...)
	}
	return out[:n]
}

// BenchmarkExplainSimilar50k times what the classifier adds per ticket:
// PredictExplain plus the 3 most similar of 50,000 history tickets, on the
// it-service-tickets model and test tickets. p50-us/op is the median of
// the calls (the target is at most 2 ms); index-MiB the index's heap,
// artifact-MiB its bytes in the model, build-s its build time.
func BenchmarkExplainSimilar50k(b *testing.B) {
	dirs := datasetDirs(b)
	dir := dirs[len(dirs)-1]
	m, test := datasetModel(b, dir)
	history := historyTickets(b, 50_000)
	var r *ExplainReport
	for b.Loop() {
		var err error
		if r, err = MeasureExplain(context.Background(), m, history, test, 5000); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(r.ExplainedP50Us, "p50-us")
	b.ReportMetric(r.ExplainedP99Us, "p99-us")
	b.ReportMetric(r.PlainP50Us, "plain-p50-us")
	b.ReportMetric(r.SimilarP50Us, "similar-p50-us")
	b.ReportMetric(float64(r.IndexHeapBytes)/(1<<20), "index-MiB")
	b.ReportMetric(float64(r.IndexArtifactBytes)/(1<<20), "artifact-MiB")
	b.ReportMetric(r.IndexBuildSeconds, "build-s")
}

// BenchmarkTrainNoSimilar is BenchmarkTrain without the similar-ticket
// index: the ratio of the two cpu-s/op is what the index adds to training.
func BenchmarkTrainNoSimilar(b *testing.B) {
	for _, dir := range datasetDirs(b) {
		b.Run(filepath.Base(dir), func(b *testing.B) {
			train, err := LoadJSONL(filepath.Join(dir, "train.jsonl"))
			if err != nil {
				b.Fatal(err)
			}
			c0 := cpuSeconds()
			for b.Loop() {
				if _, err := Train(context.Background(), train, TrainOptions{Seed: 1, NoSimilar: true}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((cpuSeconds()-c0)/float64(b.N), "cpu-s/op")
		})
	}
}
